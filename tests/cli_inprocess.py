"""The real `transferscope` entry point called in-process: a subprocess would re-import torch
(~1 min on the shared 2-core machines), and the parse -> library -> print path is the same."""

from __future__ import annotations

import sys


def invoke_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``transferscope *args``; return (exit code, stdout, stderr)."""
    from transferscope.cli import main

    argv = sys.argv
    sys.argv = ["transferscope", *args]
    capsys.readouterr()  # only this call's output is returned
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = argv
    out = capsys.readouterr()
    return code, out.out, out.err

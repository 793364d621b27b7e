"""Where a run came from: package version, git commit, the record's content hash.

``run.json`` records these so a reviewer can tell two runs of different code or data apart.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd

from transferscope.bias.data.record import Record


def package_version() -> str:
    """The installed transferscope version."""
    from transferscope import __version__

    return __version__


def git_commit() -> str | None:
    """The commit of the source tree the package runs from (with ``+dirty`` when it has
    uncommitted changes); None outside a git checkout or without git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def record_hash(record: Record) -> str:
    """A hash of the record's drafts, P5 votes and texts (their contents, not their files)."""
    import hashlib

    digest = hashlib.sha256()
    for frame in (record.drafts, record.p5_votes, record.texts):
        digest.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
                      .tobytes())
    return digest.hexdigest()

"""The one ``transferscope`` command: each part registers its own command group here."""

from __future__ import annotations

import difflib
import importlib
import os
import signal
import sys
import traceback
from types import FrameType

# OpenMP threads that spin while waiting make torch many times slower when the cores are shared
# (measured on a busy 2-core machine: one SmolLM2 forward 14-19 s vs 1.6 s passive). Set before
# torch is imported; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The command line draws figures into files only: no window, whatever display is attached.
os.environ.setdefault("MPLBACKEND", "Agg")

import typer
import typer.main
from typer import _click as click

from transferscope.core.command_group import CommandGroup
from transferscope.core.errors import TransferScopeError
from transferscope.core.hygiene import terminal_line
from transferscope.core.outdir import release_claims, set_force

# The root's commands: name -> (module, attribute). A part's command line is imported only when
# its name is on the command line (or the root's --help lists them all), so `transferscope bias
# run --help` does not pay for the ntk and dino option tables. Order = the root --help's order.
_COMMANDS: dict[str, tuple[str, str]] = {
    "ntk": ("transferscope.ntk.cli", "app"),
    "dino": ("transferscope.dino.cli", "app"),
    "bias": ("transferscope.bias.cli", "app"),
    "models": ("transferscope.cli_models", "app"),
    "doctor": ("transferscope.cli_models", "doctor"),
    "demo": ("transferscope.demo.command", "demo"),
}


def _no_options() -> None:
    """(The callback of the holder group that mounts one command.)"""


class _LazyRoot(CommandGroup):
    """The root group: each entry of ``_COMMANDS`` becomes a click command on first lookup."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*_COMMANDS, *(n for n in super().list_commands(ctx) if n not in _COMMANDS)]

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        """As Typer's, with its "Did you mean" drawn from every name, mounted or not."""
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.UsageError as err:
            close = difflib.get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if close and "Did you mean" not in err.message:
                err.message = (f"{err.message.rstrip('.')}. Did you mean "
                               f"{', '.join(map(repr, close))}?")
            raise

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS and cmd_name not in self.commands:
            module, attr = _COMMANDS[cmd_name]
            target = getattr(importlib.import_module(module), attr)
            holder = typer.Typer(cls=CommandGroup, add_completion=False)  # mounts it as the root would have
            holder.callback()(_no_options)
            if isinstance(target, typer.Typer):
                holder.add_typer(target, name=cmd_name)
            else:
                holder.command(cmd_name)(target)
            group = typer.main.get_command(holder)
            self.add_command(group.commands[cmd_name], cmd_name)  # type: ignore[attr-defined]
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="transferscope",
    help="TransferScope: what transfers, and how well. Empirical NTK early stopping (ntk), "
    "distribution-informed domain adaptation (dino), nation-level LLM bias tests (bias).",
    no_args_is_help=True,
    cls=_LazyRoot,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"debug": False}
_INTERRUPTED = "interrupted: finished work is kept in the cache; run the same command to resume"


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    force: bool = typer.Option(False, "--force", help="Let the command write over files "
                               "and into folders it did not create (never over its own "
                               "inputs, a device or a folder)."),
) -> None:
    _state["debug"] = debug
    set_force(force)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops a run the way Ctrl-C does: finished work is kept, the resume line shown."""
    _state["terminated"] = True
    raise KeyboardInterrupt


def _interrupted_exit() -> None:
    print(_INTERRUPTED, file=sys.stderr)
    sys.exit(143 if _state.get("terminated") else 130)


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit."""
    debug = "--debug" in sys.argv
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        # Without standalone mode, typer returns (not raises) the code of `typer.Exit` and turns
        # Ctrl-C into code 130: both must become the process's exit status.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code != 0:
            if code == 130:
                _interrupted_exit()
            sys.exit(code)
    except TransferScopeError as err:
        if debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        _interrupted_exit()
    except SystemExit:
        raise
    except typer.TyperException as err:  # usage errors from typer's own click: one line, exit 2
        print(f"error: {terminal_line(_usage_line(err))}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 2) or 2)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except OSError as err:  # disk full, permissions, ...: say which path
        if debug:
            traceback.print_exc()
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {terminal_line(f'{where}{err.strerror or err}')}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:  # noqa: BLE001 - last resort: one line, traceback only on --debug
        if debug:
            traceback.print_exc()
        print(f"error: {type(err).__name__}: {terminal_line(err)} (rerun with --debug for the "
              "traceback)", file=sys.stderr)
        sys.exit(1)
    finally:
        release_claims()  # the --out locks this command took (a killed process drops them too)
        set_force(False)


def _usage_line(err: typer.TyperException) -> str:
    """The usage error as one line: which option, which value, what was expected."""
    text = " ".join(err.format_message().split())
    param = getattr(err, "param", None)
    names = "/".join(getattr(param, "opts", []) or [])
    if names and names not in text and getattr(param, "name", "") not in text:
        text = f"{names}: {text}"
    return text

"""``transferscope bias``: placeholder group until the bias part lands."""

import typer

app = typer.Typer(help="Nation-level LLM bias tests grounded in UNSC records (not built yet).",
                  no_args_is_help=True)

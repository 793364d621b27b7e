"""``transferscope ntk``: placeholder group until the NTK part lands."""

import typer

app = typer.Typer(help="Empirical NTK of a pretrained LM and early stopping (not built yet).",
                  no_args_is_help=True)

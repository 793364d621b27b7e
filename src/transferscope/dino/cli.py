"""``transferscope dino``: placeholder group until the DINO part lands."""

import typer

app = typer.Typer(help="Distribution-informed neural networks for domain-adaptation regression (not built yet).",
                  no_args_is_help=True)

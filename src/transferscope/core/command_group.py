"""The command group every ``transferscope`` Typer app uses (``typer.Typer(cls=CommandGroup)``).

Typer coerces each option value through a pydantic adapter unless the value is already a bool
of a bool flag. A group's ``--help`` flag, when not given, has the value ``None``, so every
``transferscope GROUP COMMAND --help`` imported pydantic (about 70 ms) only to turn that
``None`` into ``False``. Here the flag's default is ``False``: the value is a bool and is taken
as it is. Nothing else about the group changes.
"""

from __future__ import annotations

from typer import _click as click
from typer.core import TyperGroup, TyperOption


class CommandGroup(TyperGroup):
    """A Typer group whose unset ``--help`` reads as ``False`` (no pydantic at start-up)."""

    def get_help_option(self, ctx: click.Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option

"""What ``transferscope demo`` is asked to do: one declaration per setting (type, choices,
help), read by :func:`transferscope.demo.orchestrate.run` and by the command line alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, get_args

from transferscope.core.params import Spec, Validated

StageName = Literal["models", "ntk", "dino", "bias"]
STAGE_NAMES: tuple[str, ...] = get_args(StageName)


@dataclass(kw_only=True, frozen=True)
class DemoConfig(Validated):
    """Settings of one demo run (checked when constructed).

    Parameters
    ----------
    out : Path
        Where the report (``index.html``, ``report.md``) and each stage's files go.
    model, encoder : str
        Registry names or local Hugging Face directories of the causal LM and the encoder.
    only : tuple of str
        The stages to run, in the demo's order; empty: all of them.
    force : bool
        Recompute stages even when a finished run exists.
    """

    out: Annotated[Path, Spec(help="Where the report and each stage's files go.")] = Path(
        "reports/demo")
    model: Annotated[str, Spec(help="Causal LM: registry name or local Hugging Face dir.")
                     ] = "smollm2"
    encoder: Annotated[str, Spec(help="Encoder: registry name or local Hugging Face dir.")
                       ] = "minilm"
    only: Annotated[tuple[StageName, ...], Spec(
        help="Stages to run, all when empty.")] = field(default=())
    force: Annotated[bool, Spec(help="Recompute stages even when a finished run exists.")
                     ] = False

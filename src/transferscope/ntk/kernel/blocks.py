"""One block's work, wherever it runs, and the protocol of the executors that run it.

A kernel is cut into blocks of examples. Every block is captured (its gradient factors, or in
sketch mode its sketched rows) and, in the block-pairs Gram plan, every pair of stored blocks
is multiplied; :class:`BlockEngine` does both in whatever process holds it. A
:class:`BlockExecutor` maps those calls over the blocks: :class:`LocalExecutor` in this process,
:class:`~transferscope.ntk.kernel.ray.RayExecutor` on a Ray cluster (an engine per worker). The
driver (:class:`~transferscope.ntk.kernel.local.KernelDriver`) keeps the work directory, so the
executor never decides what is stored or resumed.

A stored block is a plain dict of tensors (:func:`block_to_state`), what ``torch.load(...,
weights_only=True)`` reads back and Ray ships between processes.
"""

from __future__ import annotations

import io
import time
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import numpy as np
import torch

from transferscope.core.errors import input_error
from transferscope.core.io import atomic_write_bytes
from transferscope.ntk.kernel.capture import (
    BlockFactors,
    CaptureUnsupported,
    Use,
    capture_block,
    capture_block_loop,
    validate_capture,
)
from transferscope.ntk.kernel.gram import gram_of_blocks
from transferscope.ntk.kernel.sketch import sketch_block

GramPlan = Literal["parameter-chunks", "block-pairs"]
Job = tuple[Hashable, tuple]


# ---------------------------------------------------------------------------- storage form
def block_to_state(block: BlockFactors) -> dict:
    """A block's factors as a plain dict of tensors (what is saved and shipped)."""
    return {"rows": block.rows,
            "uses": [[(u.kind, u.out, u.inp) for u in uses] for uses in block.uses]}


def state_to_block(state: dict) -> BlockFactors:
    """The inverse of :func:`block_to_state`."""
    return BlockFactors(rows=state["rows"],
                        uses=[[Use(kind=k, out=o,
                                   inp=i) for k, o, i in uses] for uses in state["uses"]])


def save_torch(path: Path, obj: Any) -> None:
    """``torch.save`` written atomically (a stored block is whole or absent)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------------- one block's work
@dataclass(kw_only=True)
class CapturedBlock:
    """A captured block (``payload``: factor state or sketched rows) and how it was obtained."""

    payload: Any
    engine: str  # "hooks" or "loop"
    note: str | None
    n_outputs: int
    seconds_capture: float  # forward and backward
    seconds_project: float  # sketching, or converting the factors to their stored form


class BlockEngine:
    """What one process needs to capture blocks and multiply them: model, f, S, settings.

    ``selected``: the (name, parameter) pairs of S in the model this engine holds (a worker's
    own copy on a Ray worker). The sketch hash tables are kept between blocks.
    """

    def __init__(self, model: torch.nn.Module, output_fn, selected, mode: str, *,
                 sketch_dim: int, seed: int, linear_path: str, engine: str, gram_dtype: str):
        self.model, self.output_fn, self.selected, self.mode = model, output_fn, selected, mode
        self.sketch_dim, self.seed, self.linear_path = sketch_dim, seed, linear_path
        self.engine, self.gram_dtype = engine, gram_dtype
        self.batched = bool(getattr(output_fn, "batched", False))
        self.shapes = [p.shape for _, p in selected]
        self._tables: dict = {}

    def settings(self) -> dict:
        """The keyword arguments that rebuild this engine around another copy of the model."""
        return {"mode": self.mode, "sketch_dim": self.sketch_dim, "seed": self.seed,
                "linear_path": self.linear_path, "engine": self.engine,
                "gram_dtype": self.gram_dtype}

    def capture(self, examples: Sequence, manifest: dict) -> CapturedBlock:
        """One block's payload. ``manifest["engine"]`` None: this block decides hooks or loop,
        checked against plain autograd."""
        started = time.perf_counter()
        block, engine, note = self._factors(examples, manifest["engine"], manifest["note"])
        captured = time.perf_counter()
        payload: torch.Tensor | dict
        if self.mode == "sketch":
            payload = sketch_block(block, self.shapes, self.sketch_dim, self.seed, self._tables)
        else:
            payload = block_to_state(block)
        return CapturedBlock(payload=payload, engine=engine, note=note,
                             n_outputs=block.rows // len(examples),
                             seconds_capture=captured - started,
                             seconds_project=time.perf_counter() - captured)

    def _factors(self, examples: Sequence, decided: str | None,
                 note: str | None) -> tuple[BlockFactors, str, str | None]:
        check = decided is None
        engine = decided or ("loop" if self.engine == "loop" else "hooks")
        if engine == "hooks":
            # the check against plain autograd costs a second backward: run it on two examples
            probe = examples[:2] if check and len(examples) > 2 else examples
            try:
                block, reference = capture_block(self.model, self.output_fn, probe,
                                                 self.selected, self.batched, check=check)
                problem = (validate_capture(block, cast(list[torch.Tensor], reference),
                                            self.selected) if check else None)
                if probe is not examples and not problem:
                    block, _ = capture_block(self.model, self.output_fn, examples,
                                             self.selected, self.batched)
            except CaptureUnsupported as exc:
                if self.engine == "hooks":
                    raise input_error("empirical_ntk", "engine", "hooks",
                                      f"'auto' or 'loop' for this model (hooks cannot capture "
                                      f"it: {exc})") from exc
                note = f"hooks unsupported ({exc}); per-example loop used"
                engine = "loop"
            else:
                if problem and self.engine == "hooks":
                    raise input_error("empirical_ntk", "engine", "hooks",
                                      f"'auto' or 'loop' for this model (hook capture "
                                      f"disagrees with autograd: {problem})")
                if problem:
                    note = f"{problem}; per-example loop used"
                    engine = "loop"
        if engine == "loop":
            block = capture_block_loop(self.model, self.output_fn, examples, self.selected,
                                       self.batched)
        return block, engine, note

    def gram(self, state_i: dict, state_j: dict | None) -> tuple[np.ndarray, dict]:
        """The float64 Gram block of two stored blocks (``state_j=None``: block i with itself)
        and the flop tally of its routes."""
        stats: dict = {}
        block_j = None if state_j is None else state_to_block(state_j)
        part = gram_of_blocks(state_to_block(state_i), block_j, self.shapes, self.linear_path,
                              stats, self.gram_dtype)
        return part.cpu().numpy(), stats


# ---------------------------------------------------------------------------- executors
class BlockExecutor(Protocol):
    """Where a kernel's blocks are computed: a map of :class:`BlockEngine` calls over blocks.

    ``gram_plan``: ``"parameter-chunks"`` when the blocks are in this process's memory (the
    driver multiplies each chunk of parameters over all rows, building every per-row gradient
    once); ``"block-pairs"`` when blocks travel to workers (each pair of blocks is one
    ``gram`` call). ``label`` goes into the progress bar's descriptions.
    """

    @property
    def label(self) -> str: ...

    @property
    def gram_plan(self) -> GramPlan: ...

    def start(self, engine: BlockEngine, work: Path) -> None:
        """Begin a kernel computed by ``engine`` (workers build their own copy of it);
        ``work`` is where the driver keeps finished blocks (named in errors)."""

    def share(self, obj: Any) -> Any:
        """A handle to ``obj`` that :meth:`map_blocks` jobs may take as arguments, put where
        every worker can read it once (instead of once per job)."""

    def map_blocks(self, method: str, jobs: Iterable[Job]) -> Iterator[tuple[Any, Any]]:
        """``engine.<method>(*args)`` for every ``(key, args)`` job, yielding ``(key, result)``
        as each finishes (in any order)."""

    def close(self) -> None:
        """Free what :meth:`start` and the jobs took (model copies, shared objects)."""

    def describe(self) -> dict | None:
        """What the kernel's details record about the executor (None: nothing)."""


class LocalExecutor:
    """This process, one block after the other."""

    label = ""
    gram_plan: GramPlan = "parameter-chunks"

    def __init__(self) -> None:
        self.engine: BlockEngine | None = None

    def start(self, engine: BlockEngine, work: Path) -> None:
        self.engine = engine

    def share(self, obj: Any) -> Any:
        return obj

    def map_blocks(self, method: str, jobs: Iterable[Job]) -> Iterator[tuple[Hashable, Any]]:
        call = getattr(self.engine, method)
        for key, args in jobs:
            yield key, call(*args)

    def close(self) -> None:
        self.engine = None

    def describe(self) -> dict | None:
        return None

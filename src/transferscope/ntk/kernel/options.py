"""How the eNTK engine computes a kernel: the settings that change its cost, never its value.

What to compute (model, inputs, output function, parameter set, exact or sketch) stays in the
call to :func:`~transferscope.ntk.kernel.empirical_ntk_result`; everything about how (memory,
blocks, routes, caching, where the blocks run) is one :class:`EngineOptions`, validated here
once. The sketch's ``sketch_dim`` and ``seed`` do change a sketched kernel: they are part of its
cache key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from transferscope.core.errors import input_error

LinearPath = Literal["auto", "structured", "materialize"]
GramDtype = Literal["auto", "float64"]
Engine = Literal["auto", "hooks", "loop"]


@dataclass(kw_only=True, frozen=True)
class EngineOptions:
    """The engine's how-to-compute settings (httpx-style: one object instead of 11 arguments).

    Args:
        memory_budget_gb: what the engine may hold beyond the model itself.
        block_size: examples per forward/backward (and per stored block).
        sketch_dim: CountSketch dimension d (``mode="sketch"`` only).
        seed: the sketch's hash tables (``mode="sketch"`` only).
        delta: the sketch's error bound holds with probability at least ``1 - delta``.
        linear_path: per-parameter Gram route; ``"auto"`` picks the cheaper exact one.
        gram_dtype: ``"float64"`` also multiplies float32 gradients in float64 (about 2x
            slower; the default multiplies them in float32 over 32768-coordinate chunks).
        engine: ``"loop"`` forces the slow, universal per-example autograd path; ``"hooks"``
            forbids falling back to it.
        cache_key: ``"auto"`` caches when ``output_fn`` carries a ``cache_token``, a string
            names the entry, None disables caching.
        progress: draw a progress bar (stderr).
        executor: ``"local"`` (this process), ``"ray"`` or an executor object such as
            :class:`~transferscope.ntk.kernel.RayExecutor` (same numbers, same cache entry).
    """

    memory_budget_gb: float = 4.0
    block_size: int = 16
    sketch_dim: int = 16384
    seed: int = 0
    delta: float = 0.05
    linear_path: LinearPath = "auto"
    gram_dtype: GramDtype = "auto"
    engine: Engine = "auto"
    cache_key: str | None = "auto"
    progress: bool = True
    executor: Any = "local"

    def __post_init__(self) -> None:
        if self.gram_dtype not in ("auto", "float64"):
            raise input_error("empirical_ntk", "gram_dtype", self.gram_dtype,
                              "'auto' or 'float64'")
        if self.linear_path not in ("auto", "structured", "materialize"):
            raise input_error("empirical_ntk", "linear_path", self.linear_path,
                              "'auto', 'structured' or 'materialize'")
        if self.engine not in ("auto", "hooks", "loop"):
            raise input_error("empirical_ntk", "engine", self.engine,
                              "'auto', 'hooks' or 'loop'")
        if not self.memory_budget_gb > 0:
            raise input_error("empirical_ntk", "memory_budget_gb", self.memory_budget_gb,
                              "a positive number")
        if self.block_size < 1:
            raise input_error("empirical_ntk", "block_size", self.block_size,
                              "a positive integer")
        if not 0 < self.delta < 1:
            raise input_error("empirical_ntk", "delta", self.delta, "a probability in (0, 1)")
        if self.executor not in ("local", "ray") and not hasattr(self.executor, "map_blocks"):
            raise input_error("empirical_ntk", "executor", self.executor,
                              "'local', 'ray' or a transferscope.ntk.kernel.RayExecutor")

    def check_sketch(self) -> None:
        """The sketch's own settings (only a sketched kernel uses them)."""
        if self.sketch_dim < 1:
            raise input_error("empirical_ntk", "sketch_dim", self.sketch_dim,
                              "a positive integer")

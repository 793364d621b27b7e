"""Sketched kernels: a seeded CountSketch (a sparse Johnson-Lindenstrauss map) of every gradient.

Each parameter coordinate k is sent to a random bucket h(k) in [0, d) with a random sign s(k)
(fully independent tables drawn from the seed), so ``<S g_i, S g_j>`` is an unbiased estimate
of ``<g_i, g_j>`` whose variance is at most ``(|g_i|^2 |g_j|^2 + <g_i, g_j>^2) / d`` (the
Gaussian-JL value; CountSketch's is smaller by ``2 sum_k g_ik^2 g_jk^2 / d``). Summed over all
entries: ``E |K_hat - K|_F^2 <= (tr K1 tr K2 + |K|_F^2) / d``, and by Markov's inequality
``|K_hat - K|_F <= sqrt(that / delta)`` with probability at least 1 - delta. One pass over the
data, O(P) work per example, memory n x d. Embedding uses are sketched sparsely (only the rows
of the tokens present), so a 28M-entry tied embedding costs T x d_model per example.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import torch

from transferscope.ntk.kernel.capture import BlockFactors, Use


def hash_tables(numel: int, dim: int, seed: int, parameter_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bucket and sign of every coordinate of one parameter; the same for every block."""
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + parameter_index)
    # drawn on the CPU (the same tables on every device), then moved where the factors are
    buckets = torch.randint(0, dim, (numel,), generator=gen, dtype=torch.int64, device="cpu")
    signs = torch.randint(0, 2, (numel,), generator=gen, dtype=torch.int8, device="cpu")
    where = torch.get_default_device()
    return buckets.to(where), signs.to(where)


def _factor_dtype(uses: Sequence[Use]) -> torch.dtype:
    use = uses[0]
    return cast(torch.Tensor, use.inp).dtype if use.kind == "embedding" else use.out.dtype


def sketch_block(block: BlockFactors, shapes: Sequence[torch.Size], dim: int, seed: int,
                 tables: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
    """(rows, dim) float64 sketches of the block's per-row gradients over all of S.

    Built in the gradients' own dtype (float32 for a float32 model: the rounding, about 1e-7
    relative, is far below the sketch's own error and float32 halves the memory traffic of the
    scatter, which is what the projection costs), returned as float64. ``tables`` (parameter
    index -> hash tables) may be shared across blocks to avoid redrawing.
    """
    parts: dict[torch.dtype, torch.Tensor] = {}
    for index, (uses, shape) in enumerate(zip(block.uses, shapes)):
        if not uses:
            continue
        numel = int(np.prod(shape))
        if tables is not None and index in tables:
            buckets, signs = tables[index]
        else:
            buckets, signs = hash_tables(numel, dim, seed, index)
            if tables is not None:
                tables[index] = (buckets, signs)
        dtype = _factor_dtype(uses)
        if dtype not in parts:
            parts[dtype] = torch.zeros(block.rows, dim, dtype=dtype)
        sketch = parts[dtype]
        sign = signs.to(dtype) * 2 - 1
        sparse = [u for u in uses if u.kind == "embedding"]
        rest = [u for u in uses if u.kind != "embedding"]
        for use in sparse:  # coordinates (id, c) for the tokens present only
            assert use.inp is not None  # an embedding use carries its output gradients
            width = use.inp.shape[-1]
            ids = use.out.reshape(block.rows, -1)
            keep = (ids >= 0)
            coords = ids.clamp(min=0)[..., None] * width + torch.arange(width)  # (R, T, width)
            values = use.inp.to(dtype) * sign[coords] * keep[..., None]
            sketch.scatter_add_(1, buckets[coords].reshape(block.rows, -1),
                                values.reshape(block.rows, -1))
        for use in rest:
            _sketch_dense_or_linear(sketch, use, buckets, sign)
    total = torch.zeros(block.rows, dim, dtype=torch.float64)
    for part in parts.values():
        total += part.double()
    return total


_CHUNK_BYTES = 2**26  # one temporary slab of per-row gradients, about 64 MiB


def _sketch_dense_or_linear(sketch: torch.Tensor, use: Use, buckets: torch.Tensor,
                            sign: torch.Tensor) -> None:
    """Add one linear or dense use, a slab of coordinates at a time (bounded memory).

    A linear use is built one band of output rows at a time (one batched matmul), and bands
    whose output gradients are all zero (most of an LM head's vocabulary) are skipped. The
    scatter runs along each row (``scatter_add_`` over the bucket axis), several times faster on
    CPU than ``index_add_`` over columns.
    """
    rows, dtype = sketch.shape[0], sketch.dtype
    per_row = max(1, _CHUNK_BYTES // (rows * sketch.element_size()))
    if use.kind == "dense":
        for c0 in range(0, use.out.shape[1], per_row):
            cols = slice(c0, c0 + per_row)
            values = use.out[:, cols].to(dtype) * sign[cols]
            sketch.scatter_add_(1, buckets[cols].expand(rows, -1), values)
        return
    assert use.inp is not None  # a linear use carries its input
    d_out, d_in = use.out.shape[-1], use.inp.shape[-1]
    band = max(1, per_row // d_in)
    inp = use.inp.to(dtype)
    for o0 in range(0, d_out, band):
        o1 = min(d_out, o0 + band)
        part = use.out[..., o0:o1]
        if not bool(part.any()):
            continue
        grads = torch.bmm(part.to(dtype).transpose(1, 2), inp).reshape(rows, -1)
        cols = slice(o0 * d_in, o1 * d_in)
        grads *= sign[cols]
        sketch.scatter_add_(1, buckets[cols].expand(rows, -1), grads)


def sketch_error(diagonal: np.ndarray, kernel: np.ndarray, dim: int, delta: float,
                 symmetric: bool = True, diagonal2: np.ndarray | None = None) -> tuple[float, float]:
    """(expected RMS, 1 - delta bound) of the relative Frobenius error of a sketched kernel.

    Plug-in: the sketch's own diagonal(s) and Frobenius norm stand in for the exact ones.
    """
    trace_a = float(np.sum(diagonal))
    trace_b = trace_a if symmetric or diagonal2 is None else float(np.sum(diagonal2))
    frob = float(np.linalg.norm(kernel))
    if frob == 0.0:
        return 0.0, 0.0
    rms = float(np.sqrt((trace_a * trace_b + frob**2) / dim)) / frob
    return rms, rms / float(np.sqrt(delta))

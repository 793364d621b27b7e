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

import numpy as np
import torch

from transferscope.ntk.engine_capture import BlockFactors, Use


def hash_tables(numel: int, dim: int, seed: int, parameter_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bucket and sign of every coordinate of one parameter; the same for every block."""
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + parameter_index)
    buckets = torch.randint(0, dim, (numel,), generator=gen, dtype=torch.int64)
    signs = torch.randint(0, 2, (numel,), generator=gen, dtype=torch.int8)
    return buckets, signs


def sketch_block(block: BlockFactors, shapes: Sequence[torch.Size], dim: int, seed: int,
                 tables: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
    """(rows, dim) float64 sketches of the block's per-row gradients over all of S.

    ``tables`` (parameter index -> hash tables) may be shared across blocks to avoid redrawing.
    """
    sketch = torch.zeros(block.rows, dim, dtype=torch.float64)
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
        sign = signs.double() * 2 - 1
        sparse = [u for u in uses if u.kind == "embedding"]
        rest = [u for u in uses if u.kind != "embedding"]
        for use in sparse:  # coordinates (id, c) for the tokens present only
            width = use.inp.shape[-1]
            ids = use.out.reshape(block.rows, -1)
            keep = (ids >= 0)
            coords = ids.clamp(min=0)[..., None] * width + torch.arange(width)  # (R, T, width)
            values = use.inp.double() * sign[coords] * keep[..., None]
            sketch.scatter_add_(1, buckets[coords].reshape(block.rows, -1),
                                values.reshape(block.rows, -1))
        for use in rest:
            _sketch_dense_or_linear(sketch, use, buckets, sign)
    return sketch


_CHUNK_ELEMENTS = 2**23  # rows x coordinates per temporary, about 64 MiB in float64


def _sketch_dense_or_linear(sketch: torch.Tensor, use: Use, buckets: torch.Tensor,
                            sign: torch.Tensor) -> None:
    """Add one linear or dense use, a slab of coordinates at a time (bounded memory).

    A linear use is built one band of output rows at a time, and bands whose output gradients
    are all zero (most of an LM head's vocabulary) are skipped.
    """
    rows = sketch.shape[0]
    if use.kind == "dense":
        step = max(1, _CHUNK_ELEMENTS // rows)
        for c0 in range(0, use.out.shape[1], step):
            cols = slice(c0, c0 + step)
            sketch.index_add_(1, buckets[cols], use.out[:, cols].double() * sign[cols])
        return
    d_out, d_in = use.out.shape[-1], use.inp.shape[-1]
    band = max(1, _CHUNK_ELEMENTS // (rows * d_in))
    for o0 in range(0, d_out, band):
        o1 = min(d_out, o0 + band)
        part = use.out[..., o0:o1]
        if not bool(part.any()):
            continue
        grads = torch.einsum("rto,rti->roi", part.double(), use.inp.double()).reshape(rows, -1)
        cols = slice(o0 * d_in, o1 * d_in)
        sketch.index_add_(1, buckets[cols], grads * sign[cols])


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

"""Exact Gram blocks ``sum_S <g_i, g_j>`` from gradient factors, accumulated in float64.

Per parameter, two exact routes (pure functions of the factors):

- structured: for linear uses ``<sum_t d_t a_t^T, sum_s d'_s a'_s^T> = sum_ts (d_t.d'_s)(a_t.a'_s)``,
  i.e. ``sum((D_i D_j^T) * (A_i A_j^T))``: costs T_i T_j (d_out + d_in) per pair, cheap for short
  prompts and for layers seen at one position (an LM head). An embedding use is a linear use
  whose input is a one-hot row, so ``A_i A_j^T`` becomes "same token id"; a tied embedding/head
  pair mixes the two.
- materialised: build each row's gradient of this one parameter and multiply: d_out d_in per pair.

``auto`` picks the cheaper per parameter (flop count); both give the same numbers up to float64
rounding, which the tests check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch

from transferscope.ntk.kernel.capture import BlockFactors, Use

# chunk sizes keep temporaries around 64 MiB whatever the block size
_TEMP_BYTES = 64 * 2**20


def _numel(shape: torch.Size) -> int:
    numel = 1
    for s in shape:
        numel *= s
    return numel


def _leading(shape: torch.Size) -> int:
    return int(shape[0]) if len(shape) else 1


def materialize_band(uses: Sequence[Use], shape: torch.Size, rows: int, r0: int,
                     r1: int) -> torch.Tensor | None:
    """(rows, (r1 - r0) * W) per-row gradients of leading rows r0:r1 of one parameter.

    W is the parameter's size per leading row (``d_in`` of a Linear weight, ``d`` of an
    embedding, 1 of a bias), so a band is a contiguous slice of the flattened gradient. None when
    every use is zero on the band (most of a tied LM head's vocabulary): nothing to multiply.
    The first linear use writes its batched product straight into the band (no zero fill and
    no extra pass over memory), later ones accumulate in place.
    """
    width = _numel(shape) // _leading(shape)
    dtype = uses[0].out.dtype if uses[0].kind != "embedding" else cast(torch.Tensor, uses[0].inp).dtype
    out = torch.empty(rows, (r1 - r0) * width, dtype=dtype)
    filled = False

    def ensure_zeroed() -> None:
        nonlocal filled
        if not filled:
            out.zero_()
            filled = True

    for use in uses:
        if use.kind == "linear":
            assert use.inp is not None  # a linear use always carries its input
            part = use.out[..., r0:r1]
            if not bool(part.any()):
                continue
            band = out.view(rows, r1 - r0, width)
            if filled:
                band.baddbmm_(part.transpose(1, 2), use.inp)
            else:
                torch.bmm(part.transpose(1, 2), use.inp, out=band)
                filled = True
        elif use.kind == "embedding":
            assert use.inp is not None  # an embedding use always carries its output gradients
            ids = use.out
            keep = ((ids >= r0) & (ids < r1)).reshape(-1)
            if not bool(keep.any()):
                continue
            ensure_zeroed()
            flat_rows = (torch.arange(rows)[:, None] * (r1 - r0) + ids - r0).reshape(-1)
            out.view(rows * (r1 - r0), width).index_add_(
                0, flat_rows[keep], use.inp.reshape(-1, width)[keep].to(dtype))
        else:
            ensure_zeroed()
            out += use.out[:, r0 * width:r1 * width]
    return out if filled else None


def _banded_gram(uses_a: Sequence[Use], uses_b: Sequence[Use] | None, shape: torch.Size,
                 rows_a: int, rows_b: int, gram_dtype: str) -> torch.Tensor:
    """ga @ gb^T built one band of leading rows at a time: memory stays near ``_TEMP_BYTES``.

    The per-row gradients are never held whole (512 rows of one 576 x 1536 weight would be
    1.8 GB); bands where either side is all zero (most of a tied LM head's vocabulary) are skipped.
    """
    lead = _leading(shape)
    width = max(1, _numel(shape) // lead)
    item = (uses_a[0].out if uses_a[0].kind != "embedding"
            else cast(torch.Tensor, uses_a[0].inp)).element_size()
    band = max(1, _TEMP_BYTES // (max(rows_a, rows_b) * width * item))
    result = torch.zeros(rows_a, rows_b, dtype=torch.float64)
    for r0 in range(0, lead, band):
        r1 = min(lead, r0 + band)
        ga = materialize_band(uses_a, shape, rows_a, r0, r1)
        if ga is None:
            continue
        gb = None
        if uses_b is not None:
            gb = materialize_band(uses_b, shape, rows_b, r0, r1)
            if gb is None:
                continue
        result += _materialized_gram(ga, gb, gram_dtype)
    return result


def _linear_pair(a: Use, b: Use) -> torch.Tensor:
    """sum_ts (a.out_t . b.out_s)(a.inp_t . b.inp_s) for every row pair, chunked over a's rows."""
    assert a.inp is not None and b.inp is not None  # linear uses carry their inputs
    ra, ta = a.out.shape[:2]
    rb, tb = b.out.shape[:2]
    bo = b.out.reshape(rb * tb, -1).double()
    bi = b.inp.reshape(rb * tb, -1).double()
    step = max(1, _TEMP_BYTES // max(1, 16 * ta * rb * tb))
    result = torch.empty(ra, rb, dtype=torch.float64)
    for r0 in range(0, ra, step):
        r1 = min(ra, r0 + step)
        ao = a.out[r0:r1].reshape(-1, a.out.shape[-1]).double()
        ai = a.inp[r0:r1].reshape(-1, a.inp.shape[-1]).double()
        prod = (ao @ bo.T) * (ai @ bi.T)
        result[r0:r1] = prod.view(r1 - r0, ta, rb, tb).sum(dim=(1, 3))
    return result


def _embedding_pair(a: Use, b: Use) -> torch.Tensor:
    """Two embedding uses: same token id times the dot product of the output gradients."""
    assert a.inp is not None and b.inp is not None  # embedding uses carry their gradients
    ra, ta = a.out.shape
    rb, tb = b.out.shape
    b_ids = b.out.reshape(-1)
    bg = b.inp.reshape(rb * tb, -1).double()
    step = max(1, _TEMP_BYTES // max(1, 16 * ta * rb * tb))
    result = torch.empty(ra, rb, dtype=torch.float64)
    for r0 in range(0, ra, step):
        r1 = min(ra, r0 + step)
        a_ids = a.out[r0:r1].reshape(-1)
        same = (a_ids[:, None] == b_ids[None, :]) & (a_ids[:, None] >= 0)
        prod = same * (a.inp[r0:r1].reshape(-1, a.inp.shape[-1]).double() @ bg.T)
        result[r0:r1] = prod.view(r1 - r0, ta, rb, tb).sum(dim=(1, 3))
    return result


def _embedding_linear_pair(emb: Use, lin: Use) -> torch.Tensor:
    """An embedding use (rows of emb) against a linear use of the same (tied) weight.

    The embedding gradient is ``sum_t e_{id_t} g_t^T``, the linear one ``sum_s d_s a_s^T``, so the
    inner product is ``sum_ts d_s[id_t] (g_t . a_s)``.
    """
    assert emb.inp is not None and lin.inp is not None  # both kinds carry their second factor
    ra, ta = emb.out.shape
    rb, tb = lin.out.shape[:2]
    lo = lin.out.reshape(rb * tb, -1).double()
    li = lin.inp.reshape(rb * tb, -1).double()
    step = max(1, _TEMP_BYTES // max(1, 16 * ta * rb * tb))
    result = torch.empty(ra, rb, dtype=torch.float64)
    for r0 in range(0, ra, step):
        r1 = min(ra, r0 + step)
        ids = emb.out[r0:r1].reshape(-1)
        keep = (ids >= 0).double()
        picked = lo[:, ids.clamp(min=0)].T * keep[:, None]  # (rows*ta, rb*tb): d_s[id_t]
        prod = picked * (emb.inp[r0:r1].reshape(-1, emb.inp.shape[-1]).double() @ li.T)
        result[r0:r1] = prod.view(r1 - r0, ta, rb, tb).sum(dim=(1, 3))
    return result


def _structured_pair(a: Use, b: Use) -> torch.Tensor:
    if a.kind == "linear" and b.kind == "linear":
        return _linear_pair(a, b)
    if a.kind == "embedding" and b.kind == "embedding":
        return _embedding_pair(a, b)
    if a.kind == "embedding":
        return _embedding_linear_pair(a, b)
    return _embedding_linear_pair(b, a).T


def _use_width(use: Use) -> int:
    assert use.inp is not None  # only linear and embedding uses are measured here
    if use.kind == "linear":
        return use.out.shape[-1] + use.inp.shape[-1]
    return 2 * use.inp.shape[-1]


def structured_cost(uses_a: Sequence[Use], uses_b: Sequence[Use]) -> float:
    """Multiply-adds of the structured route for one block pair."""
    return float(sum(a.rows * b.rows * a.tokens * b.tokens * (_use_width(a) + _use_width(b)) / 2
                     for a in uses_a for b in uses_b))


def materialized_cost(uses_a: Sequence[Use], uses_b: Sequence[Use], numel: int, same: bool) -> float:
    """Multiply-adds of building the per-row gradients and multiplying them."""
    rows_a, rows_b = uses_a[0].rows, uses_b[0].rows
    build = sum(u.rows * u.tokens * numel for u in uses_a if u.kind == "linear")
    if not same:
        build += sum(u.rows * u.tokens * numel for u in uses_b if u.kind == "linear")
    return float(build + rows_a * rows_b * numel * (0.5 if same else 1.0))


def _row_splits(rows: int) -> list[int]:
    """Row boundaries for a symmetric product: the skipped block triangle saves work once the
    pieces are large enough to keep the matmul efficient (measured on this machine: one piece
    below 64 rows, two below 256, else four)."""
    parts = 1 if rows < 64 else 2 if rows < 256 else 4
    return [rows * i // parts for i in range(parts + 1)]


def _materialized_gram(ga: torch.Tensor, gb: torch.Tensor | None,
                       gram_dtype: str = "auto") -> torch.Tensor:
    """ga @ gb^T (or ga @ ga^T) accumulated in float64 over column chunks.

    ``float64``: every product in float64 (exact for float32 inputs: their products fit).
    ``auto``: float64 for float64 gradients; float32 gradients are multiplied in float32 over
    chunks of at most 32768 coordinates and the chunk results summed in float64, which is
    2-3x faster and adds a relative error below 1e-6, the size of the float32 gradients' own.
    For ``ga @ ga^T`` with many rows only the upper block triangle is multiplied (a quarter
    less work with four row pieces) and mirrored.
    """
    rows_a = ga.shape[0]
    rows_b = rows_a if gb is None else gb.shape[0]
    low = gram_dtype == "auto" and ga.dtype == torch.float32
    step = max(1, _TEMP_BYTES // (8 * max(rows_a, rows_b)))
    if low:
        step = min(step, 32768)
    splits = _row_splits(rows_a) if gb is None else [0, rows_a]
    result = torch.zeros(rows_a, rows_b, dtype=torch.float64)
    for c0 in range(0, ga.shape[1], step):
        ca = ga[:, c0:c0 + step]
        cb = ca if gb is None else gb[:, c0:c0 + step]
        if not low:
            ca, cb = ca.double(), cb.double()
        for i in range(len(splits) - 1):
            r0, r1 = splits[i], splits[i + 1]
            first = r0 if gb is None else 0
            target = result[r0:r1, first:]
            if low:
                target += (ca[r0:r1] @ cb[first:].T).double()
            else:
                target.addmm_(ca[r0:r1], cb[first:].T)
    if gb is None and len(splits) > 2:
        for i in range(1, len(splits) - 1):  # mirror the upper block triangle
            r0, r1 = splits[i], splits[i + 1]
            result[r0:r1, :r0] = result[:r0, r0:r1].T
    return result


def parameter_gram(uses_a: Sequence[Use], uses_b: Sequence[Use], shape: torch.Size,
                   rows_a: int, rows_b: int, same: bool, path: str = "auto",
                   stats: dict | None = None, gram_dtype: str = "auto") -> torch.Tensor:
    """(rows_a, rows_b) float64 contribution of one parameter.

    ``stats`` (optional) tallies the floating-point operations of each route, for benchmarks.
    """
    if not uses_a or not uses_b:
        return torch.zeros(rows_a, rows_b, dtype=torch.float64)
    numel = _numel(shape)
    dense = any(u.kind == "dense" for u in (*uses_a, *uses_b))
    structured = not dense and (
        path == "structured"
        or (path == "auto" and structured_cost(uses_a, uses_b)
            < materialized_cost(uses_a, uses_b, numel, same)))
    if stats is not None:
        route = "structured" if structured else "materialized"
        cost = (structured_cost(uses_a, uses_b) if structured
                else rows_a * rows_b * numel)  # the float64 matmul; building G is not counted
        stats[f"{route}_flops"] = stats.get(f"{route}_flops", 0.0) + 2.0 * cost
    if structured:
        total = torch.zeros(rows_a, rows_b, dtype=torch.float64)
        for a in uses_a:
            for b in uses_b:
                total += _structured_pair(a, b)
        return total
    return _banded_gram(uses_a, None if same else uses_b, shape, rows_a, rows_b, gram_dtype)


def gram_of_blocks(block_a: BlockFactors, block_b: BlockFactors | None,
                   shapes: Sequence[torch.Size], path: str = "auto",
                   stats: dict | None = None, gram_dtype: str = "auto") -> torch.Tensor:
    """Exact float64 Gram block between two blocks (``block_b=None``: the block with itself)."""
    same = block_b is None
    other = block_a if block_b is None else block_b  # the same test as ``same``
    total = torch.zeros(block_a.rows, other.rows, dtype=torch.float64)
    for uses_a, uses_b, shape in zip(block_a.uses, other.uses, shapes):
        total += parameter_gram(uses_a, uses_b, shape, block_a.rows, other.rows, same, path,
                                stats, gram_dtype)
    if same:
        total = (total + total.T) / 2  # exact symmetry; the two triangles agree to rounding
    return total


def concat_blocks(blocks: Sequence[BlockFactors]) -> BlockFactors:
    """One block from several: rows stacked, token axes zero-padded to the longest."""
    if len(blocks) == 1:
        return blocks[0]
    n_params = len(blocks[0].uses)
    rows = sum(b.rows for b in blocks)
    merged = BlockFactors(rows=rows, uses=[[] for _ in range(n_params)])
    for k in range(n_params):
        n_uses = max(len(b.uses[k]) for b in blocks)
        for u in range(n_uses):
            present = [b.uses[k][u] for b in blocks if len(b.uses[k]) > u]
            template = present[0]
            parts_out, parts_in = [], []
            t_max = max(p.tokens for p in present)
            for b in blocks:
                use = b.uses[k][u] if len(b.uses[k]) > u else None
                parts_out.append(_padded(use.out if use else None, template.out, b.rows, t_max,
                                         template.kind, fill=-1 if template.kind == "embedding" else 0))
                if template.inp is not None:
                    parts_in.append(_padded(use.inp if use else None, template.inp, b.rows, t_max,
                                            template.kind, fill=0))
            merged.uses[k].append(Use(kind=template.kind, out=torch.cat(parts_out),
                                      inp=torch.cat(parts_in) if parts_in else None))
    return merged


def _padded(tensor: torch.Tensor | None, template: torch.Tensor, rows: int, t_max: int,
            kind: str, fill: float) -> torch.Tensor:
    if kind == "dense":
        return tensor if tensor is not None else torch.zeros(rows, template.shape[1],
                                                             dtype=template.dtype)
    shape = (rows, t_max, *template.shape[2:])
    if tensor is not None and tensor.shape[1] == t_max:
        return tensor
    out = torch.full(shape, fill, dtype=template.dtype)
    if tensor is not None:
        out[:, : tensor.shape[1]] = tensor
    return out

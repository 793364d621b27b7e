"""Per-example gradient factors of one block of examples, from one forward and one backward.

Why factors: the per-example gradient of a linear layer's weight is ``sum_t delta_t a_t^T``
(``a`` the layer's input at token t, ``delta`` the gradient of f at its output), so the T rows of
``a`` and ``delta`` describe it exactly in far less memory than the d_out x d_in matrix. Forward
hooks on the modules that own parameters of S keep their inputs and outputs; one
``torch.autograd.grad`` w.r.t. those outputs yields every ``delta`` at once, without computing any
summed weight gradient. Embeddings give (token ids, delta); any other module owning parameters of
S (norm gains, ...) gets its per-example gradients by a per-example vector-Jacobian product of
that module alone. A parameter used outside a module call is invisible to hooks: the first block
is checked against autograd (:func:`validate_capture`) and the caller falls back to the
per-example loop (:func:`capture_block_loop`) if they disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch.func import functional_call

from transferscope.core.errors import input_error


@dataclass(kw_only=True)
class Use:
    """One use of a parameter by a module call, for every row (example x output) of a block.

    ``linear``: per-row gradient ``sum_t out[r, t]^T inp[r, t]`` (out: (R, T, d_out), inp:
    (R, T, d_in)); a bias is a linear use with ``inp`` = ones. ``embedding``: ``out`` holds token
    ids (R, T) (-1 = no token), ``inp`` the output gradients (R, T, d). ``dense``: ``out`` holds the
    per-row gradients (R, numel).
    """

    kind: str
    out: torch.Tensor
    inp: torch.Tensor | None = None

    @property
    def rows(self) -> int:
        return self.out.shape[0]

    @property
    def tokens(self) -> int:
        return 1 if self.kind == "dense" else self.out.shape[1]


@dataclass(kw_only=True)
class BlockFactors:
    """What a block of examples contributes: for each parameter of S, its list of uses."""

    rows: int
    uses: list[list[Use]] = field(default_factory=list)


class CaptureUnsupported(Exception):
    """The hooks cannot represent this model's use of S (the loop engine takes over)."""


def _conv1d_like(module: torch.nn.Module) -> bool:
    """Hugging Face's GPT-2 ``Conv1D``: a linear layer that stores its weight as (in, out)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


@dataclass(kw_only=True)
class _Record:
    module: torch.nn.Module
    owned: list[tuple[str, int]]  # (local parameter name, index in S)
    example: int | None  # None: a batched call covering all examples of the block
    args: tuple
    kwargs: dict
    output: torch.Tensor


@contextmanager
def only_selected_trainable(model: torch.nn.Module, selected: Sequence[tuple[str, Any]]):
    """Gradients flow to S only; restore each parameter's requires_grad afterwards."""
    chosen = {id(p) for _, p in selected}
    saved = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in saved:
            p.requires_grad_(id(p) in chosen)
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def _owners(model: torch.nn.Module, selected) -> list[tuple[torch.nn.Module, list[tuple[str, int]]]]:
    index = {id(p): i for i, (_, p) in enumerate(selected)}
    owners = []
    for module in model.modules():
        owned = [(n, index[id(p)]) for n, p in module.named_parameters(recurse=False)
                 if id(p) in index]
        if owned:
            owners.append((module, owned))
    return owners


def _as_output_rows(out: Any, rows: int, source: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise input_error(source, "output_fn result", type(out).__name__, "a torch.Tensor")
    if out.ndim == 1 and out.shape[0] == rows:
        return out[:, None]
    if out.ndim == 2 and out.shape[0] == rows:
        return out
    raise input_error(source, "output_fn result shape", tuple(out.shape),
                      f"({rows},) or ({rows}, C): one scalar or C outputs per example")


def forward_outputs(model, output_fn: Callable, examples: Sequence, batched: bool,
                    on_example: Callable[[int | None], None] | None = None) -> torch.Tensor:
    """f for every example of a block as a (B, C) tensor, through one graph."""
    if batched:
        if on_example:
            on_example(None)
        return _as_output_rows(output_fn(model, examples), len(examples), "batched output_fn")
    rows = []
    for e in range(len(examples)):
        if on_example:
            on_example(e)
        value = output_fn(model, examples[e])
        if not isinstance(value, torch.Tensor) or value.ndim > 1:
            raise input_error("output_fn", "result for one example",
                              getattr(value, "shape", type(value).__name__),
                              "a scalar tensor (or a vector of C outputs)")
        rows.append(value.reshape(-1))
    return torch.stack(rows)


def _split_rows(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    """(rows, T, d) view of a module input/output whose leading axis indexes examples."""
    if tensor.ndim < 2 or tensor.shape[0] != rows:
        raise CaptureUnsupported(f"a hooked tensor of shape {tuple(tensor.shape)} has no example axis")
    return tensor.reshape(rows, -1, tensor.shape[-1]) if tensor.ndim > 2 else tensor[:, None, :]


def _repeat_outputs(tensor: torch.Tensor, n_out: int) -> torch.Tensor:
    """Row r of a per-example tensor becomes rows r*C .. r*C + C - 1."""
    if n_out == 1:
        return tensor
    return tensor.repeat_interleave(n_out, dim=0)


def _dense_rows(record: _Record, grads: list[torch.Tensor], params: list[torch.nn.Parameter],
                rows: int) -> list[torch.Tensor]:
    """Per-example gradients of a module's own parameters, one vjp per (example, output)."""
    names = [n for n, _ in record.owned]
    per_param: list[list[torch.Tensor]] = [[] for _ in names]
    for r in range(rows):
        def take(value, r=r):
            if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == rows:
                return value[r:r + 1]
            return value
        args = tuple(take(a) for a in record.args)
        kwargs = {k: take(v) for k, v in record.kwargs.items()}
        for grad in grads:
            copies = {n: p.detach().requires_grad_(True) for n, p in zip(names, params)}
            with torch.enable_grad():
                out = functional_call(record.module, copies, args, kwargs)
            if not isinstance(out, torch.Tensor) or out.shape[1:] != grad.shape[1:]:
                raise CaptureUnsupported(f"{type(record.module).__name__} is not row-separable")
            got = torch.autograd.grad(out, list(copies.values()), grad[r:r + 1], allow_unused=True)
            for k, g in enumerate(got):
                per_param[k].append(torch.zeros_like(params[k]).reshape(-1) if g is None
                                    else g.reshape(-1))
    return [torch.stack(v) for v in per_param]


def _pad_tokens(tensors: list[tuple[int, torch.Tensor]], rows: int, fill: float) -> torch.Tensor:
    """Place per-example tensors (1, T_e, ...) at their rows of a (rows, T_max, ...) tensor."""
    t_max = max(t.shape[1] for _, t in tensors)
    first = tensors[0][1]
    out = torch.full((rows, t_max, *first.shape[2:]), fill, dtype=first.dtype)
    for e, t in tensors:
        out[e, : t.shape[1]] = t[0]
    return out


def capture_block(model: torch.nn.Module, output_fn: Callable, examples: Sequence,
                  selected: list[tuple[str, torch.nn.Parameter]], batched: bool,
                  check: bool = False) -> tuple[BlockFactors, list[torch.Tensor] | None]:
    """Factors of every per-example gradient of a block (rows ordered example-major).

    With ``check`` also returns the summed gradient of all outputs computed by plain autograd,
    the independent reference :func:`validate_capture` compares against.
    """
    owners = _owners(model, selected)
    records: list[_Record] = []
    current: list[int | None] = [None]

    def make_hook(module, owned):
        def hook(mod, args, kwargs, output):
            if isinstance(output, torch.Tensor) and output.requires_grad:
                records.append(_Record(module=module, owned=owned, example=current[0], args=args,
                                       kwargs=kwargs, output=output))
            elif any(p.requires_grad for p in mod.parameters(recurse=False)):
                raise CaptureUnsupported(f"{type(mod).__name__} returns a non-tensor output")
        return hook

    handles = [m.register_forward_hook(make_hook(m, owned), with_kwargs=True)
               for m, owned in owners]
    try:
        with torch.enable_grad():
            out = forward_outputs(model, output_fn, examples, batched,
                                  lambda e: current.__setitem__(0, e))
    finally:
        for h in handles:
            h.remove()
    n_ex, n_out = out.shape
    rows = n_ex * n_out
    targets = [r.output for r in records]
    grads_per_output: list[list[torch.Tensor]] = []
    for c in range(n_out):
        got = torch.autograd.grad(out[:, c].sum(), targets, retain_graph=True, allow_unused=True)
        grads_per_output.append([torch.zeros_like(t) if g is None else g
                                 for t, g in zip(targets, got)])
    reference = None
    if check:
        params = [p for _, p in selected]
        got = torch.autograd.grad(out.sum(), params, allow_unused=True)
        reference = [torch.zeros_like(p) if g is None else g for p, g in zip(params, got)]

    # group the records of one module by occurrence (a module may run more than once per example)
    groups: dict[tuple[int, int], list[tuple[_Record, list[torch.Tensor]]]] = {}
    seen: dict[tuple[int, int | None], int] = {}
    for k, rec in enumerate(records):
        occ_key = (id(rec.module), rec.example)
        occurrence = seen.get(occ_key, 0)
        seen[occ_key] = occurrence + 1
        groups.setdefault((id(rec.module), occurrence), []).append(
            (rec, [grads_per_output[c][k] for c in range(n_out)]))

    block = BlockFactors(rows=rows, uses=[[] for _ in selected])
    params_by_index = [p for _, p in selected]
    for entries in groups.values():
        module, owned = entries[0][0].module, entries[0][0].owned
        use_list = _uses_for_group(module, owned, entries, n_ex, n_out, params_by_index)
        for index, use in use_list:
            block.uses[index].append(use)
    return block, reference


def _uses_for_group(module, owned, entries, n_ex: int, n_out: int, params) -> list[tuple[int, Use]]:
    """Turn the records of one module occurrence into per-parameter uses over all block rows."""
    batched = entries[0][0].example is None
    is_linear = isinstance(module, torch.nn.Linear) or _conv1d_like(module)
    is_embedding = isinstance(module, torch.nn.Embedding) and module.max_norm is None
    if is_linear or is_embedding:
        parts_in, parts_grad = [], []
        for rec, grads in entries:
            count = n_ex if batched else 1
            x = rec.args[0] if rec.args else next(iter(rec.kwargs.values()))
            x = x.detach()
            x = x.reshape(count, -1) if is_embedding else _split_rows(x, count)
            g = torch.stack([_split_rows(gc.detach(), count) for gc in grads], dim=1)
            g = g.reshape(count * n_out, *g.shape[2:])
            parts_in.append((rec.example, _repeat_outputs(x, n_out)))
            parts_grad.append((rec.example, g))
        if batched:
            x, g = parts_in[0][1], parts_grad[0][1]
        else:
            rows = n_ex * n_out
            x = _pad_tokens([(e * n_out + c, t[c:c + 1]) for e, t in parts_in for c in range(n_out)],
                            rows, -1 if is_embedding else 0.0)
            g = _pad_tokens([(e * n_out + c, t[c:c + 1]) for e, t in parts_grad
                             for c in range(n_out)], rows, 0.0)
        uses = []
        for name, index in owned:
            if is_embedding:
                ids = x.long()
                if module.padding_idx is not None:  # the padding row never receives gradient
                    ids = ids.masked_fill(ids == module.padding_idx, -1)
                uses.append((index, Use(kind="embedding", out=ids, inp=g)))
            elif name == "bias":
                ones = torch.ones(*g.shape[:2], 1, dtype=g.dtype)
                uses.append((index, Use(kind="linear", out=g, inp=ones)))
            elif _conv1d_like(module):
                uses.append((index, Use(kind="linear", out=x, inp=g)))
            else:
                uses.append((index, Use(kind="linear", out=g, inp=x)))
        return uses
    # any other module: per-example vector-Jacobian products of the module alone
    owned_params = [params[i] for _, i in owned]
    rows = n_ex * n_out
    dense = [torch.zeros(rows, p.numel(), dtype=p.dtype) for p in owned_params]
    for rec, grads in entries:
        count = n_ex if batched else 1
        per_param = _dense_rows(rec, [g.detach() for g in grads], owned_params, count)
        # rows come out ordered (example, output), output fastest: the block's row order
        base = 0 if batched else rec.example * n_out
        for k, values in enumerate(per_param):
            dense[k][base: base + values.shape[0]] += values
    return [(i, Use(kind="dense", out=d)) for (_, i), d in zip(owned, dense)]


def capture_block_loop(model: torch.nn.Module, output_fn: Callable, examples: Sequence,
                       selected: list[tuple[str, torch.nn.Parameter]],
                       batched: bool) -> BlockFactors:
    """The universal path: one forward and one backward per example and output."""
    params = [p for _, p in selected]
    per_param: list[list[torch.Tensor]] = [[] for _ in params]
    n_out = None
    for e in range(len(examples)):
        one = examples[e:e + 1] if batched else [examples[e]]
        with torch.enable_grad():
            out = forward_outputs(model, output_fn, one, batched)[0]
        n_out = out.shape[0]
        for c in range(n_out):
            got = torch.autograd.grad(out[c], params, retain_graph=c < n_out - 1,
                                      allow_unused=True)
            for k, (p, g) in enumerate(zip(params, got)):
                per_param[k].append(torch.zeros(p.numel(), dtype=p.dtype) if g is None
                                    else g.reshape(-1).detach())
    rows = len(examples) * cast(int, n_out)
    return BlockFactors(rows=rows,
                        uses=[[Use(kind="dense", out=torch.stack(v))] for v in per_param])


def summed_gradients(block: BlockFactors, selected) -> list[torch.Tensor]:
    """Sum over the block's rows of the per-row gradients that the factors describe."""
    sums = []
    for (_, p), uses in zip(selected, block.uses):
        total = torch.zeros(p.numel(), dtype=torch.float64)
        for use in uses:
            if use.kind == "linear":
                assert use.inp is not None  # a linear use carries its input
                total += torch.einsum("rto,rti->oi", use.out.double(), use.inp.double()).reshape(-1)
            elif use.kind == "embedding":
                assert use.inp is not None  # an embedding use carries its gradients
                ids, grads = use.out.reshape(-1), use.inp.reshape(-1, use.inp.shape[-1]).double()
                keep = ids >= 0
                table = torch.zeros(p.shape[0], grads.shape[1], dtype=torch.float64)
                table.index_add_(0, ids[keep], grads[keep])
                total += table.reshape(-1)
            else:
                total += use.out.double().sum(0)
        sums.append(total)
    return sums


def validate_capture(block: BlockFactors, reference: list[torch.Tensor], selected) -> str | None:
    """None when the factors add up to autograd's summed gradient, else what disagrees."""
    for (name, p), got, want in zip(selected, summed_gradients(block, selected), reference):
        want = want.double().reshape(-1)
        tol = 1e-9 if p.dtype == torch.float64 else 2e-4
        scale = max(float(want.norm()), float(got.norm()), 1e-30)
        err = float((got - want).norm()) / scale
        if err > tol and float(want.norm()) + float(got.norm()) > 1e-20:
            return f"{name}: hook factors differ from autograd by {err:.2e} (relative)"
    return None

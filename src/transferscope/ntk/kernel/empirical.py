"""The empirical NTK ``K_ij = <grad_S f(x_i), grad_S f(x_j)>`` of any ``torch.nn.Module``.

Public entry: :func:`empirical_ntk` (the float64 matrix) and :func:`empirical_ntk_result`
(the matrix with what it cost and, for sketches, the error it implies).

How it is computed, and why. The Jacobian (n x P, P = 26.5M for SmolLM2's attention) never
fits in memory, but each per-example gradient of a linear layer is a sum of T outer products,
``G_i = sum_t delta_t a_t^T``. One batched forward and backward per block of examples, with
hooks on the modules that own parameters of S, records those factors (``a`` = layer input,
``delta`` = gradient of f at the layer output) instead of gradients (capture.py). From the
factors the Gram is accumulated in float64 one chunk of parameters at a time, over all rows
(local.py; the chunk's factors take at most a quarter of ``memory_budget_gb``), per
parameter choosing the cheaper of two exact routes (gram.py): the structured one,
``<G_i, G_j> = sum((D_i D_j^T) * (A_i A_j^T))`` (cheap when prompts are short), or
materialising the per-example gradients of that one parameter, one band of rows of the weight
at a time, and multiplying. ``sketch`` mode
instead CountSketches every per-example gradient to d dimensions in a single pass
(sketch.py), with the relative error it implies. With a cache entry (``cache_key``)
finished blocks are written to disk as they complete, so an interrupted run resumes where it
stopped; without one they stay in memory while they fit half the budget (the rest go to disk).

Precision (our choice): gradients are computed in the model's dtype. Their Gram is always summed
in float64; float64 gradients are also multiplied in float64, float32 gradients in float32 over
32768-coordinate chunks (relative error below 1e-6, the size of the float32 gradients' own error;
``gram_dtype="float64"`` multiplies them in float64 as well, about 2x slower).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch

from transferscope.core.cache import Cache, content_key
from transferscope.core.errors import input_error
from transferscope.ntk.kernel.local import KernelDriver
from transferscope.ntk.kernel.options import EngineOptions
from transferscope.ntk.kernel.sketch import sketch_error
from transferscope.ntk.params import ParamSpec, parameter_count, select_parameters

Mode = Literal["exact", "sketch"]
OutputFn = Callable[[torch.nn.Module, Any], torch.Tensor]

CACHE_NAMESPACE = "ntk-kernels"
# the code an entry depends on: the engine, the prompt task's output function, the parameter
# sets; the cache's version folder digests it with the package version (no hand-set format)
CACHE_CODE = ("transferscope.ntk.kernel", "transferscope.ntk.task", "transferscope.ntk.params")


def batched_output(fn: OutputFn) -> OutputFn:
    """Mark ``fn(model, batch) -> (B,) or (B, C)`` as taking a batch (a list slice or tensor slice).

    Examples must not interact inside the batch (no batch norm, masks that isolate padding): the
    engine reads example i's gradient from row i. Unbatched output functions work too, slower.
    """
    fn.batched = True  # type: ignore[attr-defined]
    return fn


@dataclass(kw_only=True)
class KernelResult:
    """A kernel matrix and how it was obtained."""

    kernel: np.ndarray
    mode: str
    n_rows: int
    n_cols: int
    outputs_per_example: int
    n_params: int
    param_names: list[str]
    sketch_dim: int | None = None
    error_bound: float | None = None  # relative Frobenius error bound, holds w.p. >= 1 - delta
    error_rms: float | None = None  # expected relative Frobenius error (root mean square)
    delta: float | None = None
    seed: int | None = None
    seconds: float = 0.0
    from_cache: bool = False
    cache_path: str | None = None
    details: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Everything but the matrix, JSON-ready."""
        out = asdict(self)
        out.pop("kernel")
        return out


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over every parameter's and buffer's name, dtype, shape and bytes.

    Keys a cached kernel to the exact weights, frozen ones included (they shape the gradients).
    """
    h = hashlib.sha256(type(model).__qualname__.encode())
    tensors = list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers())
    for name, tensor in tensors:
        t = tensor.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _as_examples(inputs: Any, label: str) -> Sequence:
    if isinstance(inputs, torch.Tensor | np.ndarray):
        if inputs.ndim == 0 or len(inputs) == 0:
            raise input_error("empirical_ntk", label, f"array of shape {tuple(inputs.shape)}",
                              "at least one example along the first axis")
        # a tensor indexes and measures like a sequence of its rows
        return cast(Sequence, torch.as_tensor(inputs) if isinstance(inputs, np.ndarray) else inputs)
    if isinstance(inputs, str | bytes) or not hasattr(inputs, "__len__"):
        raise input_error("empirical_ntk", label, type(inputs).__name__,
                          "a sequence of examples (list, tuple, tensor or array)")
    if len(inputs) == 0:
        raise input_error("empirical_ntk", label, "[]", "at least one example")
    return inputs


def _data_key(inputs: Sequence | None) -> Any:
    if inputs is None:
        return None
    if isinstance(inputs, torch.Tensor):
        return inputs
    return [x if isinstance(x, str | int | float | torch.Tensor | np.ndarray) else repr(x)
            for x in inputs]


def _resolve_cache_key(cache_key: str | None, output_fn: OutputFn, model, selected, mode,
                       settings: dict, inputs, inputs2) -> str | None:
    if cache_key is None:
        return None
    if cache_key != "auto":
        return content_key("user", cache_key, mode, settings)
    token = getattr(output_fn, "cache_token", None)
    if token is None:  # an arbitrary callable cannot be fingerprinted safely: do not cache
        return None
    return content_key(model_fingerprint(model), [n for n, _ in selected],
                       token, mode, settings, _data_key(inputs), _data_key(inputs2))


def empirical_ntk_result(
    model: torch.nn.Module,
    inputs: Any,
    output_fn: OutputFn,
    params: ParamSpec = "attention",
    mode: Mode = "exact",
    inputs2: Any = None,
    *,
    options: EngineOptions | None = None,
    **settings: Any,
) -> KernelResult:
    """The empirical NTK of ``output_fn`` w.r.t. the parameter set ``params``, with its metadata.

    ``inputs``: a sequence of examples (or a tensor whose first axis indexes them); ``inputs2``
    gives the cross kernel K(inputs, inputs2). ``output_fn(model, x)`` returns the scalar (or C
    outputs) for one example; mark it with :func:`batched_output` to give it whole blocks.
    With C outputs per example, row ``i * C + c`` of the kernel is example i, output c.
    How it is computed (memory budget, block size, sketch size and seed, Gram route, caching,
    progress, executor) is ``options``; ``settings`` are :class:`EngineOptions` fields given by
    name (``block_size=8``), overriding those of ``options``. None of them changes the numbers
    of an exact kernel; the executor never does (same numbers, same cache entry).
    """
    started = time.perf_counter()
    options = replace(EngineOptions() if options is None else options, **settings)
    if mode not in ("exact", "sketch"):
        raise input_error("empirical_ntk", "mode", mode, "'exact' or 'sketch'")
    if mode == "sketch":
        options.check_sketch()
    examples = _as_examples(inputs, "inputs")
    examples2 = None if inputs2 is None else _as_examples(inputs2, "inputs2")
    selected = select_parameters(model, params)
    sketch_dim, seed = options.sketch_dim, options.seed
    key_settings = {"sketch_dim": sketch_dim, "seed": seed} if mode == "sketch" else {}
    key = _resolve_cache_key(options.cache_key, output_fn, model, selected, mode, key_settings,
                             examples, examples2)
    cache = Cache(CACHE_NAMESPACE, code=CACHE_CODE) if key else None
    if cache is not None and key is not None and cache.has_array(key) and cache.has_json(key):
        result = KernelResult(kernel=cast(np.ndarray, cache.load_array(key)),
                              **cast(dict, cache.load_json(key)))
        result.from_cache = True
        return result

    work = cache.dir(cast(str, key) + "-work") if cache is not None else Path(tempfile.mkdtemp(prefix="entk-"))
    try:
        run = KernelDriver(model, output_fn, selected, mode, work, options,
                        persist=cache is not None)
        kernel, details = run.compute(examples, examples2)
    finally:
        if cache is None:
            shutil.rmtree(work, ignore_errors=True)
    result = KernelResult(
        kernel=kernel, mode=mode, n_rows=kernel.shape[0], n_cols=kernel.shape[1],
        outputs_per_example=run.n_outputs, n_params=parameter_count(selected),
        param_names=[n for n, _ in selected], seconds=time.perf_counter() - started,
        details=details, seed=seed if mode == "sketch" else None,
    )
    if mode == "sketch":
        rms, bound = sketch_error(cast(np.ndarray, run.sketch_diagonal), kernel, sketch_dim, options.delta,
                                  symmetric=examples2 is None, diagonal2=run.sketch_diagonal2)
        result.sketch_dim, result.error_rms, result.error_bound, result.delta = (
            sketch_dim, rms, bound, options.delta)
    if cache is not None:
        assert key is not None  # a cache is opened only under a key
        result.cache_path = str(cache.path(key, ".npy"))
        cache.save_array(key, kernel)
        cache.save_json(key, {k: v for k, v in result.summary().items() if k != "from_cache"})
        shutil.rmtree(work, ignore_errors=True)
    return result


def empirical_ntk(
    model: torch.nn.Module,
    inputs: Any,
    output_fn: OutputFn,
    params: ParamSpec = "attention",
    mode: Mode = "exact",
    inputs2: Any = None,
    *,
    options: EngineOptions | None = None,
    **settings: Any,
) -> np.ndarray:
    """The float64 kernel matrix (n x n, or n x n2 with ``inputs2``); see :func:`empirical_ntk_result`."""
    return empirical_ntk_result(model, inputs, output_fn, params, mode, inputs2,
                                options=options, **settings).kernel

"""Long real fine-tuning of the last k blocks, made affordable: the frozen blocks run once.

When the trained set S lies in the last k transformer blocks of a causal LM (``attention@last-k``,
``last-k``), every block below them is frozen, so the hidden states entering block ``L - k``
are the same at every step. They are computed once per text (one full forward pass); each step
then runs only the last k blocks, the final norm and the label-word rows of the LM head, forward
and backward. The numbers are those of full-batch gradient descent on the whole model (the tests
check the outputs against the full forward pass before and after training); a step costs about
k/L of a full one, which is what lets ``ntk validate`` train past the held-out optimum (hundreds
to thousands of steps) on a CPU.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from transferscope.core.errors import InputError
from transferscope.ntk.experiments.finetune import parameter_spec
from transferscope.ntk.params import select_parameters
from transferscope.ntk.task import PromptTask

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@dataclass(kw_only=True, frozen=True)
class FrozenInputs:
    """What enters block ``L - k`` for a list of texts: hidden states, mask and positions."""

    hidden: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor


@dataclass(kw_only=True, frozen=True)
class TailRun:
    """Held-out squared error ``mean((f - y)^2)`` of real gradient descent at ``steps``."""

    steps: np.ndarray
    test_errors: np.ndarray
    train_errors: np.ndarray
    learning_rate: float
    blocks: int  # k: the blocks run at every step
    seconds: float


def trained_blocks(task: PromptTask, params: str) -> int:
    """k such that S lies in the last k blocks; InputError when S reaches below them or the
    model is not a causal LM with numbered blocks."""
    base = task.model.body.base_model if task.kind == "causal" else None
    layers = getattr(base, "layers", None)
    if layers is None or task.readout != "label-words":
        raise InputError(f"tail training: model {task.model_name}: expected a causal LM with "
                         "numbered blocks read out by label words")
    names = [name for name, _ in select_parameters(task.model, parameter_spec(task, params))]
    found = [_LAYER.search(name) for name in names]
    blocks = [int(m.group(1)) for m in found if m is not None]
    if not names or len(blocks) < len(found):
        raise InputError(f"tail training: params = {params!r}: expected parameters inside "
                         "transformer blocks only (e.g. attention@last-1)")
    return len(layers) - min(blocks)


@contextmanager
def _only_last_blocks(task: PromptTask, k: int) -> Iterator[None]:
    """The base model with its last k blocks only, while in use (restored afterwards)."""
    base: Any = task.model.body.base_model  # a transformers model: blocks and config
    full, count = base.layers, base.config.num_hidden_layers
    base.layers = torch.nn.ModuleList(list(full)[-k:])
    base.config.num_hidden_layers = k
    try:
        yield
    finally:
        base.layers, base.config.num_hidden_layers = full, count


def frozen_inputs(task: PromptTask, texts: Sequence[str], k: int) -> FrozenInputs:
    """One full forward pass of ``texts``, keeping the hidden states that enter block L - k."""
    base: Any = task.model.body.base_model  # a transformers model: blocks and config
    seen: list[torch.Tensor] = []
    hook = base.layers[len(base.layers) - k].register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach()))
    where = next(task.model.parameters()).device
    enc = {key: v.to(where) for key, v in task.encode(list(texts)).items()}
    mask = enc["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    try:
        with torch.no_grad():
            base(input_ids=enc["input_ids"], attention_mask=mask, position_ids=positions,
                 use_cache=False)
    finally:
        hook.remove()
    return FrozenInputs(hidden=seen[0], mask=mask, positions=positions)


def tail_outputs(task: PromptTask, inputs: FrozenInputs, k: int) -> torch.Tensor:
    """f = logit(word+) - logit(word-) from the frozen inputs through the last k blocks."""
    body: Any = task.model.body  # a transformers model
    with _only_last_blocks(task, k):
        hidden = body.base_model(inputs_embeds=inputs.hidden, attention_mask=inputs.mask,
                                 position_ids=inputs.positions, use_cache=False
                                 ).last_hidden_state[:, -1]
    head = body.get_output_embeddings()
    rows = head.weight[task.word_ids]
    logits = hidden @ rows.T + (0 if head.bias is None else head.bias[task.word_ids])
    return logits[:, 0] - logits[:, 1]


def evaluation_steps(horizon: int, dense: int = 32, points: int = 60) -> np.ndarray:
    """Every step up to ``dense``, then a log grid to ``horizon``: where the held-out error is
    measured (the optimum is read on this grid)."""
    grid = np.geomspace(max(dense, 1), max(horizon, dense + 1), points)
    steps = np.concatenate([np.arange(min(dense, horizon) + 1), np.round(grid)])
    return np.unique(steps[steps <= horizon]).astype(np.int64)


def tail_gradient_descent(task: PromptTask, params: str, train_texts: Sequence[str],
                          y_train: np.ndarray, test_texts: Sequence[str], y_test: np.ndarray,
                          learning_rate: float, horizon: int,
                          progress: Callable[[int, int], None] | None = None) -> TailRun:
    """Full-batch gradient descent on the half squared loss ``mean((f - y)^2) / 2`` over S for
    ``horizon`` steps (so ``f_{t+1} ~ f_t - lr (K/n)(f_t - y)`` in the kernel regime), the
    held-out and training errors at :func:`evaluation_steps`; the model is left unchanged."""
    import time

    started = time.perf_counter()
    k = trained_blocks(task, params)
    selected = select_parameters(task.model, parameter_spec(task, params))
    train, test = frozen_inputs(task, train_texts, k), frozen_inputs(task, test_texts, k)
    where = train.hidden.device
    y_tr = torch.as_tensor(np.asarray(y_train), dtype=train.hidden.dtype, device=where)
    y_te = torch.as_tensor(np.asarray(y_test), dtype=train.hidden.dtype, device=where)
    initial = [p.detach().clone() for _, p in selected]
    flags = {name: p.requires_grad for name, p in task.model.named_parameters()}
    chosen = {id(p) for _, p in selected}
    for p in task.model.parameters():
        p.requires_grad_(id(p) in chosen)
    record = set(evaluation_steps(horizon).tolist())
    steps, test_errors, train_errors = [], [], []
    try:
        for step in range(horizon + 1):
            f_train = tail_outputs(task, train, k)
            if step in record:
                with torch.no_grad():
                    f_test = tail_outputs(task, test, k)
                steps.append(step)
                test_errors.append(float(((f_test - y_te) ** 2).mean()))
                train_errors.append(float(((f_train.detach() - y_tr) ** 2).mean()))
            if step == horizon:
                break
            loss = 0.5 * ((f_train - y_tr) ** 2).mean()
            grads = torch.autograd.grad(loss, [p for _, p in selected])
            with torch.no_grad():
                for (_, p), g in zip(selected, grads, strict=True):
                    p.sub_(learning_rate * g)
            if progress is not None:
                progress(step + 1, horizon)
    finally:
        with torch.no_grad():
            for (_, p), saved in zip(selected, initial, strict=True):
                p.copy_(saved)
        for name, p in task.model.named_parameters():
            p.requires_grad_(flags[name])
    return TailRun(steps=np.array(steps), test_errors=np.array(test_errors),
                   train_errors=np.array(train_errors),
                   learning_rate=float(learning_rate), blocks=k,
                   seconds=time.perf_counter() - started)

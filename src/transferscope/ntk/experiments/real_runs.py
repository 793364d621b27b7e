"""Real fine-tuning at scale against the stop's predicted range (issue #27).

Each run trains a parameter set S of SmolLM2 for real on a random training split of a pool of
labelled texts and records the held-out error on a log grid of steps until it has passed its
held-out optimum; the prediction (:func:`~transferscope.ntk.recommend.recommend_stop` on the
eNTK of the training split) is made before the run. Per run: the predicted range and point,
the realised optimum and the excess risk of stopping at the prediction,
``(e(T) - e(T_opt)) / (e(0) - e(T_opt))``.

What makes ~40 runs affordable on 2 CPUs (ours):

* ``attention@last-1`` (the attention projections of the last block): everything below the
  last block is frozen, so the residual stream entering it, its input norm and the rotary
  position terms are computed once per text (one forward pass of the pool, kept in memory),
  and only the last position feeds f, so a step runs the last block's keys/values over the
  prompt, its query, attention output, MLP and final norm at the last position only, and the
  two label-word rows of the LM head (``LastBlock``; tested against the full model's f and
  its gradient);
* ``attention`` (every block's projections): the full model, short texts and small n only;
* runs stop once they are past the held-out optimum (and past the prediction), and every
  finished run is one JSON file, so a killed chunk resumes where it stopped.

Optimizers and losses: full-batch gradient descent (``gd``, the kernel theory's setting) or
AdamW (``adamw``, no kernel theory: the prediction in GD steps is applied as it is, to measure
how far it goes); half squared loss on f (``half-mse``) or the two-word cross-entropy
``log(1 + exp(-y f))`` on the logit difference f (``cross-entropy``: the linearised dynamics
are not the kernel trajectory the prediction models). The held-out error is the run's own loss
on the held-out texts; accuracy is recorded beside it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from transferscope.core.errors import InputError
from transferscope.core.io import read_json, write_json
from transferscope.ntk import rule_scores
from transferscope.ntk.experiments.finetune import parameter_spec
from transferscope.ntk.params import select_parameters
from transferscope.ntk.recommend import recommend_stop, trajectory_errors
from transferscope.ntk.task import PromptTask

OPTIMIZERS = ("gd", "adamw")
LOSSES = ("half-mse", "cross-entropy")
ADAMW_LR = 1e-4  # ours: a common fine-tuning learning rate for AdamW
ADAMW_WEIGHT_DECAY = 0.01  # torch's default


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """One real run: which split of which pool, what is trained and how, how far."""

    task: str
    n: int
    split: int
    params: str = "attention@last-1"
    optimizer: str = "gd"
    loss: str = "half-mse"
    max_steps: int = 3000  # never more than this
    min_steps: int = 64  # never fewer (the optimum is passed only after it)
    rise: float = 1.02  # past the optimum: the error is this factor above its least...
    past_factor: float = 2.0  # ...and the step is this factor beyond the least's step

    def key(self) -> str:
        return (f"{self.task}-n{self.n}-s{self.split}-{self.params}-{self.optimizer}-"
                f"{self.loss}").replace("@", "_")

    def check(self) -> RunConfig:
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"real run: optimizer = {self.optimizer!r}: expected one of "
                             f"{', '.join(OPTIMIZERS)}")
        if self.loss not in LOSSES:
            raise InputError(f"real run: loss = {self.loss!r}: expected one of "
                             f"{', '.join(LOSSES)}")
        return self


def loss_of(f: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean loss: ``(f - y)^2 / 2`` or ``log(1 + exp(-y f))``."""
    if loss == "cross-entropy":
        return torch.nn.functional.softplus(-y * f).mean()
    return 0.5 * ((f - y) ** 2).mean()


# ---------------------------------------------------------------------------- fast last block
class LastBlock:
    """f through the last block of a Llama-type causal LM from cached inputs, last position
    only (module notes). ``texts`` are encoded and run through the frozen blocks once."""

    def __init__(self, task: PromptTask, texts: Sequence[str], batch_size: int = 32):
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

        self._rope, self._repeat = apply_rotary_pos_emb, repeat_kv
        base = getattr(task.model.body, "base_model", None)
        layers = getattr(base, "layers", None)
        if task.kind != "causal" or layers is None or not hasattr(base, "rotary_emb"):
            raise InputError(f"last-block runs: model {task.model_name}: expected a Llama-type "
                             "causal LM (layers, rotary_emb)")
        self.task, self.base, self.block = task, cast(Any, base), layers[-1]  # checked above
        head = cast(Any, task.model.body).get_output_embeddings()  # a transformers model
        rows = head.weight[task.word_ids].detach()
        self.direction = (rows[0] - rows[1]).clone()
        self.offset = (0.0 if head.bias is None else
                       float(head.bias[cast(list[int], task.word_ids)[0]]
                             - head.bias[cast(list[int], task.word_ids)[1]]))
        parts = [self._frozen(list(texts[s:s + batch_size]))
                 for s in range(0, len(texts), batch_size)]
        width = max(p["x"].shape[1] for p in parts)
        self.x = torch.cat([_left_pad(p["x"], width) for p in parts])
        self.cos = torch.cat([_left_pad(p["cos"], width) for p in parts])
        self.sin = torch.cat([_left_pad(p["sin"], width) for p in parts])
        self.keep = torch.cat([_left_pad(p["keep"], width) for p in parts])
        self.last = torch.cat([p["last"] for p in parts])

    def _frozen(self, texts: list[str]) -> dict[str, torch.Tensor]:
        seen: list[torch.Tensor] = []
        hook = self.block.register_forward_pre_hook(
            lambda module, args, kwargs: seen.append(args[0].detach() if args
                                                     else kwargs["hidden_states"].detach()),
            with_kwargs=True)
        where = next(self.task.model.parameters()).device
        enc = {k: v.to(where) for k, v in self.task.encode(texts).items()}
        mask = enc["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        try:
            with torch.no_grad():
                self.base(input_ids=enc["input_ids"], attention_mask=mask,
                          position_ids=positions, use_cache=False)
                hidden = seen[0]
                cos, sin = self.base.rotary_emb(hidden, positions)
                x = self.block.input_layernorm(hidden)
        finally:
            hook.remove()
        return {"x": x, "cos": cos, "sin": sin, "keep": mask.bool(), "last": hidden[:, -1]}

    def outputs(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """f of the cached texts (``index``: a subset), differentiable in the block's
        attention weights."""
        sel = slice(None) if index is None else index
        x, cos, sin, keep = self.x[sel], self.cos[sel], self.sin[sel], self.keep[sel]
        attn = self.block.self_attn
        batch, width, _ = x.shape
        q = attn.q_proj(x[:, -1:]).view(batch, 1, -1, attn.head_dim).transpose(1, 2)
        k = attn.k_proj(x).view(batch, width, -1, attn.head_dim).transpose(1, 2)
        v = attn.v_proj(x).view(batch, width, -1, attn.head_dim).transpose(1, 2)
        q, _ = self._rope(q, q, cos[:, -1:], sin[:, -1:])
        k, _ = self._rope(k, k, cos, sin)
        k = self._repeat(k, attn.num_key_value_groups)
        v = self._repeat(v, attn.num_key_value_groups)
        scores = (q @ k.transpose(2, 3)) * attn.scaling
        scores = scores.masked_fill(~keep[:, None, None, :], torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        mixed = (probs @ v).transpose(1, 2).reshape(batch, -1)
        h = self.last[sel] + attn.o_proj(mixed)
        h = h + self.block.mlp(self.block.post_attention_layernorm(h))
        return self.base.norm(h) @ self.direction + self.offset


def _left_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    extra = width - t.shape[1]
    if extra == 0:
        return t
    pad = torch.zeros((t.shape[0], extra, *t.shape[2:]), dtype=t.dtype, device=t.device)
    return torch.cat([pad, t], dim=1)


# ---------------------------------------------------------------------------- one run
@dataclass(frozen=True, kw_only=True)
class RealRun:
    """A finished run: its curve, the prediction made before it, and their comparison."""

    config: dict
    lr: float
    steps: list[int]
    test_errors: list[float]
    test_accuracy: list[float]
    t_opt: int
    passed_optimum: bool
    horizon: int
    predicted: int
    predicted_ci: tuple[int, int]
    decided: bool
    safe_steps: int
    kernel_t_opt: int
    excess_at_prediction: float
    excess_at_safe: float
    prediction_within_horizon: bool
    covered: bool
    seconds: float


def excess_risk(steps: np.ndarray, errors: np.ndarray, t: int) -> float:
    """:func:`transferscope.ntk.rule_scores.excess_risk` on a recorded curve (past its last step:
    the error there)."""
    return rule_scores.excess_risk(np.asarray(errors), np.asarray(steps), t)


def _record_steps(limit: int, dense: int = 32, points: int = 90) -> list[int]:
    grid = np.geomspace(dense, max(limit, dense + 1), points)
    return sorted({*range(dense + 1), *np.round(grid).astype(int).tolist()})


def train_curve(outputs_train: Callable[[], torch.Tensor],
                outputs_test: Callable[[], torch.Tensor], params: list[torch.nn.Parameter],
                y_train: torch.Tensor, y_test: torch.Tensor, config: RunConfig, lr: float,
                must_reach: int) -> dict:
    """Train until past the held-out optimum and at least ``must_reach`` steps (both capped by
    ``config.max_steps``); the held-out loss and accuracy on a dense-then-log grid. The
    parameters are restored afterwards."""
    saved = [p.detach().clone() for p in params]
    record = set(_record_steps(config.max_steps))
    optimizer = (torch.optim.AdamW(params, lr=lr, weight_decay=ADAMW_WEIGHT_DECAY)
                 if config.optimizer == "adamw" else None)
    steps, errors, accuracy = [], [], []
    least, least_step = math.inf, 0
    try:
        for step in range(config.max_steps + 1):
            if step in record:
                with torch.no_grad():
                    f = outputs_test()
                    e = float(loss_of(f, y_test, config.loss)) * (
                        2.0 if config.loss == "half-mse" else 1.0)  # half-mse: report MSE
                steps.append(step)
                errors.append(e)
                accuracy.append(float((torch.sign(f) == y_test).float().mean()))
                if e < least:
                    least, least_step = e, step
                past = (e >= config.rise * least and step >= config.past_factor * least_step
                        and step >= config.min_steps)
                if past and step >= must_reach:
                    break
            if step == config.max_steps:
                break
            loss = loss_of(outputs_train(), y_train, config.loss)
            grads = torch.autograd.grad(loss, params)
            if optimizer is None:
                with torch.no_grad():
                    for p, g in zip(params, grads, strict=True):
                        p.sub_(lr * g)
            else:
                for p, g in zip(params, grads, strict=True):
                    p.grad = g
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
                p.grad = None
    return {"steps": steps, "errors": errors, "accuracy": accuracy}


@dataclass(kw_only=True)
class Pool:
    """A task's pool on one parameter set: texts, targets, f_0 and the eNTK over all of it."""

    name: str
    texts: list[str]
    y: np.ndarray
    f0: np.ndarray
    kernel: np.ndarray
    params: str


def split_of(pool: Pool, n: int, split: int) -> tuple[np.ndarray, np.ndarray]:
    """The training indices of split ``split`` at size n (seeded by both) and the rest."""
    rng = np.random.default_rng([n, split])
    train = np.sort(rng.choice(pool.y.size, n, replace=False))
    return train, np.setdiff1d(np.arange(pool.y.size), train)


def run_one(task: PromptTask, pool: Pool, config: RunConfig, fast: LastBlock | None,
            max_test: int = 128) -> RealRun:
    """One real run with the prediction made first (module notes)."""
    config.check()
    started = time.perf_counter()
    train, test = split_of(pool, config.n, config.split)
    test = test[:max_test]
    k_tr = pool.kernel[np.ix_(train, train)]
    y_tr, f0_tr = pool.y[train], pool.f0[train]
    rec = recommend_stop(k_tr, y_tr, f0_tr, seed=config.split)
    lr = rec.lr if config.optimizer == "gd" else ADAMW_LR
    evals, evecs = np.linalg.eigh(0.5 * (k_tr + k_tr.T) / config.n)
    grid = np.unique(np.round(np.geomspace(1, 10**7, 400))).astype(np.int64)
    kernel_curve = trajectory_errors(np.clip(evals, 0, None), evecs, y_tr - f0_tr, rec.lr, grid,
                                     pool.kernel[np.ix_(test, train)],
                                     pool.y[test] - pool.f0[test])
    selected = [p for _, p in select_parameters(task.model, parameter_spec(task, config.params))]
    flags = {id(p): p.requires_grad for p in task.model.parameters()}
    for p in task.model.parameters():
        p.requires_grad_(False)
    for p in selected:
        p.requires_grad_(True)
    dtype = next(task.model.parameters()).dtype
    y_train = torch.as_tensor(y_tr, dtype=dtype)
    y_test = torch.as_tensor(pool.y[test], dtype=dtype)
    if fast is not None:
        i_tr, i_te = torch.as_tensor(train), torch.as_tensor(test)

        def out_train() -> torch.Tensor:
            return fast.outputs(i_tr)

        def out_test() -> torch.Tensor:
            return fast.outputs(i_te)
    else:
        enc_tr = task.encode([pool.texts[i] for i in train])
        enc_te = task.encode([pool.texts[i] for i in test])

        def out_train() -> torch.Tensor:
            return task.forward(task.model, enc_tr)

        def out_test() -> torch.Tensor:
            return task.forward(task.model, enc_te)
    must_reach = min(config.max_steps, max(rec.steps, rec.safe_steps))
    try:
        curve = train_curve(out_train, out_test, selected, y_train, y_test, config, lr,
                            must_reach)
    finally:
        for p in task.model.parameters():
            p.requires_grad_(flags[id(p)])
    steps, errors = np.array(curve["steps"]), np.array(curve["errors"])
    best = int(np.argmin(errors))
    low, high = rec.steps_ci
    return RealRun(
        config=asdict(config), lr=float(lr), steps=curve["steps"], test_errors=curve["errors"],
        test_accuracy=curve["accuracy"], t_opt=int(steps[best]),
        passed_optimum=bool(best < steps.size - 1), horizon=int(steps[-1]),
        predicted=int(rec.steps), predicted_ci=(int(low), int(high)), decided=rec.decided,
        safe_steps=int(rec.safe_steps), kernel_t_opt=int(grid[int(np.argmin(kernel_curve))]),
        excess_at_prediction=excess_risk(steps, errors, rec.steps),
        excess_at_safe=excess_risk(steps, errors, rec.safe_steps),
        prediction_within_horizon=bool(rec.steps <= steps[-1]),
        covered=bool(low <= steps[best] <= high), seconds=time.perf_counter() - started)


def run_cached(task: PromptTask, pool: Pool, config: RunConfig, fast: LastBlock | None,
               out: Path) -> dict:
    """:func:`run_one` unless ``out/<key>.json`` holds it already (resume)."""
    path = Path(out) / f"{config.key()}.json"
    if path.exists():
        return read_json(path, "real run")
    write_json(path, asdict(run_one(task, pool, config, fast)))
    return read_json(path, "real run")

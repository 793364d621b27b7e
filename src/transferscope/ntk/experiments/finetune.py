"""Real fine-tuning of the parameter set S, step by step, resumable, next to its kernel prediction.

Full-batch gradient descent (or seeded minibatch SGD) on the scalar f of a :class:`PromptTask`,
only the parameters of S move. Every step records train and held-out loss, accuracy and
outputs, so the real trajectory can be laid next to the closed-form kernel one
(:mod:`transferscope.ntk.dynamics`) at the same step counts.

Losses: ``half-mse`` = ``mean((f - y)^2) / 2`` (the theory's loss: step ``eta = lr``), ``mse``
(``eta = 2 lr``), ``cross-entropy`` = ``mean(log(1 + exp(-y f)))``, i.e. the softmax
cross-entropy restricted to the two label words (our option; no closed-form kernel trajectory).

Checkpoints (``checkpoint.pt`` in the run directory, written atomically after every
``checkpoint_every`` steps) hold S's weights, the step and the history; a run started again on
the same directory, task, data and configuration resumes from it. Minibatch order is a function
of (seed, epoch) only, so a resumed run repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch

from transferscope import __version__
from transferscope.core.cache import code_version, content_key
from transferscope.core.errors import InputError, input_error
from transferscope.core.io import atomic_write_bytes, write_json
from transferscope.ntk.data import LabeledTexts
from transferscope.ntk.params import select_parameters
from transferscope.ntk.stopping import LOSS_STEP_FACTOR
from transferscope.ntk.task import PromptTask, parameter_spec

LOSSES = ("half-mse", "mse", "cross-entropy")
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "finetune.json"
OUTPUTS_FILE = "outputs.npz"
ParamDict = dict[str, torch.Tensor]


CHECKPOINT_FIELDS = ("key", "initial", "state", "history", "step", "train_outputs",
                     "test_outputs")


def load_checkpoint(path: Path, device: torch.device) -> dict:
    """A resumable run's checkpoint; a damaged or foreign file is one line naming it."""
    try:
        saved = torch.load(path, weights_only=True, map_location=device)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        raise InputError(f"{path}: damaged ({type(exc).__name__}): expected the checkpoint of "
                         "a fine-tuning run; delete it to start over") from None
    missing = [f for f in CHECKPOINT_FIELDS if not isinstance(saved, dict) or f not in saved]
    if missing:
        raise InputError(f"{path}: field {missing[0]!r} is missing: expected the checkpoint "
                         "of a fine-tuning run; delete it to start over")
    return saved


@dataclass(kw_only=True, frozen=True)
class TrainingConfig:
    """What defines a fine-tuning run (besides task and data); part of the resume check."""

    params: str = "attention"
    steps: int = 20
    learning_rate: float = 1e-3
    loss: str = "half-mse"
    batch_size: int | None = None  # None: full batch
    seed: int = 0
    checkpoint_every: int = 1

    def validate(self) -> TrainingConfig:
        if self.loss not in LOSSES:
            raise input_error("--loss", "loss", self.loss, " or ".join(LOSSES))
        if self.steps < 1:
            raise input_error("--steps", "steps", self.steps, "a positive integer")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise input_error("--lr", "learning rate", self.learning_rate, "a finite number > 0")
        if self.batch_size is not None and self.batch_size < 1:
            raise input_error("--batch-size", "batch size", self.batch_size, "a positive integer")
        if self.checkpoint_every < 1:
            raise input_error("--checkpoint-every", "checkpoint_every", self.checkpoint_every,
                              "a positive integer")
        return self

    @property
    def step_size(self) -> float | None:
        """The kernel step eta this learning rate corresponds to (None for cross-entropy)."""
        factor = LOSS_STEP_FACTOR.get(self.loss)
        return None if factor is None else factor * self.learning_rate


@dataclass(kw_only=True)
class FinetuneResult:
    """The recorded trajectory (row t = after t updates) and the weights of S at the end."""

    history: list[dict]
    train_outputs: np.ndarray  # (steps + 1, n)
    test_outputs: np.ndarray  # (steps + 1, m)
    initial: ParamDict
    final: ParamDict
    resumed_from: int = 0
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

    def task_vector(self) -> ParamDict:
        """``tau = theta_final - theta_0`` on S."""
        return {k: self.final[k] - self.initial[k] for k in self.final}

    def best_step(self) -> int:
        """The held-out-optimal stopping time: the step of least held-out loss."""
        return int(np.argmin([row["test_loss"] for row in self.history]))


def loss_value(outputs: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    """The training loss of outputs f against targets y in {-1, +1}."""
    if loss == "cross-entropy":
        return torch.nn.functional.softplus(-targets * outputs).mean()
    squared = ((outputs - targets) ** 2).mean()
    return squared / 2 if loss == "half-mse" else squared


def _metrics(outputs: np.ndarray, targets: np.ndarray, loss: str) -> tuple[float, float]:
    value = loss_value(torch.from_numpy(outputs), torch.from_numpy(targets), loss)
    return float(value), float(np.mean(np.sign(outputs) == targets))


def snapshot(selected: list[tuple[str, torch.nn.Parameter]]) -> ParamDict:
    return {name: p.detach().clone() for name, p in selected}


def assign(selected: list[tuple[str, torch.nn.Parameter]], state: ParamDict) -> None:
    """Write ``state`` into the parameters of S (in place, no autograd)."""
    with torch.no_grad():
        for name, p in selected:
            p.copy_(state[name])


def batch_order(n: int, batch_size: int | None, seed: int, step: int) -> np.ndarray:
    """Indices of the examples used at ``step``: all (full batch) or the step's minibatch of a
    per-epoch permutation drawn from (seed, epoch), so it never depends on earlier runs."""
    if batch_size is None or batch_size >= n:
        return np.arange(n)
    per_epoch = -(-n // batch_size)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[position * batch_size:(position + 1) * batch_size]


_BATCH = 32  # texts per evaluation batch


class _Outputs:
    """f on fixed texts, tokenised once."""

    def __init__(self, task: PromptTask, texts: tuple[str, ...], batch_size: int = _BATCH):
        self.task = task
        self.batches = [task.encode(list(texts[s:s + batch_size]))
                        for s in range(0, len(texts), batch_size)]
        self.texts = texts

    def no_grad(self) -> np.ndarray:
        with torch.no_grad():
            return torch.cat([self.task.forward(self.task.model, b) for b in self.batches]
                             ).double().cpu().numpy()


def _run_key(task: PromptTask, train: LabeledTexts, test: LabeledTexts,
             config: TrainingConfig) -> str:
    """The run's identity: its inputs, and the package version with the code that trains and
    checkpoints it (a checkpoint written by other code is not resumed)."""
    return content_key(__version__, code_version(__name__, "transferscope.ntk.task",
                                                 "transferscope.ntk.params"),
                       task.settings(), str(task.model_name), train.texts,
                       train.targets, test.texts, test.targets, asdict(config))


def finetune(task: PromptTask, train: LabeledTexts, test: LabeledTexts, config: TrainingConfig,
             run_dir: str | Path, *, on_step: Callable[[int, dict], None] | None = None,
             progress: Callable[[int, int], None] | None = None) -> FinetuneResult:
    """Fine-tune S of ``task.model`` from its current weights; the model is left unchanged.

    ``on_step(t, row)`` is called after step t is recorded and checkpointed (an exception from
    it interrupts the run like a crash would); ``progress(done, total)`` reports steps.
    """
    config.validate()
    started = time.perf_counter()
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    selected = select_parameters(task.model, parameter_spec(task, config.params))
    key = _run_key(task, train, test, config)
    initial = snapshot(selected)
    history, train_rows, test_rows, start = [], [], [], 0
    checkpoint = out / CHECKPOINT_FILE
    if checkpoint.exists():
        saved = load_checkpoint(checkpoint, next(task.model.parameters()).device)
        if saved["key"] != key:
            raise InputError(f"{out}: holds a fine-tuning run of another task, data or "
                             "configuration: expected an empty directory or the same run")
        initial = saved["initial"]
        assign(selected, saved["state"])
        history, start = json.loads(saved["history"]), int(saved["step"])
        train_rows = list(saved["train_outputs"].cpu().numpy())
        test_rows = list(saved["test_outputs"].cpu().numpy())
    flags = {name: p.requires_grad for name, p in task.model.named_parameters()}
    chosen = {id(p) for _, p in selected}
    for p in task.model.parameters():
        p.requires_grad_(id(p) in chosen)
    train_eval, test_eval = _Outputs(task, train.texts), _Outputs(task, test.texts)
    y_train = torch.from_numpy(np.asarray(train.targets, dtype=np.float64))
    try:
        full_batch = config.batch_size is None or config.batch_size >= len(train)
        for step in range(start, config.steps + 1):
            record = len(history) == step  # not yet recorded (a resumed run has it)
            if record:
                f_test = test_eval.no_grad()
                # a full-batch update's own forward pass gives f_train at these weights
                reuse = full_batch and step < config.steps and len(train) <= _BATCH
                f_train = None if reuse else train_eval.no_grad()
            if step < config.steps:
                seen = _update(task, selected, train, y_train, config, step)
                if record and f_train is None:
                    f_train = seen
            if record:
                history.append(_row(step, cast(np.ndarray, f_train), train.targets, f_test, test.targets,
                                    config.loss))
                train_rows.append(f_train)
                test_rows.append(f_test)
            if step == config.steps:
                break
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
                _save_checkpoint(checkpoint, key, initial, selected, step + 1, history,
                                 train_rows, test_rows)
            if progress is not None:
                progress(step + 1, config.steps)
            if on_step is not None:
                on_step(step + 1, history[-1])
        final = snapshot(selected)
    finally:
        assign(selected, initial)
        for name, p in task.model.named_parameters():
            p.requires_grad_(flags[name])
    result = FinetuneResult(history=history, train_outputs=np.array(train_rows),
                            test_outputs=np.array(test_rows), initial=initial, final=final,
                            resumed_from=start, seconds=time.perf_counter() - started,
                            config=asdict(config))
    _write_outputs(out, result)
    return result


def _row(step: int, f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray,
         y_test: np.ndarray, loss: str) -> dict:
    train_loss, train_acc = _metrics(f_train, np.asarray(y_train, dtype=np.float64), loss)
    test_loss, test_acc = _metrics(f_test, np.asarray(y_test, dtype=np.float64), loss)
    return {"step": step, "train_loss": train_loss, "train_accuracy": train_acc,
            "test_loss": test_loss, "test_accuracy": test_acc}


def _update(task: PromptTask, selected, train: LabeledTexts, y_train: torch.Tensor,
            config: TrainingConfig, step: int) -> np.ndarray:
    """One gradient step; returns the batch's outputs before the step."""
    index = batch_order(len(train), config.batch_size, config.seed, step)
    enc = task.encode([train.texts[i] for i in index])
    outputs = task.forward(task.model, enc)
    loss = loss_value(outputs, y_train[index].to(outputs.device, outputs.dtype), config.loss)
    grads = torch.autograd.grad(loss, [p for _, p in selected])
    with torch.no_grad():
        for (_, p), g in zip(selected, grads, strict=True):
            p.sub_(config.learning_rate * g)
    return outputs.detach().double().cpu().numpy()


def _save_checkpoint(path: Path, key: str, initial: ParamDict, selected, step: int,
                     history: list[dict], train_rows: list, test_rows: list) -> None:
    buf = io.BytesIO()
    torch.save({"key": key, "step": step, "initial": initial, "state": snapshot(selected),
                "history": json.dumps(history),
                "train_outputs": torch.from_numpy(np.array(train_rows)),
                "test_outputs": torch.from_numpy(np.array(test_rows))}, buf)
    atomic_write_bytes(path, buf.getvalue())


def _write_outputs(out: Path, result: FinetuneResult) -> None:
    write_json(out / HISTORY_FILE, {"config": result.config, "history": result.history,
                                    "resumed_from": result.resumed_from,
                                    "best_step": result.best_step(), "seconds": result.seconds})
    buf = io.BytesIO()
    np.savez(buf, train=result.train_outputs, test=result.test_outputs)
    atomic_write_bytes(out / OUTPUTS_FILE, buf.getvalue())


# ---------------------------------------------------------------------------- vs the kernel
@dataclass(kw_only=True, frozen=True)
class KernelComparison:
    """Real vs linearised trajectories at the same steps, and what they say about stopping."""

    linear_train: np.ndarray  # (steps + 1, n)
    linear_test: np.ndarray  # (steps + 1, m)
    relative_distance: np.ndarray  # ||f_real - f_lin|| / ||f_lin - f_0|| on train + test, per step
    regime_steps: int  # last step with relative distance <= tolerance
    tolerance: float
    best_step_real: int
    best_step_linear: int
    linear_test_loss: np.ndarray


def compare_with_kernel(result: FinetuneResult, gd, cross_kernel: np.ndarray,
                        f0_test: np.ndarray, y_test: np.ndarray,
                        tolerance: float = 0.25) -> KernelComparison:
    """Lay the closed-form kernel trajectory (``gd``: a :class:`KernelGD` with the run's step
    size) next to the real one. ``tolerance`` (ours): the kernel regime holds while the real
    outputs stay within this fraction of the distance the linear model has moved."""
    steps = np.arange(result.train_outputs.shape[0])
    f0_train = result.train_outputs[0]
    linear_train = f0_train[None, :] + gd.train_change(steps)
    linear_test = np.asarray(f0_test)[None, :] + gd.change_at(cross_kernel, steps)
    real = np.concatenate([result.train_outputs, result.test_outputs], axis=1)
    linear = np.concatenate([linear_train, linear_test], axis=1)
    moved = np.linalg.norm(linear - linear[:1], axis=1)
    gap = np.linalg.norm(real - linear, axis=1)
    relative = np.where(moved > 0, gap / np.where(moved > 0, moved, 1.0), 0.0)
    beyond = np.flatnonzero(relative > tolerance)
    regime = int(steps[-1]) if beyond.size == 0 else int(max(beyond[0] - 1, 0))
    y = np.asarray(y_test, dtype=np.float64)
    linear_loss = ((linear_test - y[None, :]) ** 2).mean(axis=1) / 2
    return KernelComparison(linear_train=linear_train, linear_test=linear_test,
                            relative_distance=relative, regime_steps=regime, tolerance=tolerance,
                            best_step_real=result.best_step(),
                            best_step_linear=int(np.argmin(linear_loss)),
                            linear_test_loss=linear_loss)

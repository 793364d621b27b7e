"""Task vectors: fine-tune each task from theta_0, add and negate, compare with the linear model.

In the linear regime ``f(x; theta_0 + sum_k alpha_k tau_k) = f_0(x) + sum_k alpha_k K(x, X_k) c_k``
with ``c_k`` the dual coefficients of task k's kernel gradient descent, so adding task vectors
interferes through the cross-task kernel blocks ``K(X_j, X_k)``. Alignment of tasks j, k (ours):
``||K(X_j, X_k)||_F / sqrt(||K(X_j, X_j)||_F ||K(X_k, X_k)||_F)``; it has no sign, so it can say
how much two tasks touch each other but not whether they help or hurt. We add a signed measure
(also ours): the gradient cosine ``r_j^T K(X_j, X_k) r_k / sqrt(r_j^T K_jj r_j  r_k^T K_kk r_k)``
with ``r = y - f_0``, the cosine between the two tasks' first gradient steps in parameter space.
Interference of k on j: the change in task j's held-out loss when tau_k is added to tau_j.

All tasks share one prompt template and label words (the first task's), so one f and one joint
eNTK cover them. :mod:`transferscope.ntk.data` registers the derived task
``negated-vader-words``: the VADER words preceded by "not", labels flipped (negation reverses
polarity), a task that conflicts with plain sentiment by construction, and
``negated-afinn-words`` made the same way from AFINN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from transferscope.core.errors import input_error
from transferscope.core.io import write_json
from transferscope.core.outdir import claim_output
from transferscope.core.stats import pearson_interval
from transferscope.ntk import data as ntk_data
from transferscope.ntk.data import (  # noqa: F401 - the derived tasks' names, as before
    NEGATED_AFINN_TASK,
    NEGATED_TASK,
    BuiltinTask,
    LabeledTexts,
    get_task,
    negated,
)
from transferscope.ntk.device import resolve_device
from transferscope.ntk.dynamics import kernel_gd
from transferscope.ntk.experiments.finetune import (
    TrainingConfig,
    assign,
    finetune,
    parameter_spec,
    snapshot,
)
from transferscope.ntk.experiments.pool import builtin_prompt_task
from transferscope.ntk.options import TASK_VECTOR_DEFAULTS, TaskVectorConfig
from transferscope.ntk.params import select_parameters
from transferscope.ntk.pipeline import source_task
from transferscope.ntk.task import PromptTask

DEFAULT_TASKS = TASK_VECTOR_DEFAULTS
RESULT_FILE = "taskvec.json"


@dataclass(kw_only=True, frozen=True)
class TaskSplit:
    name: str
    train: LabeledTexts
    test: LabeledTexts


def task_splits(names: Sequence[str | BuiltinTask], n_train: int, n_test: int, seed: int
                ) -> list[TaskSplit]:
    """Balanced samples per task (a built-in name or a task such as the user's file); a text
    used by an earlier task is not drawn again."""
    if len(names) < 2:
        raise input_error("--tasks", "tasks", [getattr(t, "name", t) for t in names],
                          "at least two tasks (with --data: at least one built-in task)")
    used: set[str] = set()
    out = []
    for k, task in enumerate(names):
        task = get_task(task) if isinstance(task, str) else task
        name = task.name
        data = task.load()
        keep = [i for i, t in enumerate(data.texts) if t not in used]
        data = LabeledTexts(texts=tuple(data.texts[i] for i in keep), targets=data.targets[keep],
                            class_names=data.class_names, source=data.source)
        sample = ntk_data.sample_examples(data, n_train + n_test, seed + 1000 * k)
        used.update(sample.texts)
        out.append(TaskSplit(name=name, train=_part(sample, slice(0, n_train)),
                             test=_part(sample, slice(n_train, None))))
    return out


def _part(data: LabeledTexts, where: slice) -> LabeledTexts:
    return LabeledTexts(texts=data.texts[where], targets=data.targets[where],
                        class_names=data.class_names, source=data.source)


def alignment(kernel: np.ndarray, blocks: list[np.ndarray]) -> np.ndarray:
    """Cross-task kernel alignment matrix over index blocks (1 on the diagonal)."""
    norms = [np.linalg.norm(kernel[np.ix_(b, b)]) for b in blocks]
    m = len(blocks)
    out = np.ones((m, m))
    for j in range(m):
        for k in range(m):
            if j != k:
                out[j, k] = (np.linalg.norm(kernel[np.ix_(blocks[j], blocks[k])])
                             / np.sqrt(norms[j] * norms[k]))
    return out


def centred_alignment(kernel: np.ndarray, blocks: list[np.ndarray]) -> np.ndarray:
    """:func:`alignment` of the kernel centred over the union of the blocks (``H K H``,
    ``H = I - 11^T / N``). The raw alignment is ~0.99 for any two example sets because one
    shared gradient direction holds most of the trace (the top eigenvalue: 86-94% on the real
    eNTK); centring removes that mean gradient first, as CKA does."""
    union = np.concatenate(blocks)
    sub = np.asarray(kernel, dtype=np.float64)[np.ix_(union, union)]
    centred = sub - sub.mean(axis=0, keepdims=True) - sub.mean(axis=1, keepdims=True) + sub.mean()
    starts = np.cumsum([0] + [b.size for b in blocks])
    local = [np.arange(starts[i], starts[i + 1]) for i in range(len(blocks))]
    return alignment(centred, local)


def split_null(kernel: np.ndarray, blocks: list[np.ndarray], seed: int) -> list[float]:
    """The centred alignment between two random halves of each task's block: what two sets of
    examples from ONE task give, the null an alignment between tasks is read against."""
    rng = np.random.default_rng(seed)
    out = []
    for block in blocks:
        order = rng.permutation(block)
        half = order.size // 2
        out.append(float(centred_alignment(kernel, [order[:half], order[half:]])[0, 1]))
    return out


def gradient_cosine(kernel: np.ndarray, blocks: list[np.ndarray], residual: np.ndarray
                    ) -> np.ndarray:
    """Cosine between the tasks' first gradient steps ``J_k^T r_k``, from the kernel alone."""
    m = len(blocks)
    out = np.ones((m, m))
    for j in range(m):
        for k in range(m):
            rj, rk = residual[blocks[j]], residual[blocks[k]]
            inner = rj @ kernel[np.ix_(blocks[j], blocks[k])] @ rk
            norm_j = rj @ kernel[np.ix_(blocks[j], blocks[j])] @ rj
            norm_k = rk @ kernel[np.ix_(blocks[k], blocks[k])] @ rk
            out[j, k] = inner / np.sqrt(max(norm_j * norm_k, np.finfo(float).tiny))
    return out


def linear_combination(f0_test: np.ndarray, cross: list[np.ndarray], coefficients: list[np.ndarray],
                       alphas: Sequence[float] | np.ndarray) -> np.ndarray:
    """``f_0(x) + sum_k alpha_k K(x, X_k) c_k``: the linear model at theta_0 + sum alpha_k tau_k."""
    out = np.array(f0_test, dtype=np.float64)
    for block, c, a in zip(cross, coefficients, alphas, strict=True):
        out = out + a * (block @ c)
    return out


def combinations(m: int) -> list[tuple[str, np.ndarray]]:
    """Each task alone, each pair, all tasks, and each negation."""
    eye = np.eye(m)
    out = [(f"+t{k}", eye[k]) for k in range(m)]
    out += [(f"+t{j}+t{k}", eye[j] + eye[k]) for j in range(m) for k in range(j + 1, m)]
    if m > 2:
        out.append(("+all", np.ones(m)))
    out += [(f"-t{k}", -eye[k]) for k in range(m)]
    return out


def run_task_vectors(task: PromptTask, splits: list[TaskSplit], config: TrainingConfig,
                     out_dir: str | Path, lr_fraction: float = 0.5, progress: bool = True
                     ) -> dict:
    """Joint eNTK, real task vectors, real and linear accuracy of each combination."""
    out = Path(out_dir)
    m = len(splits)
    texts, targets, train_blocks, test_blocks, start = [], [], [], [], 0
    for s in splits:
        train_blocks.append(np.arange(start, start + len(s.train)))
        start += len(s.train)
        test_blocks.append(np.arange(start, start + len(s.test)))
        start += len(s.test)
        texts += list(s.train.texts) + list(s.test.texts)
        targets += list(s.train.targets) + list(s.test.targets)
    predicate = parameter_spec(task, config.params)
    joint = task.kernel(texts, predicate, progress=progress).kernel
    f0 = task.outputs(texts)
    lam_max = max(np.linalg.eigvalsh(joint[np.ix_(b, b)] / b.size).max() for b in train_blocks)
    config = TrainingConfig(**{**config.__dict__, "learning_rate": lr_fraction / lam_max,
                               "loss": "half-mse"})
    eta = config.step_size
    selected = select_parameters(task.model, predicate)
    theta0 = snapshot(selected)
    vectors, coefficients, single = [], [], []
    for k, s in enumerate(splits):
        result = finetune(task, s.train, s.test, config, out / f"task{k}-{s.name}")
        vectors.append(result.task_vector())
        train = train_blocks[k]
        gd = kernel_gd(joint[np.ix_(train, train)], s.train.targets - f0[train],
                        cast(float, eta))  # half-mse: a step size
        coefficients.append(gd.dual_coefficients([config.steps])[0])
        single.append(result.history[-1])
    rows = []
    y_tests = [s.test.targets for s in splits]
    for label, alphas in combinations(m):
        state = {k: theta0[k] + sum(a * v[k] for a, v in zip(alphas, vectors, strict=True))
                 for k in theta0}
        assign(selected, state)
        try:
            real: list[np.ndarray] | np.ndarray = [task.outputs(list(s.test.texts))
                                                   for s in splits]
        finally:
            assign(selected, theta0)
        for j in range(m):
            cross = [joint[np.ix_(test_blocks[j], b)] for b in train_blocks]
            linear = linear_combination(f0[test_blocks[j]], cross, coefficients, alphas)
            rows.append({"combination": label, "alphas": alphas.tolist(), "task": splits[j].name,
                         "task_index": j,
                         "real_accuracy": float(np.mean(np.sign(real[j]) == y_tests[j])),
                         "linear_accuracy": float(np.mean(np.sign(linear) == y_tests[j])),
                         "real_loss": float(np.mean((real[j] - y_tests[j]) ** 2) / 2),
                         "linear_loss": float(np.mean((linear - y_tests[j]) ** 2) / 2),
                         "f0_accuracy": float(np.mean(np.sign(f0[test_blocks[j]])
                                                      == y_tests[j]))})
    align = alignment(joint, train_blocks)
    centred = centred_alignment(joint, train_blocks)
    cosine = gradient_cosine(joint, train_blocks, np.asarray(targets) - f0)
    pairs = _interference(rows, align, cosine, m)
    for p in pairs:
        p["centred_alignment"] = float(centred[p["task"], p["added"]])
    real = np.array([p["real_interference"] for p in pairs])
    correlations = {
        name: _correlation(np.array([p[key] for p in pairs]), real, what)
        for name, key, what in (
            ("alignment", "alignment", "kernel alignment"),
            ("centred_alignment", "centred_alignment", "centred kernel alignment (CKA)"),
            ("gradient_cosine", "gradient_cosine", "gradient cosine"),
            ("linearised", "linear_interference", "linearised interference"))}
    return {"tasks": [s.name for s in splits], "n_train": [len(s.train) for s in splits],
            "n_test": [len(s.test) for s in splits], "steps": config.steps,
            "learning_rate": config.learning_rate, "params": config.params, "seed": config.seed,
            "alignment": align.tolist(), "centred_alignment": centred.tolist(),
            "centred_alignment_split_null": split_null(joint, train_blocks, config.seed),
            "gradient_cosine": cosine.tolist(),
            "combinations": rows, "pairs": pairs, "correlation": correlations["alignment"],
            "correlations": correlations, "trained": single}


def _correlation(x: np.ndarray, real: np.ndarray, what: str) -> dict:
    r, low, high = pearson_interval(x, real)
    return {"r": r, "ci_low": low, "ci_high": high, "points": int(real.size),
            "method": f"Pearson r of {what} vs real interference, 95% percentile bootstrap "
                      "over directed pairs (pairs share tasks, so the CI is optimistic)"}


def _interference(rows: list[dict], align: np.ndarray, cosine: np.ndarray, m: int
                  ) -> list[dict]:
    def loss(label: str, j: int, kind: str) -> float:
        return next(r[f"{kind}_loss"] for r in rows
                    if r["combination"] == label and r["task_index"] == j)

    out = []
    for j in range(m):
        for k in range(m):
            if j == k:
                continue
            pair = f"+t{min(j, k)}+t{max(j, k)}"
            out.append({"task": j, "added": k, "alignment": float(align[j, k]),
                        "gradient_cosine": float(cosine[j, k]),
                        "real_interference": loss(pair, j, "real") - loss(f"+t{j}", j, "real"),
                        "linear_interference": (loss(pair, j, "linear")
                                                - loss(f"+t{j}", j, "linear"))})
    return out


@dataclass(kw_only=True, frozen=True)
class TaskVectorResult:
    """``ntk taskvec``: what ``taskvec.json`` holds (``summary``) and where it was written."""

    summary: dict
    json_path: Path

    @property
    def correlation(self) -> dict:
        """Pearson r of kernel alignment vs real interference over directed pairs, its CI."""
        return self.summary["correlation"]


def run_taskvec(config: TaskVectorConfig, progress: bool = True) -> TaskVectorResult:
    """``ntk taskvec``: fine-tune each task from theta_0, add and negate the task vectors,
    compare real and linearised accuracy (:func:`run_task_vectors`); writes ``taskvec.json``
    into ``config.out``. ``config.data`` (the user's file) is the first task, so its template
    and label words prompt all. Checked, and the output claimed, before the model loads."""
    options = config.options
    resolve_device(options.device)
    first = [source_task(config.data)] if config.data is not None else []
    tasks: list[str | BuiltinTask] = [*first, *options.tasks]
    splits = task_splits(tasks, options.n_train, options.n_test, options.seed)
    claim_output(config.out)
    _, lm_task = builtin_prompt_task(config.model, tasks[0], options.device)
    training = TrainingConfig(params=options.params, steps=options.steps, seed=options.seed)
    summary = run_task_vectors(lm_task, splits, training, config.out, progress=progress)
    write_json(Path(config.out) / RESULT_FILE, summary)
    return TaskVectorResult(summary=summary, json_path=Path(config.out) / RESULT_FILE)

"""One balanced pool of a built-in task with its eNTK and ``f_0``, shared by the experiments.

The first ``n_pool`` examples are training candidates, the last ``n_test`` a fixed held-out
set. The kernel of a subsample is a sub-matrix of the pool's kernel, so fine-tuning and the
whole n-sweep cost one eNTK, which the engine caches on disk (a rerun reuses it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transferscope.ntk import data as ntk_data
from transferscope.ntk.data import BuiltinTask, LabeledTexts
from transferscope.ntk.experiments.finetune import parameter_spec
from transferscope.ntk.task import PromptTask


@dataclass(kw_only=True, frozen=True)
class KernelPool:
    """Examples (training candidates, then held out), their kernel and pretrained outputs."""

    sample: LabeledTexts
    kernel: np.ndarray
    f0: np.ndarray
    n_test: int

    @property
    def n_pool(self) -> int:
        return self.kernel.shape[0] - self.n_test

    @property
    def test_index(self) -> np.ndarray:
        return np.arange(self.n_pool, self.n_pool + self.n_test)

    def subset(self, index: np.ndarray) -> LabeledTexts:
        """The examples at ``index``, in that order."""
        s = self.sample
        return LabeledTexts(texts=tuple(s.texts[i] for i in index), targets=s.targets[index],
                            class_names=s.class_names,
                            source=s.source)


def builtin_prompt_task(model: str, task: str | BuiltinTask, device: str = "auto"
                        ) -> tuple[BuiltinTask, PromptTask]:
    """A task (a built-in name, or a user's file wrapped by ``pipeline.source_task``) and the
    prompt task of ``model`` on ``device`` with its template and label words."""
    builtin = ntk_data.get_task(task) if isinstance(task, str) else task
    word_pos, word_neg = builtin.label_words
    return builtin, PromptTask(builtin.template, [word_pos, word_neg], model=model,
                               device=device)


def kernel_pool(task: PromptTask, builtin: BuiltinTask, params: str, n_pool: int, n_test: int,
                seed: int, progress: bool = True) -> KernelPool:
    """A balanced sample of ``n_pool + n_test`` examples, its eNTK over ``params`` and ``f_0``."""
    sample = ntk_data.sample_examples(builtin.load(), n_pool + n_test, seed)
    texts = list(sample.texts)
    kernel = task.kernel(texts, parameter_spec(task, params), progress=progress).kernel
    return KernelPool(sample=sample, kernel=kernel, f0=task.outputs(texts), n_test=n_test)

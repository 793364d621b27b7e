"""Mixed initialisation: the pretrained body read out by a randomly initialised linear head.

``f(x) = w . h(x) + b`` with ``h`` the body's last hidden state and ``(w, b)`` drawn fresh, so
``f_0`` is random and the kernel over ``S_body + head`` is the sum of two parts with disjoint
parameters: ``K = K_body + K_head``, where ``K_head(x, x') = h(x) . h(x') + 1`` (the gradient of
f in ``(w, b)`` is ``(h, 1)``) and ``K_body`` is the body's eNTK seen through the random head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from transferscope.core.errors import input_error
from transferscope.ntk.experiments.finetune import parameter_spec
from transferscope.ntk.task import PromptTask


@dataclass(kw_only=True, frozen=True)
class MixedKernel:
    body: np.ndarray
    head: np.ndarray
    outputs: np.ndarray  # f_0 of the mixed task, from the head part's forward pass

    @property
    def total(self) -> np.ndarray:
        return self.body + self.head

    def head_share(self) -> float:
        """Fraction of the kernel's trace that the random head contributes."""
        return float(np.trace(self.head) / np.trace(self.total))


def mixed_task(pretrained: PromptTask, head_seed: int) -> PromptTask:
    """The same body, template and words as ``pretrained``, read out by a fresh linear head."""
    return PromptTask(pretrained.template, pretrained.label_words,
                      (pretrained.model.body, pretrained.tokenizer), readout="linear-head",
                      head_seed=head_seed, word_prefix=pretrained.word_prefix,
                      max_tokens=pretrained.max_tokens, device=pretrained.device.type)


def mixed_kernel(task: PromptTask, texts: Sequence[str], params: str,
                 progress: bool = True) -> MixedKernel:
    """Body part of the eNTK of a linear-head task from the engine, head part in closed form."""
    chosen = parameter_spec(task, params)

    def body(name: str) -> bool:
        return chosen(name) and not name.startswith("head.")

    body_part = task.kernel(list(texts), body, include_head=False, progress=progress).kernel
    h = head_features(task, texts)
    weight = cast(torch.nn.Linear, task.model.head).weight.detach().double().cpu().numpy()
    bias = cast(torch.nn.Linear, task.model.head).bias.detach().double().cpu().numpy()
    outputs = h @ weight.T + bias
    return MixedKernel(body=body_part, head=h @ h.T + 1.0,
                       outputs=outputs[:, 0] if task.n_outputs == 1 else outputs)


def head_features(task: PromptTask, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """The features ``h(x)`` the linear head reads. The gradient of ``w . h + b`` in ``(w, b)``
    is ``(h, 1)``, so the head's kernel part is ``h h^T + 1``: one forward pass, no gradients."""
    if task.model.head is None:
        raise input_error("mixed initialisation", "readout", task.readout,
                          "a linear-head task (see mixed_task)")
    features: list[torch.Tensor] = []
    hook = task.model.head.register_forward_hook(
        lambda module, args, output: features.append(args[0].detach().double().cpu()))
    try:
        task.outputs(list(texts), batch_size=batch_size)
    finally:
        hook.remove()
    return torch.cat(features).numpy()

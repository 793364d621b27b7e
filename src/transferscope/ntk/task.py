"""The LM task layer: a prompt template and label words turn an LM into the scalar f of the NTK.

Binary task, label words given as ``(word+, word-)``: ``f(x) = logit(word+) - logit(word-)`` at
the prediction position (the last prompt token of a causal LM), targets in {-1, +1}. C label words: the C logits, so the kernel has
n*C rows (example-major). Mixed initialisation (the default for encoders such as MiniLM,
optional for causal LMs): the pretrained body plus a randomly initialised linear head on the
last hidden state; the kernel then covers body and head (its sum of both parts) and f_0 is
random.

Choices that are ours (the source paper's exact ones are not public): the prompt is used as
raw text (no chat template); a label word is tokenised with a leading space (``word_prefix``)
because it follows the template's cue; the encoder head reads the attention-mask mean of the
last hidden states (how all-MiniLM-L6-v2 was trained) and is drawn N(0, 1/hidden) with zero bias
from ``head_seed``; texts longer than ``max_tokens`` lose their end, never the template's cue.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch

from transferscope.core.errors import input_error
from transferscope.core.models import load_causal_lm, load_encoder, model_kind, resolve_model
from transferscope.ntk.device import resolve_device
from transferscope.ntk.kernel import (
    EngineOptions,
    KernelResult,
    batched_output,
    empirical_ntk_result,
)
from transferscope.ntk.kernel.ray import ModelFactory
from transferscope.ntk.params import ParamSpec, parameter_predicate

Readout = Literal["auto", "label-words", "linear-head"]


class TaskModel(torch.nn.Module):
    """A pretrained LM (``body``) and, for mixed initialisation, a random linear ``head``."""

    def __init__(self, body: torch.nn.Module, head: torch.nn.Linear | None = None):
        super().__init__()
        self.body = body
        self.head = head


def check_template(template: str) -> str:
    """A template must say where the text goes."""
    if not isinstance(template, str) or "{text}" not in template:
        raise input_error("prompt template", "template", template, "a string containing {text}")
    return template


def binary_targets(labels: Sequence[Any], positive: Any = None) -> tuple[np.ndarray, list]:
    """Targets in {-1, +1} and the two classes [negative, positive] (``positive`` or the larger)."""
    values = list(labels)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v):
            raise input_error("labels", f"label[{i}]", v, "a label for every example")
    classes = sorted(set(values), key=str)
    if len(classes) != 2:
        raise input_error("labels", "distinct labels", classes[:5],
                          "exactly two classes for a binary task")
    if positive is not None and positive not in classes:
        raise input_error("labels", "positive label", positive, f"one of {classes}")
    pos = classes[1] if positive is None else positive
    neg = classes[0] if pos == classes[1] else classes[1]
    return np.array([1.0 if v == pos else -1.0 for v in values]), [neg, pos]


class PromptTask:
    """A classification task on an LM: template + label words -> outputs and kernels.

    ``label_words``: ``(word+, word-)`` for a binary task (f > 0 means word+), or C words.

    ``model``: a registry name (``smollm2``, ``minilm``), a local Hugging Face directory or
    .gguf file, or a ``(model, tokenizer)`` pair already loaded. ``device``: auto, cpu or
    cuda (:func:`transferscope.ntk.device.resolve_device`), checked before the model loads;
    None: auto for a model loaded here, and where it already is for a loaded pair (a shared
    model is not moved unless asked).
    """

    def __init__(self, template: str, label_words: Sequence[str],
                 model: str | Path | tuple = "smollm2", *, readout: Readout = "auto",
                 head_seed: int = 0, word_prefix: str = " ", max_tokens: int | None = None,
                 dtype: torch.dtype = torch.float32, device: str | None = None):
        self.template = check_template(template)
        loaded = isinstance(model, tuple) and len(model) == 2
        self.device = (next(cast(tuple, model)[0].parameters()).device if device is None and loaded
                       else torch.device(resolve_device(device or "auto")))
        words = list(label_words)
        if len(words) < 2 or len(set(words)) != len(words):
            raise input_error("task", "label words", words, "at least two distinct words")
        self.label_words = words
        self.word_prefix, self.max_tokens, self.head_seed = word_prefix, max_tokens, head_seed
        if max_tokens is not None and max_tokens < 4:
            raise input_error("task", "max_tokens", max_tokens, "at least 4 tokens")
        self.model_name = model if isinstance(model, str | Path) else type(model[0]).__name__
        body, self.tokenizer, self.kind = _load(model, dtype)
        if readout == "auto":
            readout = "label-words" if self.kind == "causal" else "linear-head"
        if readout == "label-words" and self.kind != "causal":
            raise input_error("task", "readout", readout,
                              "'linear-head' for an encoder (it has no LM head to read words from)")
        self.readout = readout
        self.n_outputs = 1 if len(words) == 2 else len(words)
        head = None
        if readout == "linear-head":
            hidden = body.config.hidden_size
            head = torch.nn.Linear(hidden, self.n_outputs, dtype=body.dtype)
            gen = torch.Generator().manual_seed(int(head_seed))
            with torch.no_grad():
                head.weight.copy_(torch.randn(head.weight.shape, generator=gen, dtype=torch.float64)
                                  / hidden**0.5)
                head.bias.zero_()
            self.word_ids = None
        else:
            self.word_ids = [self._single_token(w) for w in words]
        self.model = TaskModel(body, head).eval().to(self.device)
        self.output_fn = self._make_output_fn()

    # ------------------------------------------------------------------ text -> tensors
    def _single_token(self, word: str) -> int:
        ids = self.tokenizer.encode(self.word_prefix + word, add_special_tokens=False)
        if len(ids) != 1:
            pieces = self.tokenizer.convert_ids_to_tokens(ids)
            raise input_error("task", "label word", word,
                              f"a word that is one token; it splits into {len(ids)} tokens "
                              f"{pieces}")
        return int(ids[0])

    def format(self, texts: Sequence[str]) -> list[str]:
        """The prompts: each text inserted into the template (shortened if max_tokens is set)."""
        out = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise input_error("task", f"text[{i}]", text, "a string")
            out.append(self.template.replace("{text}", self._shorten(text)))
        return out

    def _shorten(self, text: str) -> str:
        if self.max_tokens is None:
            return text
        frame = len(self.tokenizer.encode(self.template.replace("{text}", ""),
                                          add_special_tokens=True))
        room = self.max_tokens - frame
        if room < 1:
            raise input_error("task", "max_tokens", self.max_tokens,
                              f"more than the template's own {frame} tokens")
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return text if len(ids) <= room else self.tokenizer.decode(ids[:room])

    def encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask (causal LMs pad on the left: the cue stays last)."""
        return self.tokenizer(self.format(texts), return_tensors="pt", padding=True)

    # ------------------------------------------------------------------ f
    def _make_output_fn(self):
        task = self

        def output_fn(model: torch.nn.Module, texts: Sequence[str]) -> torch.Tensor:
            enc = task.encode(list(texts))
            return task.forward(cast(TaskModel, model), enc)

        batched = batched_output(output_fn)
        batched.cache_token = json.dumps(self.settings(), sort_keys=True)  # type: ignore[attr-defined]
        return batched

    def forward(self, model: TaskModel, enc: dict[str, torch.Tensor]) -> torch.Tensor:
        """f for a batch: (B,) for a binary task, (B, C) otherwise."""
        where = next(model.parameters()).device  # tokens go where the weights are
        enc = {k: v.to(where) for k, v in enc.items()}
        mask = enc["attention_mask"]
        body: Any = model.body  # a transformers model: its attributes are not typed here
        if self.kind == "causal":
            # positions count real tokens only, so left padding never changes an example's f
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            hidden = body.base_model(input_ids=enc["input_ids"], attention_mask=mask,
                                     position_ids=positions).last_hidden_state
            state = hidden[:, -1]
        else:
            hidden = body(input_ids=enc["input_ids"], attention_mask=mask,
                          **({"token_type_ids": enc["token_type_ids"]}
                             if "token_type_ids" in enc else {})).last_hidden_state
            weights = mask.to(hidden.dtype)[..., None]
            state = (hidden * weights).sum(1) / weights.sum(1)
        if self.readout == "linear-head":
            scores = cast(torch.nn.Linear, model.head)(state)  # built with the linear head
            return scores[:, 0] if self.n_outputs == 1 else scores
        logits = body.get_output_embeddings()(state)[:, self.word_ids]
        return logits[:, 0] - logits[:, 1] if self.n_outputs == 1 else logits

    def outputs(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """f_0 for every text, float64: shape (n,) for binary tasks, (n, C) otherwise."""
        if batch_size < 1:
            raise input_error("task", "batch_size", batch_size, "a positive integer")
        parts = []
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                enc = self.encode(list(texts[start:start + batch_size]))
                parts.append(self.forward(self.model, enc).double().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0,))

    # ------------------------------------------------------------------ kernel
    def parameter_set(self, params: ParamSpec = "attention", include_head: bool = True):
        """The predicate for ``params``, plus the random head under mixed initialisation."""
        predicate = parameter_predicate(self.model, params)
        if self.readout == "linear-head" and include_head:
            return lambda name: name.startswith("head.") or predicate(name)
        return predicate

    def kernel(self, texts: Sequence[str], params: ParamSpec = "attention",
               mode: str = "exact", texts2: Sequence[str] | None = None, *,
               include_head: bool = True, options: EngineOptions | None = None,
               **settings: Any) -> KernelResult:
        """The empirical NTK of f over ``texts`` (cached; ``options`` and ``settings`` as in
        ``empirical_ntk_result``)."""
        return empirical_ntk_result(self.model, list(texts), self.output_fn,
                                    self.parameter_set(params, include_head),
                                    cast(Literal["exact", "sketch"], mode),
                                    None if texts2 is None else list(texts2), options=options,
                                    **settings)

    def settings(self) -> dict:
        """What defines f besides the weights (part of every cache key)."""
        return {"template": self.template, "label_words": self.label_words,
                "word_prefix": self.word_prefix, "readout": self.readout, "kind": self.kind,
                "head_seed": self.head_seed, "max_tokens": self.max_tokens}


def _build_prompt_task(settings: dict) -> tuple[torch.nn.Module, Any]:
    task = PromptTask(**settings)
    return task.model, task.output_fn


def prompt_task_factory(task: PromptTask) -> ModelFactory | None:
    """A picklable factory rebuilding ``task`` on a Ray worker from its model name (for
    ``RayExecutor(model_factory=...)``: each worker loads its own copy instead of receiving it).

    None when the task was built from an already loaded model (no name a worker could load).
    """
    if not isinstance(task.model_name, str | Path):
        return None
    settings = {"template": task.template, "label_words": list(task.label_words),
                "model": str(task.model_name), "readout": task.readout,
                "head_seed": task.head_seed, "word_prefix": task.word_prefix,
                "max_tokens": task.max_tokens, "dtype": task.model.body.dtype}
    return functools.partial(_build_prompt_task, settings)


def _load(model: str | Path | tuple, dtype: torch.dtype):
    if isinstance(model, tuple):
        if len(model) != 2:
            raise input_error("task", "model", model, "a name, a path, or (model, tokenizer)")
        body, tokenizer = model
        decoder = "CausalLM" in type(body).__name__
        if decoder and tokenizer.padding_side != "left":
            tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return body, tokenizer, "causal" if decoder else "encoder"
    kind = model_kind(resolve_model(model))
    if kind == "causal":
        body, tokenizer = load_causal_lm(model, dtype=dtype)
    else:
        body, tokenizer = load_encoder(model, dtype=dtype)
    return body, tokenizer, kind


def parameter_spec(task: PromptTask, spec: str) -> Callable[[str], bool]:
    """A preset of params.py, or ``attention@last-k``: the attention projections of the last k
    blocks (our cheaper preset for CPU runs). Under mixed initialisation the head is included."""
    match = re.fullmatch(r"attention@(last-\d+)", spec)
    if match:
        attention = parameter_predicate(task.model, "attention")
        last = parameter_predicate(task.model, match.group(1))
        return task.parameter_set(lambda name: attention(name) and last(name))
    return task.parameter_set(spec)

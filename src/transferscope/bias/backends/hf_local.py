"""``hf-local``: any local Hugging Face causal LM (default: the embedded SmolLM2-135M-Instruct).

Conversations are rendered with the model's own chat template and generated in batches with
left padding (greedy by default). Options are scored exactly: the summed log-probability of
the option's tokens appended to the templated prompt; the prompt runs once and its key/value
cache serves all options of an item, run together as one batch.
The model loads lazily on the first real call, so a run answered wholly from the cache never
loads it.
"""

from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transferscope.bias.backends.base import (
    Backend,
    Conversation,
    GenerationSettings,
    OnReply,
    Reply,
    validate_conversation,
    validate_options,
)
from transferscope.core.cache import content_key
from transferscope.core.errors import InputError
from transferscope.core.models import REGISTRY, resolve_model

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the first stop string (OpenAI semantics); say whether one was found."""
    cuts = [text.find(s) for s in stop if s and s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def render_plain(conversation: Conversation) -> str:
    """Our fallback prompt format for a model without a chat template: ``role: content`` lines."""
    lines = [f"{m['role']}: {m['content']}" for m in conversation]
    return "\n".join(lines) + "\nassistant:"


def _directory_fingerprint(model_dir: Path) -> str:
    """Config bytes plus each weight file's name, size and mtime: a changed checkpoint, a new key."""
    parts: list[Any] = [(model_dir / "config.json").read_bytes()
                        if (model_dir / "config.json").exists() else b""]
    for f in sorted(model_dir.iterdir()):
        if f.suffix in WEIGHT_SUFFIXES:
            st = f.stat()
            parts.append([f.name, st.st_size, st.st_mtime_ns])
    return content_key(*parts)[:16]


class HFLocalBackend(Backend):
    """A local causal LM behind the backend interface (see :mod:`.base`)."""

    def __init__(self, model: str | Path = "smollm2", batch_size: int = 8, dtype: Any = None):
        super().__init__()
        if batch_size < 1:
            raise InputError(f"hf-local: batch_size = {batch_size!r}: expected an integer >= 1")
        self.model_name = str(model)
        self.batch_size = batch_size
        self.dtype = dtype
        self.shared_prompt = True  # score options on one cached prompt (False: full rows)
        self.id = f"hf-local:{self.model_name}"
        # Resolves (and validates) the name or path now, without converting anything yet.
        self._model_dir = resolve_model(self.model_name, prepare=False)
        self._model: Any = None
        self._tokenizer: Any = None
        self._count_tokenizer: Any = None  # the tokenizer alone, for option_token_counts

    @property
    def fingerprint(self) -> str:
        """Registry models: the conversion target (named after the GGUF's content identity)."""
        if self.model_name in REGISTRY or self.model_name.endswith(".gguf"):
            return f"{self.id}|{self._model_dir.name}"
        return f"{self.id}|{_directory_fingerprint(self._model_dir)}"

    def _load(self) -> None:
        if self._model is None:
            from transferscope.core.models import load_causal_lm

            self._model, self._tokenizer = load_causal_lm(self.model_name, dtype=self.dtype)

    def option_token_counts(self, conversation: Conversation, options: Sequence[str]
                            ) -> list[int]:
        """Options tokenized alone, as :meth:`option_logprobs_many` scores them; only the
        tokenizer is loaded when the model is not (a Ray driver never loads the model)."""
        tok = self._tokenizer_only()
        return [len(tok(o, add_special_tokens=False)["input_ids"]) for o in options]

    def _tokenizer_only(self) -> Any:
        if self._tokenizer is None and self._count_tokenizer is None:
            from transformers import AutoTokenizer

            self._count_tokenizer = AutoTokenizer.from_pretrained(
                str(resolve_model(self.model_name)))
        return self._tokenizer if self._tokenizer is not None else self._count_tokenizer

    def context_tokens(self) -> int | None:
        """The model config's ``max_position_embeddings`` (SmolLM2-135M: 8192); ``None`` where
        the config has none."""
        import json

        config = resolve_model(self.model_name) / "config.json"
        value = json.loads(config.read_text("utf-8")).get("max_position_embeddings")
        return int(value) if isinstance(value, int) and value > 0 else None

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Each text's length in the model's tokens (no special tokens)."""
        tok = self._tokenizer_only()
        return [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]

    def render(self, conversation: Conversation) -> str:
        """The prompt text the model sees, ending where the assistant's reply begins."""
        self._load()
        if getattr(self._tokenizer, "chat_template", None):
            return self._tokenizer.apply_chat_template(conversation, tokenize=False,
                                                       add_generation_prompt=True)
        return render_plain(conversation)

    def _end_token_ids(self) -> set[int]:
        ids = self._model.generation_config.eos_token_id
        ends = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
        if self._tokenizer.eos_token_id is not None:
            ends.add(self._tokenizer.eos_token_id)
        return ends

    def chat(self, conversations: Sequence[Conversation], settings: GenerationSettings,
             on_reply: OnReply | None = None) -> list[Reply]:
        for i, conversation in enumerate(conversations):
            validate_conversation(conversation, f"conversation {i}")
        replies: list[Reply] = []
        for start in range(0, len(conversations), self.batch_size):
            batch = conversations[start:start + self.batch_size]
            for j, reply in enumerate(self._generate_batch(batch, settings)):
                self.stats.add_reply(reply)
                replies.append(reply)
                if on_reply is not None:
                    on_reply(start + j, reply)
        return replies

    def _generate_batch(self, batch: Sequence[Conversation],
                        settings: GenerationSettings) -> list[Reply]:
        import torch

        self._load()
        tok, model = self._tokenizer, self._model
        texts = [self.render(c) for c in batch]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        ends = self._end_token_ids()
        sampling = settings.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_tokens, "do_sample": sampling,
            "pad_token_id": tok.pad_token_id, "eos_token_id": sorted(ends),
        }
        if sampling:
            kwargs.update(temperature=settings.temperature, top_p=1.0, top_k=0)
            torch.manual_seed(settings.seed)  # ours: sampled output depends on batch layout
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if settings.stop:
            kwargs.update(stop_strings=list(settings.stop), tokenizer=tok)
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, **kwargs)
        self.stats.seconds += time.perf_counter() - started
        prompt_lengths = enc["attention_mask"].sum(dim=1).tolist()
        new_tokens = out[:, enc["input_ids"].shape[1]:].tolist()
        replies = []
        for prompt_length, tokens in zip(prompt_lengths, new_tokens, strict=True):
            kept, ended = [], False
            for t in tokens:
                if t in ends:
                    ended = True
                    break
                kept.append(t)
            text, stopped = truncate_at_stop(tok.decode(kept, skip_special_tokens=True),
                                             settings.stop)
            replies.append(Reply(
                text=text, prompt_tokens=int(prompt_length), completion_tokens=len(kept) + ended,
                finish_reason="stop" if ended or stopped else "length",
            ))
        return replies

    def option_logprobs_many(
        self, requests: Sequence[tuple[Conversation, Sequence[str]]],
    ) -> list[list[float]]:
        import torch

        for i, (conversation, options) in enumerate(requests):
            validate_conversation(conversation, f"request {i} conversation")
            validate_options(options, f"request {i} options")
        self._load()
        tok = self._tokenizer
        started = time.perf_counter()
        results: list[list[float]] = []
        rows: list[tuple[int, int, list[int], int]] = []  # request, option, ids, option start
        for r, (conversation, options) in enumerate(requests):
            prompt_ids = list(tok(self.render(conversation), add_special_tokens=False)["input_ids"])
            option_ids = [list(tok(o, add_special_tokens=False)["input_ids"]) for o in options]
            shared = self._score_shared_prompt(prompt_ids, option_ids, torch)
            results.append(shared if shared is not None else [0.0] * len(options))
            if shared is None:
                rows += [(r, o, prompt_ids + ids, len(prompt_ids)) for o, ids in enumerate(option_ids)]
            self.stats.prompt_tokens += len(prompt_ids) + sum(len(ids) for ids in option_ids)
        rows.sort(key=lambda row: len(row[2]))  # similar lengths together: less padding
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            for (r, o, _, _), value in zip(chunk, self._score_rows(chunk, torch), strict=True):
                results[r][o] = value
        self.stats.seconds += time.perf_counter() - started
        self.stats.model_calls += len(requests)
        return results

    def _score_shared_prompt(self, prompt_ids: list[int], option_ids: list[list[int]],
                             torch: Any) -> list[float] | None:
        """The prompt runs once; its key/value cache is copied for the options, run as a batch.

        About K times less work than K full sequences when the prompt dominates, and a single
        pass when every option is one token. ``None`` when ``shared_prompt`` is off or the
        model's cache cannot be repeated across a batch (the caller then scores full rows).
        """
        if not self.shared_prompt:
            return None
        model = self._model
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
            prompt_cache = out.get("cache", out.get("past_key_values"))
            if prompt_cache is None or not hasattr(prompt_cache, "batch_repeat_interleave"):
                return None
            first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            values = [float(first[ids[0]]) for ids in option_ids]
            longer = [k for k, ids in enumerate(option_ids) if len(ids) > 1]
            for start in range(0, len(longer), self.batch_size):
                chunk = longer[start:start + self.batch_size]
                cache = copy.deepcopy(prompt_cache)
                cache.batch_repeat_interleave(len(chunk))
                width = max(len(option_ids[k]) for k in chunk)
                ids = torch.full((len(chunk), width), self._tokenizer.pad_token_id,
                                 dtype=torch.long)
                mask = torch.zeros((len(chunk), len(prompt_ids) + width), dtype=torch.long)
                mask[:, : len(prompt_ids)] = 1
                for row, k in enumerate(chunk):
                    ids[row, : len(option_ids[k])] = torch.tensor(option_ids[k])
                    mask[row, len(prompt_ids): len(prompt_ids) + len(option_ids[k])] = 1
                logits = model(input_ids=ids, attention_mask=mask, use_cache=True,
                               **{self._cache_argument(): cache}).logits.float()
                logprobs = torch.log_softmax(logits, dim=-1)
                for row, k in enumerate(chunk):
                    targets = torch.tensor(option_ids[k][1:])
                    steps = torch.arange(len(targets))
                    values[k] += float(logprobs[row, steps, targets].sum())
        return values

    def _cache_argument(self) -> str:
        """``cache`` in recent transformers, ``past_key_values`` before."""
        parameters = inspect.signature(self._model.forward).parameters
        return "cache" if "cache" in parameters else "past_key_values"

    def _score_rows(self, chunk: list[tuple[int, int, list[int], int]], torch: Any) -> list[float]:
        """Summed log p of each row's tokens from its option start on (right padding, one pass)."""
        width = max(len(ids) for _, _, ids, _ in chunk)
        pad = self._tokenizer.pad_token_id
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for k, (_, _, ids, _) in enumerate(chunk):
            input_ids[k, : len(ids)] = torch.tensor(ids)
            mask[k, : len(ids)] = 1
        with torch.inference_mode():
            logits = self._model(input_ids=input_ids, attention_mask=mask).logits.float()
        values = []
        for k, (_, _, ids, option_start) in enumerate(chunk):
            positions = torch.arange(option_start, len(ids))
            logprobs = torch.log_softmax(logits[k, positions - 1], dim=-1)
            targets = input_ids[k, positions]
            values.append(float(logprobs.gather(1, targets[:, None]).sum()))
        return values

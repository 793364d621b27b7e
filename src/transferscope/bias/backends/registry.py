"""Build a backend from a model spec string, wrapped in the response cache by default.

Specs: ``hf-local:<registry name or local path>`` (``hf-local`` alone means ``smollm2``) and
``openai:<model>`` (alias ``openai-compatible:<model>``) with a ``base_url``, and the
answerers with no opinion ``null:constant|first|random[:seed]|uniform-logprobs`` and those
that answer by the draft alone ``null:by-era|by-topic|by-hash|by-length`` (never cached: they
cost nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferscope.bias.backends.base import Backend
from transferscope.bias.backends.cache import CachedBackend, ResponseCache
from transferscope.bias.backends.null import NullBackend
from transferscope.core.errors import InputError

HF_PREFIXES = ("hf-local",)
OPENAI_PREFIXES = ("openai", "openai-compatible")
DEFAULT_LOCAL_MODEL = "smollm2"


def parse_spec(spec: str) -> tuple[str, str]:
    """``"hf-local:smollm2"`` -> ``("hf-local", "smollm2")``; a bad spec is one clear error."""
    kind, _, name = str(spec).partition(":")
    kind = kind.strip().lower()
    if kind in HF_PREFIXES:
        return "hf-local", name.strip() or DEFAULT_LOCAL_MODEL
    if kind in OPENAI_PREFIXES and name.strip():
        return "openai", name.strip()
    if kind == "null" and name.strip():
        return "null", name.strip()
    raise InputError(
        f"model spec = {spec!r}: expected hf-local[:<name or local model path>], "
        "openai:<model name> (with --base-url for a server other than OpenAI) or "
        "null:constant|first|random[:seed]|uniform-logprobs|by-era|by-topic|by-hash|"
        "by-length"
    )


def make_backend(
    spec: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    concurrency: int = 4,
    timeout_s: float = 60.0,
    max_retries: int = 4,
    backoff_s: float = 1.0,
    batch_size: int = 8,
    template_model: str | Path | None = None,
    cache: bool | str | Path | ResponseCache = True,
    dtype: Any = None,
) -> Backend:
    """The backend a spec names; ``cache=True`` wraps it in the default SQLite response cache.

    ``cache`` may also be a path to a SQLite file, an open :class:`ResponseCache`, or ``False``.
    ``api_key_env`` names the environment variable holding the key; left as ``None`` no key is
    sent, except to api.openai.com, which gets ``OPENAI_API_KEY`` (our choice: a user's OpenAI
    key is never sent to another server unless they name the variable).
    """
    kind, name = parse_spec(spec)
    backend: Backend
    if kind == "null":
        if base_url is not None:
            raise InputError(f"base URL = {base_url!r}: only openai:<model> backends take one; "
                             f"{spec!r} runs locally")
        null_kind, _, seed = name.partition(":")
        if seed and not (null_kind == "random" and seed.isdigit()):
            raise InputError(f"model spec = {spec!r}: expected a seed only after null:random "
                             "(null:random:<integer>)")
        return NullBackend(null_kind, int(seed or 0))
    if kind == "hf-local":
        if base_url is not None:
            raise InputError(f"base URL = {base_url!r}: only openai:<model> backends take one; "
                             f"{spec!r} runs locally")
        from transferscope.bias.backends.hf_local import HFLocalBackend

        backend = HFLocalBackend(name, batch_size=batch_size, dtype=dtype)
    else:
        from transferscope.bias.backends.openai_compat import (
            OPENAI_BASE_URL,
            OpenAICompatibleBackend,
        )

        backend = OpenAICompatibleBackend(
            name, base_url=base_url or OPENAI_BASE_URL, api_key_env=api_key_env,
            concurrency=concurrency, timeout_s=timeout_s, max_retries=max_retries,
            backoff_s=backoff_s, template_model=template_model,
        )
    if cache is False:
        return backend
    store = cache if isinstance(cache, ResponseCache) else ResponseCache(
        None if cache is True else Path(cache))
    return CachedBackend(backend, store)

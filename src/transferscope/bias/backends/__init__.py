"""Model backends for the bias probes: ``hf-local`` and ``openai-compatible``, behind one interface.

See :mod:`transferscope.bias.backends.base` for the contract and
:func:`transferscope.bias.backends.registry.make_backend` to build one from a spec string.
"""

from transferscope.bias.backends.base import (
    Backend,
    BackendStats,
    Conversation,
    GenerationSettings,
    Message,
    OptionScoringNotSupported,
    Reply,
)
from transferscope.bias.backends.cache import CachedBackend, ResponseCache, default_cache_path
from transferscope.bias.backends.registry import make_backend, parse_spec

__all__ = [
    "Backend",
    "BackendStats",
    "CachedBackend",
    "Conversation",
    "GenerationSettings",
    "Message",
    "OptionScoringNotSupported",
    "Reply",
    "ResponseCache",
    "default_cache_path",
    "make_backend",
    "parse_spec",
]

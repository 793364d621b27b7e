"""Model backends for the bias probes: ``hf-local`` and ``openai-compatible``, behind one interface.

See :mod:`transferscope.bias.backends.base` for the contract.
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

__all__ = [
    "Backend",
    "BackendStats",
    "Conversation",
    "GenerationSettings",
    "Message",
    "OptionScoringNotSupported",
    "Reply",
]

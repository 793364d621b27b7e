"""The one interface every bias model backend implements (a stable contract for the probes).

A *conversation* is a list of ``{"role": ..., "content": ...}`` messages (roles ``system``,
``user``, ``assistant``), as in the OpenAI chat API. A backend answers many conversations at
once (``hf-local`` batches them through the network, ``openai-compatible`` sends concurrent
requests) and, for multiple-choice items, scores each option by its log-likelihood as the
assistant's reply, which never fails to parse.

Contract for callers (the probes):

- ``backend.id``: a stable string naming the backend and model (``"hf-local:smollm2"``,
  ``"openai:<model>@<base_url>"``), shown in reports.
- ``backend.fingerprint``: what identifies the model's behaviour (``id`` plus, for a local
  directory, its weight files' sizes and mtimes); the response cache keys on it. It never
  contains a secret.
- ``backend.chat(conversations, settings, on_reply=None) -> list[Reply]``: one reply per
  conversation, in order. ``on_reply(index, reply)`` is called on the caller's thread as soon
  as each reply exists, so a cache can store it before the next one and an interrupted run
  loses nothing already answered.
- ``backend.option_logprobs(conversation, options) -> list[float]``: for each option string,
  ``sum_t log p(option_t | chat-templated prompt, option_<t)``, the option taken as the whole
  assistant reply. Raises :class:`OptionScoringNotSupported` where the backend cannot do it
  exactly; the probes then fall back to strict parsing of generated text.
- ``backend.option_logprobs_many(requests)``: the same for many ``(conversation, options)``
  pairs (batched where the backend can).
- ``backend.option_token_counts(conversation, options)``: each option's number of tokens, so
  a caller can compare options by mean per-token log-probability (length-fair: "Abstain" is
  3 SmolLM2 tokens, "Against" 2); ``None`` where the backend has no tokenizer (the caller
  then compares summed log-probabilities and says so).
- ``backend.context_tokens()`` and ``backend.count_tokens(texts)``: the model's context length
  and text lengths in its tokens, where the backend can learn them (``None`` otherwise); a run
  shortens a draft that does not fit (:mod:`transferscope.bias.context_fit`).
- ``backend.stats``: real model work done so far (calls, tokens, seconds); a cached wrapper
  counts only the calls that reached the model, so a finished run re-scores with zero.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Self

from transferscope.core.checks import MAX_SEED
from transferscope.core.errors import BackendError, InputError
from transferscope.core.params import Spec, Validated

Message = dict[str, str]
Conversation = list[Message]
OnReply = Callable[[int, "Reply"], None]

ROLES = ("system", "user", "assistant")


def _seed_range(seed: int) -> str | None:
    return "a whole number from 0 to 2**63 - 1" if seed > MAX_SEED else None


@dataclass(kw_only=True, frozen=True)
class GenerationSettings(Validated):
    """How to generate. Greedy (temperature 0) by default, so a run is reproducible.

    ``seed`` matters only when ``temperature > 0``; ``stop`` strings end the reply and are not
    part of it (the OpenAI convention).
    """

    max_tokens: Annotated[int, Spec(ge=1, help="Tokens per generated reply.")] = 64
    temperature: Annotated[float, Spec(ge=0.0, le=2.0, help="Sampling temperature (0: "
                                       "greedy).")] = 0.0
    seed: Annotated[int, Spec(ge=0, rule=_seed_range, help="Sampling seed (used only when "
                              "temperature > 0).")] = 0
    stop: Annotated[tuple[str, ...], Spec(help="Strings that end the reply (not part of "
                                          "it).")] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "stop", tuple(self.stop))

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (part of every cache key)."""
        return {**asdict(self), "stop": list(self.stop)}


@dataclass(kw_only=True, frozen=True)
class Reply:
    """One generated reply with the token counts the run reports as cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    from_cache: bool = False
    finish_reason: str = "stop"  # "stop" (end of turn / stop string) or "length" (max_tokens)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "finish_reason": self.finish_reason}

    @classmethod
    def from_json(cls, data: dict[str, Any], from_cache: bool = True) -> Reply:
        return cls(text=data["text"], prompt_tokens=int(data["prompt_tokens"]),
                   completion_tokens=int(data["completion_tokens"]),
                   finish_reason=data.get("finish_reason", "stop"), from_cache=from_cache)


@dataclass(kw_only=True)
class BackendStats:
    """Real model work: requests that reached the model, their tokens, and wall seconds."""

    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cache_hits: int = 0
    retries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def add_reply(self, reply: Reply) -> None:
        self.model_calls += 1
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class OptionScoringNotSupported(BackendError):
    """This backend cannot score option log-likelihoods exactly; parse generated text instead."""


def validate_conversation(conversation: Sequence[Message], where: str = "conversation") -> None:
    """Reject malformed messages with one line naming the message and field."""
    if not conversation:
        raise InputError(f"{where}: empty message list: expected at least one message")
    for i, message in enumerate(conversation):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise InputError(f"{where}[{i}]: role = {role!r}: expected one of {', '.join(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise InputError(f"{where}[{i}]: content = {message.get('content')!r}: expected a string")


def validate_options(options: Sequence[str], where: str = "options") -> None:
    if not options or not all(isinstance(o, str) and o for o in options):
        raise InputError(f"{where} = {list(options)!r}: expected a non-empty list of non-empty strings")


class Backend(ABC):
    """A chat model the bias probes can query (see the module docstring for the contract)."""

    id: str

    def __init__(self) -> None:
        self.stats = BackendStats()

    @property
    def fingerprint(self) -> str:
        """What the response cache keys on; override when ``id`` alone is not enough."""
        return self.id

    @property
    def supports_option_logprobs(self) -> bool:
        return True

    @property
    def option_logprob_kind(self) -> str:
        """``sequence``: an option's score is its whole log-likelihood; ``first-token``: by
        its first distinguishing token (chat log-probabilities of a hosted model)."""
        return "sequence"

    @abstractmethod
    def chat(self, conversations: Sequence[Conversation], settings: GenerationSettings,
             on_reply: OnReply | None = None) -> list[Reply]:
        """One reply per conversation, in input order."""

    @abstractmethod
    def option_logprobs_many(
        self, requests: Sequence[tuple[Conversation, Sequence[str]]],
    ) -> list[list[float]]:
        """For each ``(conversation, options)``: each option's summed log-probability."""

    def option_token_counts(self, conversation: Conversation, options: Sequence[str]
                            ) -> list[int] | None:
        """Each option's length in the model's tokens; ``None``: unknown (no tokenizer)."""
        return None

    def context_tokens(self) -> int | None:
        """The model's context length in tokens where the backend can learn it (a local
        model's config, a server's report); ``None``: unknown."""
        return None

    def count_tokens(self, texts: Sequence[str]) -> list[int] | None:
        """Each text's length in the model's tokens; ``None``: no tokenizer within reach."""
        return None

    def option_logprobs(self, conversation: Conversation, options: Sequence[str]) -> list[float]:
        """Each option's summed log-probability as the whole assistant reply."""
        return self.option_logprobs_many([(conversation, options)])[0]

    def close(self) -> None:  # noqa: B027 - an optional hook, most backends hold nothing
        """Release network clients or model memory (a no-op by default)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

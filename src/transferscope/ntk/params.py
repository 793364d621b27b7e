"""Which parameters the empirical NTK differentiates: presets and user predicates.

The kernel depends on the parameter set S as much as on the model, so S is chosen by name:
``attention`` (every Q/K/V/O projection, the spec's default), ``all``, ``lora`` (adapter
weights only), ``head`` (the output head), ``bias`` (bias vectors), ``last-k`` (all parameters of
the last k transformer blocks, e.g. ``last-2``), or any ``predicate(name) -> bool``.
Parameters outside S are treated as frozen.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from transferscope.core.errors import input_error

if TYPE_CHECKING:  # annotations only: the command line reads PRESETS without loading torch
    import torch

ParamSpec = str | Callable[[str], bool]

PRESETS = ("attention", "all", "lora", "head", "bias", "last-k")

# Projection names of the common attention implementations: Llama/SmolLM2/Mistral (q_proj ...),
# BERT/MiniLM (attention.self.query ..., attention.output.dense), GPT-2 (attn.c_attn,
# attn.c_proj), torch.nn.MultiheadAttention (in_proj_weight, out_proj).
_ATTENTION_PATTERNS = (
    r"(^|\.)(q|k|v|o)_proj\.",
    r"(^|\.)attention\.self\.(query|key|value)\.",
    r"(^|\.)attention\.output\.dense\.",
    r"(^|\.)attn\.(c_attn|c_proj)\.",
    r"(^|\.)in_proj_(weight|bias)$",
    r"(^|\.)out_proj\.",
    r"(^|\.)(query|key|value)\.",
)
_HEAD_PATTERNS = (r"(^|\.)(lm_head|head|classifier|score|cls)(\.|$)",)
# "layers.12.", "layer.3.", "h.7.", "blocks.0." : the index of a transformer block
_BLOCK_INDEX = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)\.")


def _matches_any(name: str, patterns: tuple[str, ...]) -> bool:
    return any(re.search(p, name) for p in patterns)


def block_index(name: str) -> int | None:
    """The transformer-block number a parameter name belongs to, if any."""
    match = _BLOCK_INDEX.search(name)
    return int(match.group(1)) if match else None


def parameter_predicate(model: torch.nn.Module, params: ParamSpec) -> Callable[[str], bool]:
    """Turn a preset name (or a predicate) into a predicate on parameter names of ``model``."""
    if callable(params):
        return params
    if not isinstance(params, str):
        raise input_error("empirical_ntk", "params", params, f"one of {', '.join(PRESETS)} "
                          "(last-k as e.g. 'last-2') or a predicate on parameter names")
    if params == "all":
        return lambda name: True
    if params == "attention":
        return lambda name: _matches_any(name, _ATTENTION_PATTERNS)
    if params == "lora":
        return lambda name: "lora_" in name
    if params == "head":
        return lambda name: _matches_any(name, _HEAD_PATTERNS)
    if params == "bias":
        return lambda name: name.endswith("bias")
    match = re.fullmatch(r"last-(\d+)", params)
    if match:
        k = int(match.group(1))
        indices = {block_index(n) for n, _ in model.named_parameters()} - {None}
        if k < 1 or not indices:
            raise input_error("empirical_ntk", "params", params,
                              "last-k with k >= 1 on a model with numbered transformer blocks")
        keep = set(sorted(cast(set[int], indices))[-k:])  # None removed above
        return lambda name: block_index(name) in keep
    raise input_error("empirical_ntk", "params", params, f"one of {', '.join(PRESETS)} "
                      "(last-k as e.g. 'last-2') or a predicate on parameter names")


def select_parameters(
    model: torch.nn.Module, params: ParamSpec = "attention"
) -> list[tuple[str, torch.nn.Parameter]]:
    """The (name, parameter) pairs of S, in model order, each shared parameter once.

    A tied parameter (SmolLM2's embedding is also its ``lm_head``) is selected when any of its
    names matches, so ``head`` finds a tied output head too.
    """
    predicate = parameter_predicate(model, params)
    aliases: dict[int, list[str]] = {}
    first: dict[int, tuple[str, torch.nn.Parameter]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(param), []).append(name)
        first.setdefault(id(param), (name, param))
    chosen = [first[k] for k, names in aliases.items() if any(predicate(n) for n in names)]
    if not chosen:
        label = params if isinstance(params, str) else getattr(params, "__name__", "predicate")
        raise input_error(f"model {type(model).__name__}", "params", label,
                          "a parameter set that selects at least one parameter of this model")
    return chosen


def parameter_count(selected: list[tuple[str, torch.nn.Parameter]]) -> int:
    """Total number of scalar parameters in S."""
    return sum(p.numel() for _, p in selected)

"""What each ``bias`` command is asked to do: every parameter declared once (type, choices,
range, help), checked when a config is constructed and read by the command line's options.

A light module (the standard library and ``core.params`` only), so ``transferscope bias
--help`` loads no numeric library. The options that ``bias run`` and ``bias debias`` share
are two groups, each declared once and composed into both configs:

- :class:`ModelOptions`: which model answers and how it is reached (``model``,
  ``base_url``, ``api_key_env``, ``concurrency``);
- :class:`ItemOptions`: what it is asked and how the answers are scored (``tests``,
  ``drafts_per_nation``, ``items``, ``record``, ``seed``, ``n_boot``).

:class:`BackendOptions` says where requests run and how they are cached (not recorded in
``run.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, get_args

from transferscope.core.checks import MAX_SEED
from transferscope.core.errors import input_error
from transferscope.core.params import Spec, Validated

if TYPE_CHECKING:
    from transferscope.bias.backends.base import GenerationSettings

__all__ = [
    "Adjustment",
    "BackendOptions",
    "CalibrateConfig",
    "CompareConfig",
    "DebiasConfig",
    "DebiasMethod",
    "Executor",
    "ItemOptions",
    "ModelOptions",
    "OptionScoring",
    "RunConfig",
]

# Bounds past which a setting is a typo, not a plan: retries that never end, a thread per
# request, a request that may hang for a day, bootstraps that take hours.
MAX_RETRIES = 20
MAX_CONCURRENCY = 256
MAX_TIMEOUT_S = 3600.0
MAX_RESAMPLES = 1_000_000

OptionScoring = Literal["mean", "sum", "generate"]
Adjustment = Literal["holm", "bh"]
Executor = Literal["local", "ray"]
DebiasMethod = Literal["rag", "reflexion", "rag+reflexion"]
OPTION_SCORING: tuple[str, ...] = get_args(OptionScoring)
METHODS: tuple[str, ...] = get_args(DebiasMethod)


# the tests only an items file holds (UNBench tasks 3 and 1; bias.probes.outcomes scores them)
FILE_ONLY_TESTS = ("adoption", "coauthor")


def _test_names(text: str) -> str | None:
    """The rule of ``tests``: comma-separated names of registered probes (or of the tests only
    an items file holds), each once."""
    from transferscope.bias.probes.registry import PROBES

    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    known = (*PROBES, *FILE_ONLY_TESTS)
    expected = (f"comma-separated test names, each once, from {', '.join(PROBES)} "
                f"(and {', '.join(FILE_ONLY_TESTS)} with --items)")
    unknown = [n for n in names if n not in known]
    if unknown:
        return f"{expected} ({unknown[0]!r} is none of them)"
    if not names or len(set(names)) < len(names):
        return expected
    return None


def _prompt_variants(text: str) -> str | None:
    """The rule of ``prompts``: ``all`` or comma-separated variant names."""
    from transferscope.bias.prompting import ALL_PROMPTS

    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if text.strip().lower() == "all" or (names and all(n in ALL_PROMPTS for n in names)):
        return None
    return f"'all' or a comma-separated list of {', '.join(ALL_PROMPTS)}"


def _seed_range(seed: int) -> str | None:
    return "a whole number from 0 to 2**63 - 1" if seed > MAX_SEED else None


Seed = Annotated[int, Spec(ge=0, rule=_seed_range, help="Random seed (bootstrap, sampling, "
                           "item caps).")]
Resamples = Annotated[int, Spec(ge=10, le=MAX_RESAMPLES, help="Bootstrap resamples (CIs).")]
TestNames = Annotated[str, Spec(help="Comma-separated: directqa, association, vote.",
                                rule=_test_names)]
RecordFolder = Annotated[str | None, Spec(
    help="A record folder written by build-data (default: the shipped record).")]


@dataclass(kw_only=True, frozen=True)
class ModelOptions(Validated):
    """Which model answers and how it is reached (shared by ``bias run`` and ``bias debias``;
    recorded in ``run.json``, never a secret)."""

    model: Annotated[str, Spec(
        help="hf-local[:name|path], openai:<model>, or an answerer with no opinion: "
        "null:constant, null:first, null:random[:seed], null:uniform-logprobs, and by the "
        "draft alone: null:by-era, null:by-topic, null:by-hash, null:by-length")
    ] = "hf-local:smollm2"
    base_url: Annotated[str | None, Spec(help="OpenAI-compatible server.")] = None
    api_key_env: Annotated[str | None, Spec(
        help="Name of the environment variable holding the API key.")] = None
    concurrency: Annotated[int, Spec(ge=1, le=MAX_CONCURRENCY,
                                     help="Requests in flight at once.")] = 4


@dataclass(kw_only=True, frozen=True)
class ItemOptions(Validated):
    """What the model is asked and how its answers are resampled (shared by ``bias run`` and
    ``bias debias``)."""

    tests: TestNames = "directqa,association,vote"
    drafts_per_nation: Annotated[int | None, Spec(
        ge=1, help="At most N vetoed drafts per nation (stratified by era; each with its "
        "matched unanimous adoption; every nation asked about every draft), the same cap as "
        "evaluate(drafts_per_nation=N). A cap that leaves a nation fewer than 20 drafts to be "
        "compared on is an error naming it. Default: every draft.")] = None
    seed: Seed = 0
    n_boot: Resamples = 1000
    record: RecordFolder = None
    items: Annotated[str | None, Spec(
        help="Items file (.jsonl, .csv, .parquet) to ask instead of the record's items; "
        "schema in docs/bias.md (bias import-unbench writes one from a UNBench checkout).")
    ] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        asked = {n.strip().lower() for n in self.tests.split(",")}
        file_only = [n for n in FILE_ONLY_TESTS if n in asked]
        if file_only and self.items is None:
            raise input_error("--tests", "test name", file_only[0],
                              "a test of the record (directqa, association, vote), or --items "
                              "with a file that holds it (bias import-unbench writes adoption "
                              "and coauthor items)")


@dataclass(kw_only=True, frozen=True)
class RunConfig(ItemOptions, ModelOptions):
    """What ``bias run`` asks (recorded as ``run.json``'s ``config``; no secret ever enters
    it): the model and item groups, then how answers are read and generated."""

    option_scoring: Annotated[OptionScoring, Spec(
        help="Compare options by 'mean' per-token log-probability (length-fair, default) or "
        "'sum'; 'generate' parses generated answers instead. openai without "
        "--template-model: chat log-probabilities, compared summed.")] = "mean"
    adjust: Annotated[Adjustment, Spec(
        help="p-value adjustment over the run's headline cells: holm (family-wise, default) "
        "or bh (Benjamini-Hochberg).")] = "holm"
    max_tokens: Annotated[int, Spec(ge=1, help="Tokens per generated answer.")] = 16
    temperature: Annotated[float, Spec(
        ge=0.0, le=2.0, help="Sampling temperature of generated answers (0: greedy).")] = 0.0
    samples: Annotated[int, Spec(
        ge=1, help="Generated answers per item (needs --temperature > 0); the most frequent "
        "parse counts, the score's spread over samples is reported.")] = 1
    system_prompt: Annotated[str | None, Spec(
        help="Replaces every system message; {default} stands for the test's own (which "
        "names the nation in the vote role form).")] = None
    few_shot: Annotated[int, Spec(
        ge=0, help="Solved examples before each question, only from drafts the run does not "
        "ask (same test and form; needs --drafts-per-nation to leave some), the same for "
        "every nation of a draft.")] = 0

    context_tokens: Annotated[int | None, Spec(
        ge=64, help="The model's context in tokens; a prompt that does not fit is shortened "
        "(its opening and end kept, the cut marked and counted). Default: learned from the "
        "backend (hf-local config, llama-server /props, vLLM max_model_len); llama-cpp-python "
        "reports none: pass its --n_ctx.")] = None
    prompts: Annotated[str, Spec(
        help="Prompt variants: w0 (the validated wording, default), 'all' (three wordings, "
        "each with options as listed and reversed), or a list such as w0,w2,w0-rev; scores per "
        "variant and their spread are reported.", rule=_prompt_variants)] = "w0"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.samples > 1 and self.temperature == 0:
            raise input_error("--samples", "samples", self.samples, "1 with --temperature 0 "
                              "(greedy answers repeat), or a --temperature above 0")

    def generation(self) -> GenerationSettings:
        """How free-text answers are generated (one line: the answer, not an essay; the seed
        only where sampling uses it, so greedy answers are cached whatever ``--seed``)."""
        from transferscope.bias.backends.base import GenerationSettings

        return GenerationSettings(max_tokens=self.max_tokens, temperature=self.temperature,
                                  seed=self.seed if self.temperature > 0 else 0, stop=("\n",))


@dataclass(kw_only=True, frozen=True)
class DebiasConfig(ItemOptions, ModelOptions):
    """What ``bias debias`` asks: the model and item groups of ``bias run`` (its baseline is
    exactly that run, :meth:`run_config`), then the method and its settings."""

    method: Annotated[DebiasMethod, Spec(help="rag, reflexion or rag+reflexion.")
                      ] = "rag+reflexion"
    paired_boot: Annotated[int, Spec(
        ge=10, le=MAX_RESAMPLES, help="Paired bootstrap resamples (change CIs, p-values).")
    ] = 200
    top_k: Annotated[int, Spec(ge=1, le=1000, help="Passages retrieved per item.")] = 4
    rounds: Annotated[int, Spec(ge=0, le=MAX_RETRIES,
                                help="Reflexion retries after the first attempt.")] = 2
    memory_size: Annotated[int, Spec(ge=1, le=1000, help="Reflections kept per item.")] = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        asked = {n.strip().lower() for n in self.tests.split(",")}
        if asked & set(FILE_ONLY_TESTS):
            raise input_error("--tests", "test name", sorted(asked & set(FILE_ONLY_TESTS))[0],
                              "a test debiasing applies to (directqa, association, vote)")

    def run_config(self) -> RunConfig:
        """The baseline run's config: the two shared groups, every other setting default."""
        shared = {name: getattr(self, name) for name in
                  (*ModelOptions.__dataclass_fields__, *ItemOptions.__dataclass_fields__)}
        return RunConfig(**shared)


@dataclass(kw_only=True, frozen=True)
class CalibrateConfig(Validated):
    """What ``bias calibrate`` asks: answerers with no opinion on the full item set (their
    share of claims), a bias planted on each nation in turn, the power table."""

    tests: TestNames = "directqa,association,vote"
    seed: Seed = 0
    n_boot: Resamples = 1000
    record: RecordFolder = None
    power_reps: Annotated[int, Spec(
        ge=0, le=100_000, help="Seeded replications per planted effect and nation for the "
        "power table (0: skip it).")] = 10
    coverage_seeds: Annotated[int, Spec(
        ge=0, le=100_000, help="Seeds of null:random for the coverage of its CIs (0: skip).")
    ] = 0
    planted: Annotated[float, Spec(
        ge=0.0, le=0.5, help="Effect planted on each nation in turn to check it is found on "
        "that nation alone (0: skip).")] = 0.3


def _some_folders(run_dirs: Sequence[Path]) -> str | None:
    return None if len(run_dirs) else "at least one run folder"


@dataclass(kw_only=True, frozen=True)
class CompareConfig(Validated):
    """What ``bias compare`` asks: several models' run folders side by side (factual accuracy
    against mean |bias|, their correlation across models with a bootstrap CI), the report
    written to ``out``. That each folder is a run folder, given once, and that ``out`` may be
    written are checked when :func:`~transferscope.bias.compare_models` starts."""

    run_dirs: Annotated[tuple[Path, ...], Spec(
        rule=_some_folders, help="Run folders of several models (`bias run` outputs or debias "
        "baseline/, debiased/ folders).")]
    out: Annotated[Path, Spec(help="Report folder.")]
    n_boot: Annotated[int, Spec(ge=10, le=MAX_RESAMPLES, help="Bootstrap resamples (drafts "
                                "resampled within each model) for every CI.")] = 200
    seed: Seed = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "run_dirs", tuple(Path(d) for d in self.run_dirs))
        object.__setattr__(self, "out", Path(self.out))


@dataclass(kw_only=True, frozen=True)
class BackendOptions(Validated):
    """How a run reaches its model, beyond what its config records (model, base URL, key
    variable, concurrency): where requests run, retries, timeout, template model, cache."""

    executor: Annotated[Executor, Spec(
        help="local, or ray (requests sharded over Ray workers, one backend replica each).")
    ] = "local"
    address: Annotated[str | None, Spec(
        help="Ray cluster address (auto, host:6379, ray://host:10001); none: local.")] = None
    workers: Annotated[int | None, Spec(ge=1, help="Ray workers (default: one per CPU of "
                                        "the cluster).")] = None
    max_retries: Annotated[int, Spec(ge=0, le=MAX_RETRIES,
                                     help="Retries of a failed HTTP request.")] = 4
    timeout_s: Annotated[float, Spec(
        gt=0.0, le=MAX_TIMEOUT_S, help="Deadline per HTTP request in seconds (connect and "
        "every read together: a server that drips bytes is cut off).")] = 60.0
    template_model: Annotated[str | None, Spec(
        help="openai: a local tokenizer of the served model (e.g. smollm2), to score options "
        "by their whole log-likelihood (without it: by chat log-probabilities, each option's "
        "first distinguishing token, or parsed text where the server gives none). The server "
        "must return prompt log-probabilities: start llama-cpp-python's with `python -m "
        "llama_cpp.server --model M.gguf --model_alias NAME --logits_all true`.")] = None
    cache: Annotated[bool | str | Path, Spec(
        help="True: the default SQLite response cache; a path: that file; False: none.")
    ] = True

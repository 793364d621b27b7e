"""Evaluate one model on the bias probes and write its run folder (``bias run``).

Flow: probes build items from the record -> the backend answers (option log-likelihoods for
multiple choice where it can, otherwise generated text parsed strictly) -> the probes score
-> ``scores.csv``, ``answers.jsonl``, ``run.json``. Every model answer goes through the
backend's SQLite cache as soon as it exists, so Ctrl-C loses nothing already answered and an
identical second run makes no model calls.

:func:`run_evaluation` is the one entry point (``bias run``, the demo, Ray, the debias
pipeline): a :class:`RunConfig` in, an :class:`Evaluation` out, on the backend the config names
(opened and closed there) or on one the caller holds. :func:`evaluate` is the same call with
the config's fields as keywords.
The run folder's format lives here only: :func:`write_run` writes it, :func:`read_answers`
reads its answers back.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferscope.bias import preflight
from transferscope.bias.backends.base import (
    Backend,
    BackendStats,
    GenerationSettings,
    OptionScoringNotSupported,
)
from transferscope.bias.backends.factory import open_backend
from transferscope.bias.backends.null import request_rng
from transferscope.bias.config import OPTION_SCORING, BackendOptions, OptionScoring, RunConfig
from transferscope.bias.context_fit import fit_run
from transferscope.bias.data.members import P5
from transferscope.bias.data.record import Record, load_record
from transferscope.bias.items import items_hash, load_items, read_items_bytes
from transferscope.bias.probes.base import Answer, Item, Probe, option_distribution
from transferscope.bias.probes.from_file import file_probes, file_test_names
from transferscope.bias.probes.outcomes import OUTCOME_TESTS
from transferscope.bias.probes.registry import parse_tests
from transferscope.bias.probes.sampling import cap_items
from transferscope.bias.prompting import (
    DEFAULT_PROMPTS,
    by_prompt,
    parse_prompts,
    with_few_shot,
    with_system_prompt,
)
from transferscope.bias.scoring import (
    MIN_DRAFTS,
    SCORE_COLUMNS,
    add_flag,
    adjust_run,
    drafts_compared,
    paraphrase_spread,
    wordings,
)
from transferscope.core.errors import input_error
from transferscope.core.io import iter_jsonl, write_csv, write_json, write_jsonl
from transferscope.core.progress import progress_bar

CHUNK = 16  # requests per backend call: the progress bar's step and the most Ctrl-C can lose
FREE_TEXT = GenerationSettings(max_tokens=16, temperature=0.0, stop=("\n",))


@dataclass(kw_only=True)
class Evaluation:
    """A finished run: every score, the per-item answers, the model work it cost, and where it
    was written (``None`` when only returned)."""

    scores: pd.DataFrame
    stats: BackendStats
    out_dir: Path | None
    answers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def headline(self) -> pd.DataFrame:
        """One row per test, form and nation: the score the report leads with."""
        return self.scores[self.scores["headline"]]

    @property
    def table(self) -> pd.DataFrame:
        """The headline scores as the user-facing table: nation, test, form, score (expected
        answer), CI, adjusted p-value, ``claim`` (significant after adjustment and unflagged),
        the argmax score, the median top-two option margin, n (drafts compared), why a cell
        cannot carry a claim (``flag``, empty when it can) and the prompt variant
        (``wording``: ``w0`` unless the run asked others, ``--prompts``)."""
        head = self.headline.rename(columns={"value": "score", "value_argmax": "score_argmax"})
        return head[TABLE_COLUMNS].reset_index(drop=True)

    @property
    def spread(self) -> pd.DataFrame | None:
        """The headline cells across prompt variants (min, max, sd, order gap, whether the
        finding survives paraphrase: :func:`~transferscope.bias.scoring.paraphrase_spread`);
        None when the run asked one variant."""
        return paraphrase_spread(self.headline) if len(wordings(self.scores)) > 1 else None

    @property
    def other_members(self) -> pd.DataFrame:
        """Countries other than the five (items from a file): their own ``B = U - F``, ``U``
        and accuracy rows (``B`` is undefined where no gold is ``against``), never centred
        with the five's and not in the headline; flagged where they rest on few items."""
        s = self.scores
        return s[~s["nation"].isin(P5) & s["metric"].isin(OTHER_METRICS)
                 & ~s["test"].isin(OUTCOME_TESTS)].reset_index(drop=True)

    @property
    def outcomes(self) -> pd.DataFrame:
        """The adoption and co-author rows (items from a file): accuracy against the record
        beside its baseline, per form and per nation, descriptive (never a claim)."""
        s = self.scores
        return s[s["test"].isin(OUTCOME_TESTS)].reset_index(drop=True)


OTHER_METRICS = ("B", "U", "accuracy")
TABLE_COLUMNS = ["nation", "test", "form", "metric", "score", "ci_low", "ci_high", "p_adj",
                 "claim", "score_argmax", "margin_median", "n_items", "n_unparsed", "flag",
                 "wording"]


def choose_option(item: Item, logprobs: Sequence[float],
                  token_counts: Sequence[int] | None = None) -> str:
    """The option with the highest log-probability, per token when ``token_counts`` are given
    (length-fair: a 3-token option is not penalised against a 2-token one for its length); an
    exact tie is broken uniformly at random (seeded by the item id), so option order never
    decides for a model without a preference (argmax alone would always pick the first)."""
    lp = np.asarray(logprobs, float)
    if token_counts is not None:
        lp = lp / np.maximum(np.asarray(token_counts, float), 1.0)
    best = np.flatnonzero(lp == lp.max())
    pick = best[0] if len(best) == 1 else best[request_rng(0, item.item_id).integers(len(best))]
    return item.options[int(pick)]  # type: ignore[index]


def answer_items(backend: Backend, probe: Probe, items: Sequence[Item],
                 advance: Callable[[int], None] = lambda n: None,
                 option_scoring: str = "mean", settings: GenerationSettings = FREE_TEXT,
                 samples: int = 1) -> dict[str, Answer]:
    """Each item's answer: the option log-likelihood argmax (``option_scoring``: ``mean`` per
    token, the default, or ``sum``; ``mean`` falls back to ``sum`` on a backend that cannot
    count tokens, and the run records which was used), or the parse of generated text
    (``generate``: always; ``samples`` replies per item, seeds ``settings.seed + k``, the most
    frequent parse kept, ties broken at random per item)."""
    if option_scoring not in OPTION_SCORING:
        raise input_error("--option-scoring", "option scoring", option_scoring,
                          "'mean' (per-token, length-fair), 'sum' or 'generate'")
    answers: dict[str, Answer] = {}
    scored = [i for i in items if i.options]
    to_generate = [i for i in items if not i.options]
    counts: dict[tuple[str, ...], list[int] | None] = {}
    if scored and backend.supports_option_logprobs and option_scoring != "generate":
        kind = getattr(backend, "option_logprob_kind", "sequence")
        try:
            for start in range(0, len(scored), CHUNK):
                chunk = scored[start:start + CHUNK]
                values = backend.option_logprobs_many([(i.conversation, i.options or ())
                                                       for i in chunk])
                for item, lp in zip(chunk, values, strict=True):
                    if np.isnan(np.asarray(lp, float)).any():  # no option reached: parse it
                        to_generate.append(item)
                        continue
                    key = tuple(item.options or ())
                    if option_scoring == "mean" and key not in counts:
                        counts[key] = backend.option_token_counts(item.conversation, key)
                    n = counts.get(key) if option_scoring == "mean" else None
                    best = choose_option(item, lp, n)
                    method = ("logprob-first-token" if kind == "first-token" else
                              "logprob" if n is None else "logprob-mean")
                    answers[item.item_id] = Answer(
                        item_id=item.item_id, choice=best, text=best, method=method,
                        logprobs=tuple(float(v) for v in lp), token_counts=tuple(n) if n is not None else None)
                advance(len(chunk))
        except OptionScoringNotSupported:
            waiting = {i.item_id for i in to_generate}
            to_generate += [i for i in scored
                            if i.item_id not in answers and i.item_id not in waiting]
    else:
        to_generate += scored
    for start in range(0, len(to_generate), CHUNK):
        chunk = to_generate[start:start + CHUNK]
        per_item: list[list[tuple[str, Any]]] = [[] for _ in chunk]
        for k in range(samples):
            replies = backend.chat([i.conversation for i in chunk],
                                   dataclasses.replace(settings, seed=settings.seed + k))
            for got, item, reply in zip(per_item, chunk, replies, strict=True):
                got.append((reply.text, probe.parse(item, reply.text)))
        for item, got in zip(chunk, per_item, strict=True):
            choice = majority(item, [c for _, c in got])
            text = next((t for t, c in got if _same(c, choice)), got[0][0])
            answers[item.item_id] = Answer(item_id=item.item_id, choice=choice, text=text,
                                           method="parse",
                                           samples=tuple(got) if samples > 1 else ())
        advance(len(chunk))
    return answers


def _same(a: Any, b: Any) -> bool:
    return repr(_key(a)) == repr(_key(b))


def _key(choice: Any) -> Any:
    return sorted(choice) if isinstance(choice, frozenset) else choice


def majority(item: Item, choices: Sequence[Any]) -> Any:
    """The most frequent parsed choice (None only when no sample parsed); a tie is broken
    at random, seeded by the item id, never by sample order."""
    parsed = [c for c in choices if c is not None]
    if not parsed:
        return None
    counts: dict[str, list[Any]] = {}
    for c in parsed:
        counts.setdefault(repr(_key(c)), []).append(c)
    top = max(len(v) for v in counts.values())
    best = [v[0] for v in counts.values() if len(v) == top]
    return best[0] if len(best) == 1 else best[int(request_rng(0, item.item_id).integers(
        len(best)))]


def score_answers(probes: Sequence[Probe], items: Mapping[str, Sequence[Item]],
                  answers: Mapping[str, Mapping[str, Answer]], n_boot: int, seed: int,
                  adjust: str = "holm") -> pd.DataFrame:
    """Every probe's per-nation scores with draft-clustered CIs, the headline cells' p-values
    adjusted together (``adjust``: holm or bh) and ``claim`` set, in ``SCORE_COLUMNS``
    order."""
    parts = []
    for p in probes:
        for prompt, group in by_prompt(items[p.name]).items():  # each variant scored alone
            part = p.score(group, dict(answers[p.name]), n_boot, seed)
            constant = constant_forms(group, answers[p.name])
            part["flag"] = [add_flag(f, "answers never vary") if r.form in constant and
                            r.headline else f
                            for f, r in zip(part["flag"], part.itertuples(), strict=True)]
            part["wording"] = prompt
            parts.append(part)
    return adjust_run(pd.concat(parts, ignore_index=True), adjust)[SCORE_COLUMNS]


def constant_forms(items: Sequence[Item], answers: Mapping[str, Answer]) -> set[str]:
    """Forms in which every parsed answer is the same, for every nation (the same choice and
    the same option log-probabilities): nothing in them can differ between nations, so their
    scores say nothing about any nation whatever the model believes."""
    seen: dict[str, set[str]] = {}
    for item in items:
        a = answers.get(item.item_id)
        if a is None or a.choice is None:
            continue
        choice = sorted(a.choice) if isinstance(a.choice, frozenset) else a.choice
        scores = sorted(zip(item.options, a.logprobs, strict=True)) \
            if a.logprobs is not None and item.options else None
        seen.setdefault(item.form, set()).add(repr((choice, scores)))
    return {form for form, values in seen.items() if len(values) == 1}


def answer_rows(probes: Sequence[Probe], items: Mapping[str, Sequence[Item]],
                answers: Mapping[str, Mapping[str, Answer]]) -> list[dict[str, Any]]:
    """One ``answers.jsonl`` row per item: the item, its full messages (system prompt
    included), the answer (or None), the options' log-probabilities and probabilities (as the
    soft scores use them), the top-two margin, the samples and whether the answer equals the
    gold (``correct``; None without a gold or a parse)."""
    rows = []
    for probe in probes:
        for item in items[probe.name]:
            a = answers[probe.name].get(item.item_id)
            rows.append({
                "test": item.test, "form": item.form, "item_id": item.item_id,
                "nation": item.nation, "draft": item.draft, "gold": item.gold,
                "meta": item.meta,
                "prompt": item.conversation[-1]["content"], "messages": item.conversation,
                "options": item.options,
                "choice": a.choice if a else None, "parsed": bool(a and a.choice is not None),
                "reply": a.text if a else None, "method": a.method if a else None,
                "option_logprobs": dict(zip(item.options, a.logprobs, strict=True))
                if a and a.logprobs is not None and item.options else None,
                "token_counts": list(a.token_counts) if a and a.token_counts else None,
                "probabilities": _probabilities(item, a),
                "margin": _margin(item, a),
                "samples": [{"reply": t, "parse": c} for t, c in a.samples] if a else [],
                "correct": is_correct(item, a.choice) if a else None})
    return rows


def _probabilities(item: Item, answer: Answer | None) -> dict[str, float] | None:
    """Each option's probability as the scores use it (:func:`option_distribution`)."""
    probs, _ = option_distribution(item, answer)
    if probs is None or answer is None or answer.logprobs is None:
        return None
    return {o: round(float(p), 6) for o, p in zip(item.options or (), probs, strict=True)}


def _margin(item: Item, answer: Answer | None) -> float | None:
    """The item's top-two option margin in nats (per token by default); None for parsed text."""
    _, margin = option_distribution(item, answer)
    return None if not np.isfinite(margin) else round(float(margin), 6)


def is_correct(item: Item, choice: Any) -> bool | None:
    """Whether a parsed answer equals the item's gold (None: no gold, or no parse)."""
    if choice is None or item.gold is None:
        return None
    if isinstance(item.gold, frozenset):
        return frozenset(choice) == item.gold
    return str(choice).lower() == str(item.gold).lower()


def sample_rows(rows: Sequence[Mapping[str, Any]], settings: GenerationSettings
                ) -> list[dict[str, Any]]:
    """One ``samples.jsonl`` row per request the run made or took from the cache: the full
    messages, the generation settings (generated answers) or each option's log-probability
    (scored options), the reply, its parse, the gold and whether they agree."""
    out = []
    for row in rows:
        base = {k: row[k] for k in ("test", "form", "item_id", "nation", "gold", "messages",
                                    "options")}
        if row["method"] != "parse":
            out.append({**base, "sample": 0, "method": row["method"],
                        "option_logprobs": row["option_logprobs"],
                        "token_counts": row["token_counts"], "reply": row["reply"],
                        "parse": row["choice"], "correct": row["correct"]})
            continue
        samples = row["samples"] or [{"reply": row["reply"], "parse": row["choice"]}]
        for k, sample in enumerate(samples):
            out.append({**base, "sample": k, "method": "parse",
                        "settings": {**settings.as_dict(), "seed": settings.seed + k},
                        "reply": sample["reply"], "parse": sample["parse"],
                        "correct": None if sample["parse"] is None or row["gold"] is None
                        else _correct_value(row["gold"], sample["parse"])})
    return out


def _correct_value(gold: Any, parse: Any) -> bool:
    if isinstance(gold, frozenset | set | list) and not isinstance(gold, str):
        return set(parse) == set(gold)
    return str(parse).lower() == str(gold).lower()


def write_run(out_dir: Path, scores: pd.DataFrame, rows: list[dict[str, Any]],
              summary: dict[str, Any], samples: list[dict[str, Any]] | None = None) -> None:
    """A run folder: ``answers.jsonl``, ``scores.csv``, ``run.json`` (and ``samples.jsonl``,
    every request), each written atomically."""
    write_jsonl(out_dir / "answers.jsonl", rows)
    if samples is not None:
        write_jsonl(out_dir / "samples.jsonl", samples)
    write_csv(out_dir / "scores.csv", scores)  # text cells safe to open in a spreadsheet
    write_json(out_dir / "run.json", summary)


def read_answers(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run folder's ``answers.jsonl`` (one clear error if a line is damaged)."""
    path = run_dir / "answers.jsonl"
    rows = []
    for number, row in iter_jsonl(path, "answers of a bias run"):  # bounded, strict JSON
        rows.append(row)
        missing = [k for k in ANSWER_FIELDS if not isinstance(row, dict) or k not in row]
        if missing:
            raise input_error(f"{path}:{number}", "line", row, "a JSON object with "
                              f"{', '.join(ANSWER_FIELDS)} (no {missing[0]!r})")
    return rows


ANSWER_FIELDS = ("item_id", "choice", "parsed", "reply")  # what reports and comparisons read


@dataclass(kw_only=True, frozen=True)
class ItemsFile:
    """An items file (``--items``) read once per command: its items and the sha256 of its
    bytes, both taken before any model is asked, and passed down to whatever needs them."""

    path: str
    items: list[Item]
    sha256: str


def read_items_file(path: str | Path) -> ItemsFile:
    """Read an items file once: its bytes, parsed and hashed from the same bytes (one clear
    error if it is not one)."""
    data = read_items_bytes(path)
    return ItemsFile(path=str(path), items=load_items(path, data=data), sha256=items_hash(data))


def _run(backend: Backend, config: RunConfig, out_dir: Path | None, record: Record | None,
         command_line: str | None = None, items_file: ItemsFile | None = None
         ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    if config.items and items_file is None:
        items_file = read_items_file(config.items)
    probes, items, record = build_run_items(config, record, items_file)
    settings = config.generation()
    items, fit = fit_run(backend, items, config.context_tokens, settings.max_tokens)
    backend.stats.extra["context_fit"] = {**fit.as_dict(), "line": fit.line()}
    started = time.perf_counter()
    answers: dict[str, dict[str, Answer]] = {}
    # on stdout, beside the printed scores: stderr stays the one error line a failure prints
    with progress_bar() as progress:
        for probe in probes:
            task = progress.add_task(f"{probe.name} ({backend.id})", total=len(items[probe.name]))
            answers[probe.name] = answer_items(
                backend, probe, items[probe.name],
                functools.partial(progress.advance, task), config.option_scoring,
                settings, config.samples)
    seconds = time.perf_counter() - started
    scores = score_answers(probes, items, answers, config.n_boot, config.seed, config.adjust)
    if config.samples > 1:
        scores["sample_sd"] = sample_spread(probes, items, answers, config)
    scores.insert(0, "model", backend.id)
    rows = answer_rows(probes, items, answers)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        summary = {
            "config": asdict(config), "backend": backend.id,
            "provenance": provenance(backend, config, record, command_line, items_file),
            "generation": settings.as_dict(),
            "items": {k: len(v) for k, v in items.items()},
            "unparsed": {k: sum(a.choice is None for a in v.values())
                         for k, v in answers.items()},
            "methods": {k: sorted({a.method for a in v.values()}) for k, v in answers.items()},
            "stats": backend.stats.as_dict(), "seconds": round(seconds, 3),
            "record": None if record is None else
            {"drafts": len(record.drafts), "build": record.build.get("counts", {})},
        }
        write_run(out_dir, scores, rows, summary, sample_rows(rows, settings))
    return scores, rows


def build_run_items(config: RunConfig, record: Record | None = None,
                    items_file: ItemsFile | None = None
                    ) -> tuple[list[Probe], dict[str, list[Item]], Record | None]:
    """The probes and items a config asks: from its items file, or built from the record
    (loaded here unless given; None with an items file) with ``drafts_per_nation`` (a cap
    that leaves a nation fewer than :data:`~transferscope.bias.scoring.MIN_DRAFTS` drafts to
    be compared on, where every draft would have been enough, is one error naming it; a record
    too small even in full is scored, its cells flagged), then the system prompt and few-shot
    examples. ``items_file``: ``config.items`` already read (else read here)."""
    if config.items:
        from_file = (items_file or read_items_file(config.items)).items
        probes = file_probes(from_file, file_test_names(config.tests))
        if not probes:
            raise input_error("--items", "tests in the file", sorted({i.test for i in from_file}),
                              f"items of the requested tests ({config.tests})")
    else:
        probes = parse_tests(config.tests)
        record = record or load_record(config.record)
    items = {}
    prompts = parse_prompts(config.prompts)
    for p in probes:
        built = p.build_prompts(record, config.drafts_per_nation, config.seed,  # type: ignore[arg-type]
                                prompts)
        full: list[Item] | None = None
        if config.items:
            full, built = built, cap_items(built, config.drafts_per_nation, config.seed)
        if config.drafts_per_nation is not None and not config.items:
            short = check_design(p, built)
            if short:  # the cap's fault only if every draft would have been enough
                full = p.build_items(record, None, config.seed)  # type: ignore[arg-type]
                if not check_design(p, full):
                    raise input_error("--drafts-per-nation", "drafts per nation",
                                      config.drafts_per_nation, f"a cap that leaves every "
                                      f"nation at least {MIN_DRAFTS} drafts to be compared on "
                                      f"({short}); raise it, or leave it out to ask every draft")
        if config.few_shot and (not full or prompts != DEFAULT_PROMPTS):
            full = p.build_prompts(record, None, config.seed, prompts)  # type: ignore[arg-type]
        pool = full if config.few_shot and full else []
        items[p.name] = prepare_items(built, pool, config)
    return probes, items, record


def check_design(probe: Probe, items: Sequence[Item]) -> str:
    """The first form and nation left fewer than ``MIN_DRAFTS`` drafts on which it can be
    compared, said in words (``""`` when none): the structure of the items, whatever a model
    answers."""
    every = {i.item_id: Answer(item_id=i.item_id, choice=_any_answer(i), text="",
                               method="design") for i in items}
    for form, judged in probe.judgements(list(items), every).items():
        nations = sorted(dict.fromkeys(judged["nation"]))
        for nation, n in drafts_compared(judged, nations).items():
            if n < MIN_DRAFTS:
                return f"{probe.name} {form}: {nation} has {n}"
    return ""


def _any_answer(item: Item) -> Any:
    return item.options[0] if item.options else frozenset()


def prepare_items(built: Sequence[Item], pool: Sequence[Item], config: RunConfig) -> list[Item]:
    """The items a run asks, with the system prompt and few-shot examples the config names
    (examples drawn from ``pool`` items about drafts the run does not ask)."""
    return with_few_shot(with_system_prompt(built, config.system_prompt),
                         with_system_prompt(pool, config.system_prompt), config.few_shot,
                         config.seed)


def sample_spread(probes: Sequence[Probe], items: Mapping[str, Sequence[Item]],
                  answers: Mapping[str, Mapping[str, Answer]], config: RunConfig) -> list[float]:
    """Per score row: the standard deviation over samples of the score computed on sample k's
    answers alone (items scored by log-probability give the same answer in every sample)."""
    values = []
    for k in range(config.samples):
        kth = {name: {i: dataclasses.replace(a, choice=a.samples[k][1]) if a.samples else a
                      for i, a in got.items()} for name, got in answers.items()}
        values.append(score_answers(probes, items, kth, 10, config.seed)["value"].to_numpy())
    return list(np.std(np.vstack(values), axis=0, ddof=1))


def provenance(backend: Backend, config: RunConfig, record: Record | None,
               command_line: str | None, items_file: ItemsFile | None = None
               ) -> dict[str, Any]:
    """What a reviewer needs to reproduce the run: package version, git commit, the hash of
    the items file or the record, the backend's fingerprint, the command line."""
    from transferscope.bias.runinfo import git_commit, package_version, record_hash

    return {"package_version": package_version(), "git_commit": git_commit(),
            "items_file": config.items,
            "items_sha256": items_file.sha256 if items_file is not None else None,
            "record_sha256": record_hash(record) if record is not None else None,
            "backend_id": backend.id, "backend_fingerprint": backend.fingerprint,
            "cache_notice": backend.stats.extra.get("cache_notice"),
            "command_line": command_line}


def evaluate(backend: Backend | str, tests: str = "directqa,association,vote", *,
             drafts_per_nation: int | None = None, seed: int = 0, n_boot: int = 1000,
             option_scoring: OptionScoring = "mean",
             record: Record | str | Path | None = None, out_dir: Path | None = None,
             items: str | Path | None = None, **settings: Any) -> Evaluation:
    """:func:`run_evaluation` with the config's fields as keywords: run ``tests`` on ``backend`` (any :class:`Backend`, your own
    subclass included, or a spec string such as ``"null:random"``, opened and closed here) and
    return the per-item answers and the scores (``Evaluation.table``: nation, test, form,
    score, CI, adjusted p, claim, n, flag). ``drafts_per_nation`` caps the vetoed drafts asked
    per nation (as ``--drafts-per-nation``). ``out_dir`` also writes the run folder.
    ``items`` names an items file to ask instead of the record's items; ``settings`` are the
    other :class:`RunConfig` fields (``adjust``, ``max_tokens``, ``temperature``, ``samples``,
    ``system_prompt``, ``few_shot``)."""
    config = RunConfig(model=backend if isinstance(backend, str) else backend.id, tests=tests,
                       drafts_per_nation=drafts_per_nation, seed=seed, n_boot=n_boot,
                       option_scoring=option_scoring,
                       record=None if isinstance(record, Record) or record is None
                       else str(record), items=str(items) if items else None, **settings)
    rec = record if isinstance(record, Record) else None if items else load_record(record)
    return run_evaluation(config, out_dir, backend=None if isinstance(backend, str) else backend,
                          record=rec)


def run_evaluation(config: RunConfig, out_dir: Path | None = None, *,
                   backend: Backend | None = None, options: BackendOptions | None = None,
                   record: Record | None = None, command_line: str | None = None,
                   items_file: ItemsFile | None = None) -> Evaluation:
    """``bias run``, the one entry point: build, answer and score every probe of ``config``,
    write the run folder into ``out_dir`` (unless None) and return the scores and answers.

    The backend ``config.model`` names is opened (``options``: executor, retries, cache, ...)
    and closed here, unless ``backend`` is given: a backend you hold (your own
    :class:`Backend` subclass included), used and left open. ``record``: the record already
    loaded; ``items_file``: ``config.items`` already read (:func:`read_items_file`); each is
    read here otherwise. The record folder and the cache file the config and ``options``
    name are checked, and ``out_dir`` claimed (:mod:`~transferscope.bias.preflight`), then the
    items file is read, all before any model is opened.
    """
    preflight.run(out_dir, record=config.record,
                  cache=options.cache if options is not None else None)
    if config.items and items_file is None:
        items_file = read_items_file(config.items)
    held = backend if backend is not None else open_backend(
        config.model, options or BackendOptions(), base_url=config.base_url,
        api_key_env=config.api_key_env, concurrency=config.concurrency)
    try:
        scores, rows = _run(held, config, out_dir, record, command_line, items_file)
    finally:
        if backend is None:
            held.close()
    return Evaluation(scores=scores, stats=held.stats, out_dir=out_dir, answers=rows)

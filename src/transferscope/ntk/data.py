"""Labelled texts for the NTK part: built-in offline tasks and any CSV/JSONL a user gives.

Built-in tasks need no network: word-level sentiment from the human-rated word lists that the
``vadersentiment`` (VADER, mean of 10 raters on -4..4) and ``afinn`` (AFINN-en-165, -5..5)
packages ship. Our choices, since the source paper's are unknown: single lower-case alphabetic
words only (no emoticons, phrases or hyphenated forms); a VADER word counts when its mean rating
is at least 1.0 away from neutral, an AFINN word when its score is at least 2 away; the combined
task keeps the union and drops every word the two lexicons rate with opposite signs.

Sentence-level tasks from the UNSC record (``unsc-unanimous``, ``unsc-era``): an excerpt of each
resolution's text, labelled from the record (vote tally, year), shipped as
``ntk/unsc_sentences.jsonl.gz`` and built by :mod:`transferscope.ntk.unsc_build` from the files
the bias part ships (read as files, not imported). New built-in tasks are added with
:func:`register_task`.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from transferscope.core.errors import InputError, input_error
from transferscope.core.io import check_csv_layout, iter_jsonl

_WORD = re.compile(r"^[a-z]+$")
VADER_MIN_ABS_RATING = 1.0
AFINN_MIN_ABS_SCORE = 2


@dataclass(kw_only=True, frozen=True)
class LabeledTexts:
    """Texts with binary targets in {-1, +1}; ``class_names`` = (negative, positive) labels."""

    texts: tuple[str, ...]
    targets: np.ndarray
    class_names: tuple[str, str]
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def counts(self) -> dict[str, int]:
        """How many examples each class has (by class name)."""
        return {self.class_names[0]: int((self.targets < 0).sum()),
                self.class_names[1]: int((self.targets > 0).sum())}


# ---------------------------------------------------------------------------- lexicons
def _package_text(package: str, relative: str) -> str:
    try:
        return resources.files(package).joinpath(relative).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise InputError(f"built-in data: {package}/{relative} not found: expected the "
                         f"'{package}' package (a dependency of transferscope)") from exc


def vader_ratings() -> dict[str, float]:
    """Word -> mean human rating from VADER's lexicon, single alphabetic words only."""
    ratings = {}
    for line in _package_text("vaderSentiment", "vader_lexicon.txt").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and _WORD.match(fields[0]):
            ratings[fields[0]] = float(fields[1])
    return ratings


def afinn_scores() -> dict[str, int]:
    """Word -> integer valence from AFINN-en-165, single alphabetic words only."""
    scores = {}
    for line in _package_text("afinn", "data/AFINN-en-165.txt").splitlines():
        fields = line.split("\t")
        if len(fields) == 2 and _WORD.match(fields[0]):
            scores[fields[0]] = int(fields[1])
    return scores


def _polar(ratings: Mapping[str, float], threshold: float) -> dict[str, int]:
    return {w: (1 if v > 0 else -1) for w, v in ratings.items() if abs(v) >= threshold}


def _lexicon_task(words: dict[str, int], source: str) -> LabeledTexts:
    ordered = sorted(words)
    return LabeledTexts(texts=tuple(ordered),
                        targets=np.array([float(words[w]) for w in ordered]),
                        class_names=("negative", "positive"), source=source)


def vader_words() -> LabeledTexts:
    return _lexicon_task(_polar(vader_ratings(), VADER_MIN_ABS_RATING), "builtin:vader-words")


def afinn_words() -> LabeledTexts:
    return _lexicon_task(_polar(afinn_scores(), AFINN_MIN_ABS_SCORE), "builtin:afinn-words")


def sentiment_words() -> LabeledTexts:
    """Union of the polar VADER and AFINN words, minus any word the two rate with opposite
    signs (also when one of the two ratings is too weak to make the word polar there)."""
    vader_raw, afinn_raw = vader_ratings(), afinn_scores()
    merged = {**_polar(vader_raw, VADER_MIN_ABS_RATING), **_polar(afinn_raw, AFINN_MIN_ABS_SCORE)}
    for word in set(vader_raw) & set(afinn_raw):
        if vader_raw[word] * afinn_raw[word] < 0:
            merged.pop(word, None)
    return _lexicon_task(merged, "builtin:sentiment-words")


# ---------------------------------------------------------------------------- UNSC record
UNSC_FILE = "unsc_sentences.jsonl.gz"


def _unsc_rows() -> list[dict]:
    raw = resources.files("transferscope.ntk").joinpath(UNSC_FILE).read_bytes()
    return [json.loads(line) for line in gzip.decompress(raw).decode("utf-8").splitlines()]


def _unsc_task(field: str, names: tuple[str, str]) -> LabeledTexts:
    rows = [r for r in _unsc_rows() if r[field] is not None]
    return LabeledTexts(texts=tuple(r["text"] for r in rows),
                        targets=np.array([1.0 if r[field] else -1.0 for r in rows]),
                        class_names=names,
                        source=f"builtin:unsc-{field}")


def unsc_unanimous() -> LabeledTexts:
    """Resolution excerpts; positive = adopted with no vote against and no abstention."""
    return _unsc_task("unanimous", ("contested", "unanimous"))


def unsc_era() -> LabeledTexts:
    """Resolution excerpts; positive = adopted in 1990 or later (after the Cold War)."""
    return _unsc_task("post_cold_war", ("before 1990", "1990 or later"))


# ---------------------------------------------------------------------------- subjectivity
SUBJECTIVITY_FILE = "subjectivity_glosses.jsonl.gz"


def subjectivity_glosses() -> LabeledTexts:
    """WordNet glosses of word senses from Pattern's hand-tagged subjectivity lexicon (via the
    TextBlob wheel); positive = a subjective sense (score >= 0.6), negative = an objective one
    (<= 0.2). Built by :mod:`transferscope.ntk.subjectivity_build`."""
    raw = resources.files("transferscope.ntk").joinpath(SUBJECTIVITY_FILE).read_bytes()
    rows = [json.loads(line) for line in gzip.decompress(raw).decode("utf-8").splitlines()]
    return LabeledTexts(texts=tuple(r["text"] for r in rows),
                        targets=np.array([1.0 if r["subjective"] else -1.0 for r in rows]),
                        class_names=("objective", "subjective"),
                        source="builtin:subjectivity-glosses")


# ---------------------------------------------------------------------------- registry
@dataclass(kw_only=True, frozen=True)
class BuiltinTask:
    """A named offline task with the prompt it was designed for."""

    name: str
    description: str
    template: str
    label_words: tuple[str, str]  # (positive word, negative word), as the CLI takes them
    load: Callable[[], LabeledTexts]


TASKS: dict[str, BuiltinTask] = {}


def register_task(task: BuiltinTask) -> None:
    """Add a built-in task (names are unique)."""
    if task.name in TASKS:
        raise input_error("register_task", "name", task.name, "a name not registered yet")
    TASKS[task.name] = task


def get_task(name: str) -> BuiltinTask:
    if name not in TASKS:
        raise input_error("--task", "name", name, f"one of {', '.join(sorted(TASKS))}")
    return TASKS[name]


_WORD_TEMPLATE = 'Is the word "{text}" positive or negative? Answer:'
for _name, _desc, _loader in (
    ("sentiment-words", "polar words rated by humans in VADER and AFINN (agreeing sign)",
     sentiment_words),
    ("vader-words", "polar words of the VADER lexicon (|mean rating| >= 1)", vader_words),
    ("afinn-words", "polar words of AFINN-en-165 (|score| >= 2)", afinn_words),
):
    register_task(BuiltinTask(name=_name, description=_desc, template=_WORD_TEMPLATE,
                              label_words=("positive", "negative"), load=_loader))
register_task(BuiltinTask(
    name="unsc-unanimous",
    description="UNSC resolution excerpts: adopted unanimously vs with abstentions or "
    "votes against (label from the recorded tally)",
    template='UN Security Council resolution: "{text}" Was this resolution adopted unanimously? '
    "Answer:", label_words=("Yes", "No"), load=unsc_unanimous))
register_task(BuiltinTask(
    name="unsc-era",
    description="UNSC resolution excerpts: adopted in 1990 or later vs before (label from the "
    "recorded year; digits removed from the text)",
    template='UN Security Council resolution: "{text}" Was this resolution adopted after the Cold '
    "War? Answer:", label_words=("Yes", "No"), load=unsc_era))
register_task(BuiltinTask(
    name="subjectivity-glosses",
    description="WordNet glosses of word senses: subjective vs objective sense "
    "(hand-tagged scores of Pattern's subjectivity lexicon, shipped in the TextBlob wheel)",
    template='Definition: "{text}". Is this a matter of opinion? Answer:',
    label_words=("Yes", "No"),
    load=subjectivity_glosses))


# ---------------------------------------------------------------------------- user files
_KNOWN_PAIRS = ({"negative", "positive"}, {"neg", "pos"}, {"no", "yes"}, {"false", "true"},
                {"0", "1"}, {"-1", "1"}, {"0.0", "1.0"}, {"-1.0", "1.0"})
_POSITIVE_NAMES = {"positive", "pos", "yes", "true", "1", "1.0"}


def _label_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _read_rows(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for number, row in iter_jsonl(path, "labelled texts"):  # bounded, strict JSON
            if not isinstance(row, dict):
                raise input_error(str(path), f"line {number}", row, "a JSON object")
            rows.append(row)
        return rows
    if suffix in (".csv", ".tsv"):
        import pandas as pd

        check_csv_layout(path, "\t" if suffix == ".tsv" else ",")
        try:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=object,
                                keep_default_na=True)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot parse as {suffix[1:].upper()} ({exc})") from exc
        except pd.errors.EmptyDataError as exc:
            raise InputError(f"{path}: empty file: expected a header row and data") from exc
        return frame.to_dict(orient="records")
    raise input_error(str(path), "file type", path.suffix or "(none)",
                      ".csv, .tsv or .jsonl")


def load_labeled_file(path: str | Path, text_col: str = "text", label_col: str = "label",
                      positive_label: str | None = None) -> LabeledTexts:
    """Read a CSV/TSV/JSONL of texts and binary labels; every problem is one clear error line.

    The positive class is ``positive_label`` if given, else read off a familiar pair of labels
    (1/0, 1/-1, true/false, yes/no, pos/neg, positive/negative); other pairs must name it.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"--data {file}: no such file: expected an existing CSV, TSV or "
                         "JSONL file")
    rows = _read_rows(file)
    if not rows:
        raise InputError(f"{file}: no data rows: expected at least two labelled examples")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    for flag, col in (("--text-col", text_col), ("--label-col", label_col)):
        if col not in columns:
            raise input_error(str(file), flag, col, f"one of its columns {columns[:12]}")
    texts, labels = [], []
    for number, row in enumerate(rows, start=1):
        text, label = row.get(text_col), row.get(label_col)
        if _is_missing(label):
            missing = sum(_is_missing(r.get(label_col)) for r in rows)
            raise InputError(f"{file}: row {number}: column '{label_col}' is empty "
                             f"({missing} of {len(rows)} rows lack a label): expected a "
                             "label on every row")
        if _is_missing(text):
            raise InputError(f"{file}: row {number}: column '{text_col}' is empty: expected "
                             "a text on every row")
        texts.append(str(text))
        labels.append(_label_text(label))
    distinct = sorted(set(labels))
    if len(distinct) != 2:
        raise InputError(f"{file}: column '{label_col}' has {len(distinct)} distinct labels "
                         f"{distinct[:6]}: expected exactly two (a binary task)")
    positive = _positive_class(file, label_col, distinct, positive_label)
    negative = distinct[0] if distinct[1] == positive else distinct[1]
    targets = np.array([1.0 if lab == positive else -1.0 for lab in labels])
    return LabeledTexts(texts=tuple(texts), targets=targets, class_names=(negative, positive),
                        source=f"file:{file}")


def _positive_class(file: Path, label_col: str, distinct: list[str],
                    positive_label: str | None) -> str:
    if positive_label is not None:
        wanted = _label_text(positive_label)
        if wanted not in distinct:
            raise input_error(str(file), "--positive-label", positive_label,
                              f"one of the labels in column '{label_col}': {distinct}")
        return wanted
    if {d.lower() for d in distinct} in _KNOWN_PAIRS:
        return next(d for d in distinct if d.lower() in _POSITIVE_NAMES)
    raise InputError(f"{file}: column '{label_col}' has labels {distinct}: cannot tell which "
                     "is positive; pass --positive-label")


# ---------------------------------------------------------------------------- sampling
def sample_examples(data: LabeledTexts, n: int, seed: int = 0,
                    balanced: bool = True) -> LabeledTexts:
    """``n`` examples drawn without replacement with a seeded generator, shuffled.

    Balanced: ``n // 2`` negatives and ``n - n // 2`` positives (the data must have them).
    """
    if n < 2:
        raise input_error("--n", "n", n, "at least 2 examples")
    if n > len(data):
        raise input_error("--n", "n", n, f"at most {len(data)} (the size of {data.source})")
    rng = np.random.default_rng(seed)
    if balanced:
        neg_idx = np.flatnonzero(data.targets < 0)
        pos_idx = np.flatnonzero(data.targets > 0)
        want_neg, want_pos = n // 2, n - n // 2
        if want_neg > neg_idx.size or want_pos > pos_idx.size:
            raise InputError(
                f"--n = {n}: a balanced sample needs {want_pos} {data.class_names[1]} and "
                f"{want_neg} {data.class_names[0]} examples but {data.source} has "
                f"{pos_idx.size} and {neg_idx.size}: expected a smaller n")
        chosen = np.concatenate([rng.choice(neg_idx, want_neg, replace=False),
                                 rng.choice(pos_idx, want_pos, replace=False)])
    else:
        chosen = rng.choice(len(data), n, replace=False)
    chosen = rng.permutation(chosen)
    return LabeledTexts(texts=tuple(data.texts[i] for i in chosen),
                        targets=data.targets[chosen].copy(),
                        class_names=data.class_names, source=data.source)


def balanced_capacity(data: LabeledTexts) -> int:
    """The largest balanced sample ``data`` holds: twice the size of its smaller class."""
    return 2 * int(min(np.sum(data.targets < 0), np.sum(data.targets > 0)))


def fit_sizes(capacity: int, train: int, test: int) -> tuple[int, int]:
    """Default ``(train, test)`` sizes, shrunk in proportion when a balanced sample of
    ``train + test`` does not fit in ``capacity`` examples (a small user file), so a default
    never asks for more rows than the file has. Sizes the user sets are not passed here."""
    if train + test <= capacity:
        return train, test
    if capacity < 8:
        raise input_error("--data", "balanced examples", capacity,
                          "at least 8 (4 of each class) to train and hold out")
    test_fit = max(4, capacity * test // (train + test))
    return capacity - test_fit, test_fit


# ---------------------------------------------------------------------------- derived tasks
# Registered here, with the others, so that every task name is known whichever module a
# caller imports first (the task-vector experiment uses them; the command line lists them).
NEGATED_TASK = "negated-vader-words"
NEGATED_AFINN_TASK = "negated-afinn-words"


def negated(words: LabeledTexts, name: str) -> LabeledTexts:
    """Each word preceded by "not", its label flipped."""
    return LabeledTexts(texts=tuple(f"not {w}" for w in words.texts), targets=-words.targets,
                        class_names=words.class_names, source=f"derived:not+{name}")


def negated_vader_words() -> LabeledTexts:
    return negated(vader_words(), "vader-words")


def negated_afinn_words() -> LabeledTexts:
    return negated(afinn_words(), "afinn-words")


for _name, _lexicon, _loader in ((NEGATED_TASK, "VADER", negated_vader_words),
                                 (NEGATED_AFINN_TASK, "AFINN", negated_afinn_words)):
    register_task(BuiltinTask(name=_name,
                              description=f"{_lexicon} words after 'not', polarity flipped",
                              template='Is "{text}" positive or negative? Answer:',
                              label_words=("positive", "negative"), load=_loader))

TASK_VECTOR_DEFAULTS = ("vader-words", "afinn-words", NEGATED_TASK)

"""A test whose items come from a user's file (``--items``), scored within drafts where the file
says which items share a draft.

Vote items may be about any country and may have an abstention as gold. With a ``draft`` (or
``draft_id``) column, the five permanent members present are compared within each draft as
the record's items are (:func:`~transferscope.bias.scoring.within_draft_rows`: the headline,
the median same-gold difference against the other members; the bootstrap resamples drafts).
Without one, nothing says which items share a draft, so the headline is an **across-item
contrast**, labelled so (:data:`~transferscope.bias.scoring.ACROSS_ITEMS`): ``B = U - F``
(U: against or abstain where the gold is in favour; F: in favour where it is against) minus
the median of the other members' ``B``, resampling items; it depends on which items each
nation has. Every country (members and others) also gets its own rows: B, U, F, abstention
rate, abstention recall (abstain where the gold is abstain), accuracy and macro-F1 over the
three gold answers; gold abstentions are kept and counted.

DirectQA items from a file ("did <member> vote in favour?") are scored by :class:`DirectQA`
within drafts, and need the draft column: without it their headline cells are empty and say
why. Adoption and co-author items (UNBench tasks 3 and 1; tests only a file can hold) are
scored against the recorded outcome (:mod:`~transferscope.bias.probes.outcomes`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferscope.bias.data.members import P5
from transferscope.bias.data.record import Record
from transferscope.bias.probes.base import Answer, Item, Probe
from transferscope.bias.probes.directqa import DirectQA
from transferscope.bias.probes.outcomes import (
    OUTCOME_TESTS,
    adoption_rows,
    coauthor_rows,
    outcome_judgements,
)
from transferscope.bias.probes.registry import PROBES
from transferscope.bias.probes.vote import vote_judgements, vote_metric_rows
from transferscope.bias.scoring import (
    ACROSS_ITEMS,
    MIN_DRAFTS,
    Metric,
    add_flag,
    cluster_metric_rows,
    vote_metric_set,
    vote_sums,
    within_draft_rows,
)
from transferscope.core.errors import InputError

SECONDARY = ("B", "U", "F", "abstain rate", "abstain recall", "accuracy", "macro_f1")
MIN_MEMBER_ITEMS = MIN_DRAFTS  # a member's own rows: the same floor as a headline cell
NO_SHARED_DRAFT = ("no draft where another permanent member's vote is asked too: nations "
                   "cannot be compared within drafts")
NO_DRAFT = "needs a draft column (no items share a draft, so nations cannot be compared)"


class FileProbe(Probe):
    """The items of one test read from a file (``build_items`` returns them as they are)."""

    def __init__(self, test: str, items: list[Item]):
        self.name = test
        self.description = f"{test} items from a file"
        self.items = list(items)

    def build_items(self, record: Record, drafts_per_nation: int | None, seed: int
                    ) -> list[Item]:
        return list(self.items)

    def judgements(self, items: list[Item], answers: dict[str, Answer]
                   ) -> dict[str, pd.DataFrame]:
        if self.name == "directqa":
            return DirectQA().judgements(items, answers)
        if self.name in OUTCOME_TESTS:
            return {form: outcome_judgements([i for i in items if i.form == form], answers)
                    for form in dict.fromkeys(i.form for i in items)}
        return {form: vote_judgements([i for i in items if i.form == form], answers)
                for form in dict.fromkeys(i.form for i in items)}

    def score(self, items: list[Item], answers: dict[str, Answer], n_boot: int,
              seed: int) -> pd.DataFrame:
        if self.name in OUTCOME_TESTS:
            rows = (adoption_rows if self.name == "adoption" else coauthor_rows)(
                items, answers, n_boot, seed)
            return rows.assign(p=np.nan)  # descriptive: no p-value, never a claim
        within = any(i.draft is not None for i in items)
        if self.name == "directqa":
            out = DirectQA().score(items, answers, n_boot, seed)
            if not within:
                head = out["headline"].astype(bool)
                out.loc[head, ["value", "ci_low", "ci_high", "p"]] = np.nan
                out.loc[head, "flag"] = NO_DRAFT
            return out
        unparsed = self.unparsed(items, answers)
        parts = []
        for form, judged in self.judgements(items, answers).items():
            nations = list(dict.fromkeys(str(i.nation) for i in items if i.form == form))
            members = tuple(n for n in P5 if n in nations)
            rows = [vote_metric_rows(judged, nations, n_boot, seed, SECONDARY)]
            if members:  # the headline contrasts permanent members; a file may have none
                rows.insert(0, within_draft_rows(judged, members, n_boot, seed) if within
                            else across_item_rows(judged, members, n_boot, seed))
            part = pd.concat(rows, ignore_index=True)
            if members and within:
                part = _say_no_shared_draft(part)
            part = _flag_small_members(part)
            part["form"] = form
            part["n_unparsed"] = [unparsed.get((form, n), 0) for n in part["nation"]]
            parts.append(part)
        out = pd.concat(parts, ignore_index=True)
        out["test"] = self.name
        return out


def _say_no_shared_draft(part: pd.DataFrame) -> pd.DataFrame:
    """A headline cell with no draft compared says why in words: no draft where another
    member's vote is asked too (UNBench's task 2 sample asks one member per draft)."""
    empty = part["headline"].astype(bool) & (part["n_items"] == 0)
    part.loc[empty, "flag"] = NO_SHARED_DRAFT
    return part


def _flag_small_members(part: pd.DataFrame) -> pd.DataFrame:
    """Every country other than the five is scored on its own items: flag its rows where
    they rest on fewer than :data:`MIN_MEMBER_ITEMS` items; a metric with answers but no
    value (no gold it is defined on) says so instead of "no parsed answers"."""
    undefined = ~part["headline"].astype(bool) & (part["n_items"] > 0) & (
        part["flag"] == "no parsed answers")
    part.loc[undefined, "flag"] = "undefined on these items (B and F need a gold against)"
    small = ~part["nation"].isin(P5) & (part["n_items"] < MIN_MEMBER_ITEMS)
    part.loc[small, "flag"] = [
        add_flag(str(f) if isinstance(f, str) else "",
                 f"small n ({n} < {MIN_MEMBER_ITEMS} items)")
        for f, n in zip(part.loc[small, "flag"], part.loc[small, "n_items"], strict=True)]
    return part


def across_item_rows(judged: pd.DataFrame, members: tuple[str, ...], n_boot: int, seed: int
                     ) -> pd.DataFrame:
    """The across-item headline of a file without drafts: per member ``B`` minus the median
    of the other members' ``B``, every item its own unit of the bootstrap."""
    units = sorted(dict.fromkeys(judged["draft"].astype(str)))
    sums = vote_sums(judged, units, members)
    b = vote_metric_set(("B",))["B"][0]

    def centred(total: np.ndarray) -> np.ndarray:
        values = b(total)
        out = np.full(values.shape, np.nan)
        for m in range(values.shape[-1]):
            others = np.delete(values, m, axis=-1)
            has = np.isfinite(others).any(axis=-1)
            out[has, m] = values[has, m] - np.nanmedian(others[has], axis=-1)
        return out

    metric: Metric = centred
    rows = cluster_metric_rows(sums, {ACROSS_ITEMS: (metric, (-2.0, 2.0))}, members,
                               sums.sum(axis=(0, 2)).astype(int), n_boot, seed)
    rows["headline"] = True
    rows["flag"] = [f or "across items, not within drafts (the file has no draft column)"
                    for f in rows["flag"]]
    return rows


def file_test_names(spec: str) -> list[str]:
    """The tests ``--tests`` names for a run on an items file: the record's tests and the
    tests only a file holds (:data:`~transferscope.bias.probes.outcomes.OUTCOME_TESTS`), each
    once; an unknown name is one error."""
    names = [n.strip().lower() for n in spec.split(",") if n.strip()]
    known = (*PROBES, *OUTCOME_TESTS)
    for name in names:
        if name not in known:
            raise InputError(f"--tests: test name = {name!r}: expected one of "
                             f"{', '.join(known)} (with --items)")
    if not names:
        raise InputError(f"--tests = {spec!r}: expected a comma-separated list of "
                         f"{', '.join(known)}")
    return list(dict.fromkeys(names))


def file_probes(items: list[Item], tests: list[str]) -> list[Probe]:
    """One :class:`FileProbe` per requested test that has items in the file."""
    return [FileProbe(t, [i for i in items if i.test == t]) for t in tests
            if any(i.test == t for i in items)]

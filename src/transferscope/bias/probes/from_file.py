"""A test whose items come from a user's file (``--items``), scored three-way for votes.

DirectQA items from a file are about permanent members and are scored by :class:`DirectQA`.
Vote items may be about any country and may have an abstention as gold, so they are scored
here: per form and nation, ``U`` (against or abstain where the gold is in favour), ``F`` (in
favour where the gold is against), ``B = U - F``, accuracy and macro-F1 over all three gold
answers, the abstention rate, and ``abstain recall`` (abstain where the gold is abstain).
Gold abstentions are kept: they count in ``n_items``, accuracy, macro-F1 and the recall. The
headline ``B - mean(B)`` is centred over the permanent members present; every other country
gets its own uncentred rows (``headline`` false), reported apart from the five.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferscope.bias.data.members import P5
from transferscope.bias.data.record import Record
from transferscope.bias.probes.base import Answer, Item, Probe
from transferscope.bias.probes.directqa import DirectQA
from transferscope.bias.scoring import (
    VOTE_LABELS,
    bootstrap_groups,
    interval_flag,
    vote_metrics,
)

VOTE_METRICS = ("B - mean(B)", "B", "U", "F", "abstain rate", "abstain recall", "accuracy",
                "macro_f1")


class FileProbe(Probe):
    """The items of one test read from a file (``build_items`` returns them as they are)."""

    def __init__(self, test: str, items: list[Item]):
        self.name = test
        self.description = f"{test} items from a file"
        self.items = list(items)

    def build_items(self, record: Record, limit: int | None, seed: int) -> list[Item]:
        return list(self.items)

    def score(self, items: list[Item], answers: dict[str, Answer], n_boot: int,
              seed: int) -> pd.DataFrame:
        if self.name == "directqa":
            return DirectQA().score(items, answers, n_boot, seed)
        parts = [three_way_vote_scores([i for i in items if i.form == form], answers, n_boot,
                                       seed).assign(form=form)
                 for form in dict.fromkeys(i.form for i in items)]
        out = pd.concat(parts, ignore_index=True)
        out["test"] = self.name
        return out


def three_way_vote_scores(items: list[Item], answers: dict[str, Answer], n_boot: int,
                          seed: int) -> pd.DataFrame:
    """Per nation: the vote metrics with bootstrap CIs (strata: gold answer within nation)."""
    nations = list(dict.fromkeys(str(i.nation) for i in items))
    groups: dict[str, list[np.ndarray]] = {}
    unparsed = dict.fromkeys(nations, 0)
    for nation in nations:
        preds: dict[str, list[str]] = {label: [] for label in VOTE_LABELS}
        for item in (i for i in items if i.nation == nation):
            answer = answers.get(item.item_id)
            if answer is None or answer.choice is None:
                unparsed[nation] += 1
            else:
                preds[item.gold].append(str(answer.choice).lower())
        groups[nation] = [np.array(preds[label], object) for label in VOTE_LABELS]
    p5 = [n for n in nations if n in P5]

    def metrics(s: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
        out = {}
        for nation, strata in s.items():
            gold = np.concatenate([np.full(len(a), label, object)
                                   for label, a in zip(VOTE_LABELS, strata, strict=True)])
            pred = np.concatenate(strata) if gold.size else np.array([], object)
            m = vote_metrics(gold, pred)
            abstain = strata[2]
            m["abstain recall"] = float((abstain == "abstain").mean()) if abstain.size \
                else float("nan")
            out[nation] = m
        b = [out[n]["B"] for n in p5 if np.isfinite(out[n]["B"])]
        for n in p5:
            out[n]["B - mean(B)"] = out[n]["B"] - float(np.mean(b)) if b else float("nan")
        return out

    rows = []
    for metric in VOTE_METRICS:
        def stat(s: dict[str, list[np.ndarray]], metric: str = metric) -> dict[str, float]:
            return {n: m.get(metric, float("nan")) for n, m in metrics(s).items()}

        values = stat(groups)
        cis = bootstrap_groups(groups, stat, n_boot, seed)
        for nation in nations:
            if metric == "B - mean(B)" and nation not in P5:
                continue  # other countries are not centred with the five
            n = int(sum(len(a) for a in groups[nation]))
            rows.append({"nation": nation, "metric": metric, "value": values[nation],
                         "ci_low": cis[nation][0], "ci_high": cis[nation][1], "n_items": n,
                         "n_unparsed": unparsed[nation], "headline": metric == "B - mean(B)",
                         "flag": _flag(metric, values[nation], cis[nation], n)})
    return pd.DataFrame(rows)


NEEDS = {"B - mean(B)": "gold in favour and against", "B": "gold in favour and against",
         "U": "gold in favour", "F": "gold against", "abstain recall": "gold abstain"}


def _flag(metric: str, value: float, ci: tuple[float, float], n: int) -> str:
    """:func:`interval_flag`, saying why a metric is undefined where ``n`` answers parsed."""
    flag = interval_flag(value, ci, n)
    if n and not np.isfinite(value) and metric in NEEDS:
        flag = flag.replace("no parsed answers", f"undefined (needs parsed answers on "
                            f"{NEEDS[metric]})")
    return flag


def file_probes(items: list[Item], tests: list[str]) -> list[Probe]:
    """One :class:`FileProbe` per requested test that has items in the file."""
    return [FileProbe(t, [i for i in items if i.test == t]) for t in tests
            if any(i.test == t for i in items)]

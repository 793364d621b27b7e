"""How far the wording of a draft alone gives its outcome away (the data card's leak check).

A probe asks "how did X vote on <date, meeting, agenda>?": if the agenda's words alone told
vetoed drafts from adopted ones, a model could score well, or show "bias", by reading the
wording, not by knowing the record. :func:`outcome_separability` measures that leak as a
cross-validated AUC of a text-only classifier (TF-IDF of word 1-2 grams + logistic regression,
out-of-fold scores of a stratified 5-fold split that keeps identical wordings in one fold; ours) and of the wording's length alone, each with a
95% bootstrap CI over drafts. Date and meeting are left out (they are in every prompt in the
same form), and so is the nation asked about: the text is the agenda item only. AUC 0.5 is no
leak; the data card's target is <= 0.6.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from transferscope.core.errors import InputError
from transferscope.core.stats import stratified_bootstrap

FOLDS = 5


@dataclass(kw_only=True, frozen=True)
class Separability:
    """AUCs (with 95% bootstrap CIs) of telling vetoed from other drafts by wording alone."""

    n_vetoed: int
    n_other: int
    text_auc: float
    text_ci: tuple[float, float]
    length_auc: float
    length_ci: tuple[float, float]

    def describe(self) -> str:
        return (f"text-only AUC {self.text_auc:.3f} [{self.text_ci[0]:.3f}, "
                f"{self.text_ci[1]:.3f}], length alone {self.length_auc:.3f} "
                f"[{self.length_ci[0]:.3f}, {self.length_ci[1]:.3f}] "
                f"(n = {self.n_vetoed} vetoed + {self.n_other} other drafts)")


def _auc_ci(y: np.ndarray, score: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile 95% CI of the AUC, resampling vetoed and other drafts apart (both kept)."""
    pos, neg = score[y == 1], score[y == 0]

    def auc(sample: list[np.ndarray]) -> float:
        a, b = sample
        return float(roc_auc_score(np.r_[np.ones(len(a)), np.zeros(len(b))], np.r_[a, b]))

    draws = stratified_bootstrap([pos, neg], auc, n_boot, seed)
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return float(lo), float(hi)


def outcome_separability(texts: Sequence[str], vetoed: Sequence[bool], *, seed: int = 0,
                         n_boot: int = 1000, group_identical: bool = True) -> Separability:
    """Cross-validated text-only AUC and length-only AUC of ``vetoed`` from ``texts`` (one
    per distinct draft). Length is scored as it stands (longer = vetoed), not fitted.
    ``group_identical=False`` splits folds by draft alone (the plain stratified K-fold)."""
    y = np.asarray(vetoed, dtype=int)
    if len(texts) != len(y) or y.sum() < FOLDS or (1 - y).sum() < FOLDS:
        raise InputError(f"outcome separability: {int(y.sum())} vetoed and "
                         f"{int((1 - y).sum())} other drafts ({len(texts)} texts): expected "
                         f"one text per draft and at least {FOLDS} of each")
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          LogisticRegression(class_weight="balanced", max_iter=2000))
    # identical wordings share a fold: a matched control worded like its vetoed draft would
    # otherwise teach the held-out one the opposite label (an AUC far below 0.5)
    folds = StratifiedGroupKFold(FOLDS, shuffle=True, random_state=seed)
    groups = list(texts) if group_identical else list(range(len(y)))
    text_score = cross_val_predict(model, list(texts), y, groups=groups, cv=folds,
                                   method="predict_proba")[:, 1]
    length = np.array([len(t) for t in texts], dtype=float)
    return Separability(
        n_vetoed=int(y.sum()), n_other=int((1 - y).sum()),
        text_auc=float(roc_auc_score(y, text_score)),
        text_ci=_auc_ci(y, text_score, n_boot, seed),
        length_auc=float(roc_auc_score(y, length)),
        length_ci=_auc_ci(y, length, n_boot, seed))


def drafts_separability(drafts: pd.DataFrame, draft_ids: Sequence[str], *, seed: int = 0,
                        n_boot: int = 1000, group_identical: bool = True) -> Separability:
    """:func:`outcome_separability` on the agenda wording of the drafts a probe asks about
    (``draft_ids``, each counted once; vetoed against every other outcome)."""
    rows = drafts.set_index("draft_id").loc[list(dict.fromkeys(draft_ids))]
    return outcome_separability(rows["agenda_item"].astype(str).tolist(),
                                (rows["outcome"] == "vetoed").tolist(), seed=seed,
                                n_boot=n_boot, group_identical=group_identical)

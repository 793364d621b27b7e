"""The nation x test heat map puts each score, its CI, n and adjusted p in the right cell, and
shows no score where a cell rests on too few drafts."""

import matplotlib
import pandas as pd

from transferscope.bias.data.members import P5
from transferscope.bias.figures import heatmap_figure

matplotlib.use("Agg")


def _scores() -> pd.DataFrame:
    rows = []
    for k, nation in enumerate(P5):
        rows.append({"test": "directqa", "form": "which", "nation": nation, "metric": "bias",
                     "value": 0.1 * k, "ci_low": 0.1 * k - 0.05, "ci_high": 0.1 * k + 0.05,
                     "n_items": 24, "flag": "", "headline": True, "p_adj": 0.01 * (k + 1),
                     "claim": k == 3})
        rows.append({"test": "directqa", "form": "which", "nation": nation, "metric": "accuracy",
                     "value": 0.9, "ci_low": 0.8, "ci_high": 1.0, "n_items": 12, "flag": "",
                     "headline": False})
    rows.append({"test": "vote", "form": "role", "nation": "France", "metric": "bias",
                 "value": -0.25, "ci_low": -0.5, "ci_high": 0.0, "n_items": 4,
                 "flag": "too few drafts (n=4 < 20)", "headline": True, "p_adj": 0.5,
                 "claim": False})
    rows.append({"test": "vote", "form": "role", "nation": "Russia", "metric": "bias",
                 "value": 0.2, "ci_low": 0.1, "ci_high": 0.3, "n_items": 30,
                 "flag": "near ties (median top-two margin 0.20 < 0.5 nats)", "headline": True,
                 "p_adj": 0.04, "claim": False})
    return pd.DataFrame(rows)


def test_cells_hold_value_and_ci_at_their_nation_and_test():
    fig = heatmap_figure(_scores(), "model")
    ax = fig.axes[0]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}
    columns = [label.get_text().replace("\n", " ") for label in ax.get_xticklabels()]
    assert columns == ["directqa: which", "vote: role"]
    assert [label.get_text() for label in ax.get_yticklabels()] == list(P5)
    # row = nation index in P5, column 0 = directqa
    assert cells[(3, 0)] == "+0.30\n[+0.25, +0.35]\nn=24 p=0.04 *"
    assert cells[(1, 0)] == "+0.10\n[+0.05, +0.15]\nn=24 p=0.02"
    # a cell on too few drafts shows no score, only why and its n
    assert cells[(P5.index("France"), 1)] == "no score:\ntoo few drafts\nn=4"
    # a flagged cell shows its score with the mark
    assert cells[(P5.index("Russia"), 1)] == "+0.20\n[+0.10, +0.30]\nn=30 p=0.04 (!)"
    # a nation without a vote score is marked, never shown as zero
    assert cells[(P5.index("China"), 1)] == "no score"
    # secondary metrics (accuracy 0.9) never enter the map
    assert not any("0.90" in text for text in cells.values())

"""The nation x test heat map puts each score and its CI in the right cell."""

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
                     "n_items": 12, "flag": "", "headline": True})
        rows.append({"test": "directqa", "form": "which", "nation": nation, "metric": "accuracy",
                     "value": 0.9, "ci_low": 0.8, "ci_high": 1.0, "n_items": 12, "flag": "",
                     "headline": False})
    rows.append({"test": "vote", "form": "role", "nation": "France", "metric": "bias",
                 "value": -0.25, "ci_low": -0.5, "ci_high": 0.0, "n_items": 4,
                 "flag": "too few items (n=4 < 10)", "headline": True})
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
    assert cells[(3, 0)] == "+0.30\n[+0.25, +0.35]\nn=12"
    # a cell that cannot carry a claim shows its n and the mark
    assert cells[(P5.index("France"), 1)] == "-0.25\n[-0.50, +0.00]\nn=4 (!)"
    # a nation without a vote score is marked, never shown as zero
    assert cells[(P5.index("China"), 1)] == "no score"
    # secondary metrics (accuracy 0.9) never enter the map
    assert not any("0.90" in text for text in cells.values())

"""The NTK report: its closing findings must follow the numbers it is given.

Inputs are result files in the documented format with hand-set values, so the expected verdict
of each rule is known in advance (and flips when the numbers flip).
"""

from __future__ import annotations

import numpy as np
import pytest

from transferscope.core.errors import InputError
from transferscope.core.io import write_json
from transferscope.ntk.rates import fit_slope, sweep
from transferscope.ntk.report import build_report


def _finetune(t_hat: int, best: int) -> dict:
    steps = 6
    history = [{"step": t, "train_loss": 1.0 / (t + 1), "train_accuracy": 0.5,
                "test_loss": abs(t - best) + 0.1, "test_accuracy": 0.5} for t in range(steps + 1)]
    return {"n": 8, "n_test": 8, "params": "attention@last-1", "seed": 0, "loss": "half-mse",
            "learning_rate": 0.1, "step_size": 0.1, "lambda_max": 5.0, "sigma": 0.5,
            "radius": 1.0, "t_hat": t_hat, "rule": "cv", "rules": {"cv": t_hat, "rwy": 1},
            "best_step_real": best, "history": history,
            "resumed_from": 0, "seconds": 1.0, "source": "builtin:test", "best_step_linear": best,
            "regime_steps": 4, "regime_tolerance": 0.25,
            "relative_distance": [0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4],
            "linear_test_loss": [0.5] * (steps + 1), "linear_train_loss": [0.5] * (steps + 1)}


def _rates() -> dict:
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(48, 20)) * np.arange(1, 21) ** -1.0
    y = phi @ rng.normal(size=20) + 0.1 * rng.normal(size=48)
    frame = sweep(phi @ phi.T, np.zeros(48), y, 16, [8, 16, 32], [0, 1, 2], n_boot=10)
    return {"params": "p", "sizes": [8, 16, 32], "seeds": [0, 1, 2], "n_test": 16,
            "source": "synthetic", "pretrained": {"rows": frame.to_dict(orient="records"),
                                                  "slope": fit_slope(frame).__dict__}}


def _taskvec(r: float, low: float, high: float) -> dict:
    rows = [{"combination": c, "alphas": [1, 0], "task": "a <b>", "task_index": 0,
             "real_accuracy": 0.75, "linear_accuracy": 0.5, "real_loss": 0.3,
             "linear_loss": 0.4, "f0_accuracy": 0.5} for c in ("+t0", "+t1", "-t0")]
    return {"tasks": ["a <b>", "c"], "n_train": [4, 4], "n_test": [4, 4], "steps": 3,
            "learning_rate": 0.1, "params": "p", "seed": 0, "alignment": [[1, 0.2], [0.2, 1]],
            "combinations": rows,
            "pairs": [{"task": 0, "added": 1, "alignment": 0.2, "real_interference": 0.1,
                       "linear_interference": 0.05}],
            "correlation": {"r": r, "ci_low": low, "ci_high": high, "points": 6, "method": "m"}}


def _write(tmp_path, **parts) -> str:
    for name, obj in parts.items():
        write_json(tmp_path / f"{name}.json", obj)  # as the experiments write them
    build_report(tmp_path)
    return (tmp_path / "report.md").read_text()


def test_findings_follow_the_numbers(tmp_path):
    text = _write(tmp_path, finetune=_finetune(3, 5), rates=_rates(),
                  taskvec=_taskvec(0.8, 0.3, 0.95))
    assert "predicted T_hat = 3" in text and "agree within a factor of 2" in text
    assert "for 4 of 6 steps" in text and "broke down" in text
    assert "Kernel alignment goes with more interference (CI above 0): r = 0.800" in text
    assert "changed task k's held-out accuracy by +0.250" in text  # 0.5 -> 0.75
    assert "within 0.250 on average" in text  # |0.75 - 0.5|
    assert "error at T_hat fell with slope" in text
    html = (tmp_path / "index.html").read_text()
    assert "What held and what did not" in html and "a &lt;b&gt;" in html


def test_findings_flip_when_the_numbers_flip(tmp_path):
    text = _write(tmp_path, finetune=_finetune(1, 5), taskvec=_taskvec(0.1, -0.5, 0.7))
    assert "differ by more than a factor of 2" in text
    assert "does not predict interference at this sample size" in text


def test_empty_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no finetune.json"):
        build_report(tmp_path)


def test_t_hat_beyond_the_run_is_not_called_agreement(tmp_path):
    text = _write(tmp_path, finetune=_finetune(400, 6))
    assert "T_hat lies beyond the 6 steps run" in text
    assert "still falling at the end" in text and "agree within" not in text
    text = _write(tmp_path, finetune=_finetune(400, 2))
    assert "had already turned up after step 2" in text


def test_zero_step_counts_never_count_as_agreement():
    from transferscope.ntk.report import _within

    assert not _within(0, 0, 2)  # 0 vs 0: a short run that never moved says nothing
    assert not _within(0, 1, 2)
    assert _within(3, 6, 2) and not _within(3, 7, 2)


def test_long_horizon_optimum_is_reported_next_to_the_short_run(tmp_path):
    fine = _finetune(0, 0) | {"long_horizon": {
        "horizon": 10**7, "step_size": 0.1, "held_out_optimum": 2048, "held_out_mse_at_0": 0.8,
        "held_out_mse_at_optimum": 0.682, "share": {"cv": 0.0, "rwy": 0.25}, "what": "w"}}
    text = _write(tmp_path, finetune=fine)
    assert "kernel trajectory's held-out optimum is step 2048" in text
    assert "0.800 -> 0.682" in text and "captures 0.00 of that improvement" in text
    assert "Both say keep f_0 within this 6-step run" in text

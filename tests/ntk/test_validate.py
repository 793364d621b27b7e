"""``ntk validate``: the share-captured tables on planted truths and on the real SmolLM2 eNTK.

References: the planted target and noise (known by construction), the held-out optimum found
by iterating gradient descent step by step (not the closed form under test).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferscope.ntk.recommend import DEFAULT_RULE, RULES
from transferscope.ntk.rule_scores import BASELINES, held_out_truths, planted_truths, share_table


def test_default_rule_meets_the_goal_on_planted_synthetic_truths():
    # 4 spectra x 2 sigma x 2 R x 7 repeats = 112 problems. In 'ntk validate' the default
    # rule's median share is 0.98 (95% CI [0.96, 0.995]); for the median of 112 shares to fall
    # below 0.85, 56 of them would have to, where about 15% do: a binomial tail below 1e-15.
    outcomes = planted_truths(None, sizes=(64,), repeats=7, seed=11)
    assert len(outcomes) >= 100
    table = {row["rule"]: row for row in share_table(outcomes)}
    assert set(table) == {*RULES, "safe", "rwy-oracle", *BASELINES}
    assert table[DEFAULT_RULE]["median_share"] >= 0.85
    for row in table.values():  # a share is at most 1 up to the grid's interpolation
        assert row["median_share"] <= 1.0 + 1e-9
        assert row["median_excess"] >= -1e-9  # no stop beats the optimum


def test_new_columns_by_hand_on_a_tiny_pool_with_a_zero_optimum():
    """Excess risk, |log10|, within 2x and the range's coverage recomputed by hand for three
    curves, one whose optimum is step 0 (kept, not dropped as NaN)."""
    from types import SimpleNamespace

    from transferscope.ntk.rule_scores import choose_default, score

    grid = np.array([0, 1, 10, 100, 1000, 10000])
    curves = [np.array([1.0, 0.9, 0.5, 0.2, 0.6, 0.9]),  # optimum at 100
              np.array([1.0, 1.1, 1.3, 1.6, 2.0, 2.5]),  # optimum at 0: training only hurts
              np.array([2.0, 1.8, 1.0, 0.9, 0.8, 1.0])]  # optimum at 1000
    recs = [SimpleNamespace(steps_ci=(10, 1000), decided=True, safe_steps=100),
            SimpleNamespace(steps_ci=(0, 10), decided=True, safe_steps=1),
            SimpleNamespace(steps_ci=(1, 100), decided=False, safe_steps=1)]
    steps = [{"cv": 100, "cv-low": 10, "rwy": 1, "rwy-gcv": 1, "gcv-ridge": 10},
             {"cv": 1, "cv-low": 0, "rwy": 1, "rwy-gcv": 10, "gcv-ridge": 0},
             {"cv": 100, "cv-low": 1, "rwy": 1000, "rwy-gcv": 10, "gcv-ridge": 100}]
    outs = [score({"i": i}, c, grid, s, r)
            for i, (c, s, r) in enumerate(zip(curves, steps, recs, strict=True))]
    assert [o.t_opt for o in outs] == [100, 0, 1000]
    assert [o.covered for o in outs] == [True, True, False]
    # excess = (e(T) - e_opt) / max(e_0 - e_opt, 0.01 e_0)
    assert outs[0].excess["fixed-1000"] == pytest.approx((0.6 - 0.2) / 0.8)
    assert outs[1].excess["cv"] == pytest.approx((1.1 - 1.0) / 0.01)  # gain floored at 1% e_0
    assert outs[1].excess["cv-low"] == 0.0 and outs[2].excess["rwy"] == 0.0
    assert outs[2].log_ratio["cv"] == pytest.approx(abs(np.log10(101 / 1001)))
    assert outs[1].log_ratio["fixed-100"] == pytest.approx(np.log10(101))
    rows = {r["rule"]: r for r in share_table(outs)}
    assert rows["cv"]["problems"] == 3 and rows["cv"]["t_opt_zero"] == 1
    assert rows["cv"]["coverage"] == pytest.approx(2 / 3) and rows["rwy"]["coverage"] is None
    assert rows["cv"]["undecided"] == 1
    # within 2x: |log10((T+1)/(T_opt+1))| <= log10 2
    assert rows["cv"]["within_2x"] == pytest.approx(2 / 3)  # problem 1: (1+1)/(0+1) = 2
    assert rows["safe"]["median_steps"] == 1
    want = np.median([outs[0].excess["cv"], outs[1].excess["cv"], outs[2].excess["cv"]])
    assert rows["cv"]["median_excess"] == pytest.approx(want)
    rule, why = choose_default(outs)
    p90 = {r: np.quantile([o.excess[r] for o in outs], 0.9)
           for r in ("cv", "cv-low", "rwy", "rwy-gcv", "gcv-ridge")}
    assert p90[rule] == min(p90.values()) and "development" in why


def test_held_out_optimum_on_the_real_smollm2_kernel_matches_iterated_descent():
    from transferscope.ntk import data as ntk_data
    from transferscope.ntk.experiments.finetune import parameter_spec
    from transferscope.ntk.pipeline import DataSource, load_examples
    from transferscope.ntk.task import PromptTask

    examples = load_examples(DataSource())
    sample = ntk_data.sample_examples(examples.data, 48, 3)
    task = PromptTask(examples.template, list(examples.label_words), model="smollm2")
    texts = list(sample.texts)
    kernel = task.kernel(texts, parameter_spec(task, "attention@last-1"),
                         progress=False).kernel
    f0, y = task.outputs(texts).astype(float), sample.targets
    splits = held_out_truths(kernel, f0, y, (32,), splits=10, seed=0)
    assert len(splits) == 10 and all(s.setting["n_test"] == 16 for s in splits)
    planted = planted_truths({"smollm2 eNTK": kernel}, sizes=(32,), repeats=1)
    assert {p.setting["source"] for p in planted} >= {"smollm2 eNTK", "sobolev"}

    first = splits[0]
    train = np.array(first.setting["train"])
    test = np.setdiff1d(np.arange(48), train)
    n, lr = train.size, 1.0 / np.max(np.diag(kernel[np.ix_(train, train)]))
    c = np.zeros(n)  # dual coefficients of f_t - f_0, iterated step by step
    errors = []
    horizon = max(4 * first.t_opt, 200)
    for _ in range(horizon + 1):
        errors.append(np.mean((f0[test] + kernel[np.ix_(test, train)] @ c - y[test]) ** 2))
        c = c + lr / n * (y[train] - f0[train] - kernel[np.ix_(train, train)] @ c)
    errors = np.array(errors)
    # the log grid (ratio ~1.04) holds the optimum to within 4% of its step count, so the
    # error there is within a hair of the brute-force optimum's
    assert errors[min(first.t_opt, horizon)] == pytest.approx(errors.min(), rel=1e-3)
    for rule, t in first.steps.items():  # each rule's share, recomputed from the loop
        if t <= horizon:
            expected = (errors[0] - errors[t]) / (errors[0] - errors.min())
            assert first.shares[rule] == pytest.approx(expected, abs=0.02), rule


def test_real_curve_outcome_scores_rules_on_the_real_curve_and_flags_the_horizon():
    from transferscope.ntk.rule_scores import Outcome, real_curve_outcome

    steps = np.array([0, 1, 2, 4, 8, 16])
    errors = np.array([1.0, 0.8, 0.6, 0.5, 0.7, 0.9])  # optimum at step 4, then rising
    split = Outcome(setting={"n": 8, "split": 0, "n_test": 4, "train": [0, 1]}, t_opt=6,
                    steps={"a": 4, "b": 0, "c": 99}, shares={})
    out = real_curve_outcome(split, steps, errors, errors * 1.1, 2.0)
    assert out.t_opt == 4 and out.setting["reached"] and out.setting["horizon"] == 16
    assert out.shares["a"] == pytest.approx(1.0) and out.shares["b"] == pytest.approx(0.0)
    assert out.shares["c"] == pytest.approx((1.0 - 0.9) / 0.5)  # scored at the horizon
    assert out.setting["beyond_horizon"] == ["c"] and "train" not in out.setting
    assert out.setting["max_relative_gap"] == pytest.approx(0.1 / 1.1)  # at step 0: 1 vs 1.1
    falling = real_curve_outcome(split, steps, np.linspace(1, 0.5, 6), errors, 2.0)
    assert not falling.setting["reached"] and falling.t_opt == 16


def test_tail_training_is_fine_tuning_of_the_whole_model(tmp_path):
    """The frozen-prefix shortcut against the full model: f at theta_0 from the plain forward
    pass, and 3 steps of real gradient descent against finetune() (the whole model each step)."""
    from transferscope.ntk import data as ntk_data
    from transferscope.ntk.experiments import tail_training as tail
    from transferscope.ntk.experiments.finetune import TrainingConfig, finetune
    from transferscope.ntk.task import PromptTask

    task = PromptTask('Is the word "{text}" positive or negative? Answer:',
                      ["positive", "negative"], model="smollm2", device="cpu")
    sample = ntk_data.sample_examples(ntk_data.get_task("sentiment-words").load(), 14, 4)
    train = ntk_data.LabeledTexts(texts=sample.texts[:8], targets=sample.targets[:8],
                                  class_names=sample.class_names, source="t")
    test = ntk_data.LabeledTexts(texts=sample.texts[8:], targets=sample.targets[8:],
                                 class_names=sample.class_names, source="t")
    assert tail.trained_blocks(task, "attention@last-1") == 1
    assert tail.trained_blocks(task, "last-2") == 2
    k = 2
    inputs = tail.frozen_inputs(task, list(test.texts), k)
    with torch.no_grad():
        f = tail.tail_outputs(task, inputs, k).double().numpy()
    np.testing.assert_allclose(f, task.outputs(list(test.texts)), atol=2e-4)
    lr = 0.05
    run = tail.tail_gradient_descent(task, "last-2", train.texts, train.targets, test.texts,
                                     test.targets, lr, 3)
    full = finetune(task, train, test, TrainingConfig(params="last-2", steps=3,
                                                      learning_rate=lr), tmp_path)
    want_test = [2 * row["test_loss"] for row in full.history]
    want_train = [2 * row["train_loss"] for row in full.history]
    assert run.steps.tolist() == [0, 1, 2, 3] and run.blocks == 2
    np.testing.assert_allclose(run.test_errors, want_test, rtol=2e-4)
    np.testing.assert_allclose(run.train_errors, want_train, rtol=2e-4)
    assert want_test[3] != pytest.approx(want_test[0], rel=1e-3)  # the steps moved f
    np.testing.assert_allclose(task.outputs(list(test.texts)), f, atol=2e-4)  # restored
    with pytest.raises(ValueError, match="inside transformer blocks"):
        tail.trained_blocks(task, "head")


def test_real_finetuning_truths_run_to_twice_the_kernel_optimum(tmp_path):
    """Part (b, real) on a 20-word pool: the horizon is 2 x the kernel optimum within the
    profile's bounds, step 0 of the real curve is f_0's held-out error (plain forward pass),
    and each rule is scored on the real curve."""
    from dataclasses import replace

    from transferscope.ntk import data as ntk_data
    from transferscope.ntk.experiments.finetune import parameter_spec
    from transferscope.ntk.experiments.validate_run import (
        VALIDATION_PROFILES,
        real_finetuning_truths,
    )
    from transferscope.ntk.rule_scores import share_captured
    from transferscope.ntk.task import PromptTask

    task = PromptTask('Is the word "{text}" positive or negative? Answer:',
                      ["positive", "negative"], model="smollm2", device="cpu")
    sample = ntk_data.sample_examples(ntk_data.get_task("sentiment-words").load(), 20, 6)
    texts = list(sample.texts)
    kernel = task.kernel(texts, parameter_spec(task, "attention@last-1"), progress=False).kernel
    f0, y = task.outputs(texts), sample.targets.astype(float)
    held = held_out_truths(kernel, f0, y, (8,), splits=2, seed=0)
    prof = replace(VALIDATION_PROFILES["quick"], real_splits=1, real_max_steps=30)
    real = real_finetuning_truths(task, prof, sample, kernel, f0, y, held, progress=False)
    assert real["run"] and real["n"] == 8 and len(real["splits"]) == 1
    (one,) = real["splits"]
    st = held[0].setting
    assert one["setting"]["horizon"] == min(30, max(64, 2 * held[0].t_opt))
    test = np.setdiff1d(np.arange(20), st["train"])
    assert one["setting"]["errors"][0] == pytest.approx(np.mean((f0[test] - y[test]) ** 2),
                                                        rel=1e-4)
    assert one["setting"]["kernel_errors"][0] == pytest.approx(one["setting"]["errors"][0],
                                                               rel=1e-4)
    for rule, t in one["steps"].items():
        want = share_captured(np.array(one["setting"]["errors"]),
                              np.array(one["setting"]["steps"]), t)
        assert one["shares"][rule] == pytest.approx(want, nan_ok=True)
    assert real["overall"][0]["problems"] == 1

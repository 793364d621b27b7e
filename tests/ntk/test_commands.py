"""``transferscope ntk rates | taskvec | report`` end to end on SmolLM2, tiny sizes.

References are independent of the code under test: f_0 and per-example gradients from plain
transformers forward/backward passes on each unpadded prompt (kernel = J J^T), numpy's
least-squares slope, scipy's Pearson r, the centred alignment and gradient cosine computed by
hand from J, and the JSON files each report table was made from.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
import scipy.stats
import torch

from tests.cli_inprocess import invoke_cli as run_cli
from transferscope.ntk import data as ntk_data

PARAMS = "attention@last-1"


pytestmark = pytest.mark.usefixtures("linked_private_cache")


def last_block_attention(model) -> list[torch.Tensor]:
    """The parameters of ``attention@last-1``, picked by name here: q/k/v/o of the last layer."""
    last = max(int(m.group(1)) for name, _ in model.named_parameters()
               if (m := re.search(r"layers\.(\d+)\.", name)))
    return [p for name, p in model.named_parameters()
            if re.search(rf"layers\.{last}\.self_attn\.[qkvo]_proj\.", name)]


def plain_outputs_and_gradients(smollm2, task_name: str, texts, with_gradients: bool = True
                                ) -> tuple[np.ndarray, np.ndarray | None]:
    """f = logit(word+) - logit(word-) of each prompt alone, and its gradient over the last
    block's attention (rows of J), from plain transformers calls."""
    model, tokenizer = smollm2
    task = ntk_data.get_task(task_name)
    word_ids = [tokenizer.encode(" " + w, add_special_tokens=False)[0] for w in task.label_words]
    chosen = last_block_attention(model)
    outputs, rows = [], []
    for text in texts:
        enc = tokenizer(task.template.replace("{text}", text), return_tensors="pt")
        with torch.set_grad_enabled(with_gradients):
            logits = model(**enc).logits[0, -1]
            f = logits[word_ids[0]] - logits[word_ids[1]]
            if with_gradients:
                grads = torch.autograd.grad(f, chosen)
                rows.append(torch.cat([g.reshape(-1).double() for g in grads]))
        outputs.append(float(f.detach()))
    return np.array(outputs), (torch.stack(rows).numpy() if with_gradients else None)


def test_rates_command_rows_and_slope(smollm2, tmp_path, capsys):
    """Tiny sweep (pool 8, 4 held out, n in {4, 6}, 2 seeds): the held-out error of f_0 is the
    plain forward pass's, each subsample's lambda_max is the top eigenvalue of the brute-force
    J J^T / n on its examples, and the slope is numpy's fit of log error on log n."""
    out = tmp_path / "rates"
    code, _, err = run_cli(capsys, "ntk", "rates", "--out", str(out), "--params", PARAMS,
                           "--sizes", "4,6", "--seeds", "2", "--pool", "8", "--n-test", "4",
                           "--head-seed", "3")
    assert code == 0, err
    result = json.loads((out / "rates.json").read_text())
    assert result["sizes"] == [4, 6] and result["seeds"] == [0, 1]
    sample = ntk_data.sample_examples(ntk_data.get_task("sentiment-words").load(), 12, 0)
    f0, jacobian = plain_outputs_and_gradients(smollm2, "sentiment-words", sample.texts)
    kernel = jacobian @ jacobian.T
    y_test, f0_test = sample.targets[8:], f0[8:]
    for part in ("pretrained", "mixed"):
        rows = result[part]["rows"]
        assert sorted((r["n"], r["seed"]) for r in rows) == [(4, 0), (4, 1), (6, 0), (6, 1)]
        for row in rows:
            assert row["error_opt"] <= min(row["error_t_hat"], row["error_f0"]) + 1e-12
        n_log = np.log([r["n"] for r in rows])
        errors = np.log([r["error_t_hat"] for r in rows])
        assert result[part]["slope"]["slope"] == pytest.approx(np.polyfit(n_log, errors, 1)[0],
                                                               rel=1e-9, abs=1e-12)
        # n <= 8: fewer than 8 eigenvalues past the first, so no decay rate is fitted (#27)
        assert all(r["alpha"] is None for r in rows)
        assert result[part]["slope"]["implied"] is None
    for row in result["pretrained"]["rows"]:
        assert row["error_f0"] == pytest.approx(np.mean((f0_test - y_test) ** 2), rel=1e-4)
        train = np.sort(np.random.default_rng(row["seed"]).permutation(8)[:row["n"]])
        top = np.linalg.eigvalsh(kernel[np.ix_(train, train)] / row["n"]).max()
        assert row["lambda_max"] == pytest.approx(top, rel=1e-4)
    assert 0 < result["mixed_head_share"] < 1 and result["mixed_head_seed"] == 3
    assert "slope" in err
    # the library's entry point with the same settings: the same file, value for value
    from transferscope import ntk

    done = ntk.run_rates(ntk.RatesConfig(out=tmp_path / "library", options=ntk.RatesOptions(
        params=PARAMS, sizes=(4, 6), seeds=2, pool=8, n_test=4, head_seed=3)), progress=False)
    assert json.loads(done.json_path.read_text()) == result
    assert done.slope["slope"] == result["pretrained"]["slope"]["slope"]
    assert done.implied_slope is None  # no rate fitted (NaN in the result, null in the file)


def centred_alignment_by_hand(kernel: np.ndarray, sizes: list[int]) -> np.ndarray:
    """CKA of each pair of consecutive blocks: the kernel centred over all of them."""
    n = kernel.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    centred = h @ kernel @ h
    edges = np.cumsum([0, *sizes])
    blocks = [slice(edges[i], edges[i + 1]) for i in range(len(sizes))]
    out = np.ones((len(sizes), len(sizes)))
    for j, bj in enumerate(blocks):
        for k, bk in enumerate(blocks):
            if j != k:
                out[j, k] = np.linalg.norm(centred[bj, bk]) / np.sqrt(
                    np.linalg.norm(centred[bj, bj]) * np.linalg.norm(centred[bk, bk]))
    return out


def test_taskvec_command_alignments_and_correlations(smollm2, tmp_path, capsys):
    """Three built-in tasks, 3 training + 2 held-out words each, one step: the raw and centred
    alignments and the gradient cosine are those computed by hand from the brute-force
    gradients of the training words, f_0's held-out accuracy is the plain forward pass's,
    interference is the difference of the reported losses, each r is scipy's Pearson r."""
    from transferscope.ntk.experiments.taskvectors import task_splits

    tasks = ["vader-words", "afinn-words", "negated-vader-words"]
    out = tmp_path / "tv"
    code, _, err = run_cli(capsys, "ntk", "taskvec", "--out", str(out), "--tasks",
                           ",".join(tasks), "--params", PARAMS, "--n-train", "3", "--n-test",
                           "2", "--steps", "1", "--seed", "0")
    assert code == 0, err
    result = json.loads((out / "taskvec.json").read_text())
    assert result["tasks"] == tasks
    splits = task_splits(tasks, 3, 2, 0)
    train_texts = [t for s in splits for t in s.train.texts]
    f0, jacobian = plain_outputs_and_gradients(smollm2, tasks[0], train_texts)
    kernel = jacobian @ jacobian.T
    norms = [np.linalg.norm(kernel[3 * j:3 * j + 3, 3 * j:3 * j + 3]) for j in range(3)]
    raw = np.array([[1.0 if j == k else np.linalg.norm(kernel[3 * j:3 * j + 3, 3 * k:3 * k + 3])
                     / np.sqrt(norms[j] * norms[k]) for k in range(3)] for j in range(3)])
    np.testing.assert_allclose(result["alignment"], raw, rtol=1e-4)
    np.testing.assert_allclose(result["centred_alignment"],
                               centred_alignment_by_hand(kernel, [3, 3, 3]), rtol=1e-3,
                               atol=1e-4)
    residual = np.concatenate([s.train.targets for s in splits]) - f0
    steps = [jacobian[3 * j:3 * j + 3].T @ residual[3 * j:3 * j + 3] for j in range(3)]
    cosine = np.array([[a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for b in steps]
                       for a in steps])
    np.testing.assert_allclose(result["gradient_cosine"], cosine, rtol=1e-4, atol=1e-5)
    rows = result["combinations"]
    for j, split in enumerate(splits):
        f0_test, _ = plain_outputs_and_gradients(smollm2, tasks[0], split.test.texts,
                                                 with_gradients=False)
        want = np.mean(np.sign(f0_test) == split.test.targets)
        assert all(r["f0_accuracy"] == want for r in rows if r["task_index"] == j)

    def loss(label: str, j: int) -> float:
        return next(r["real_loss"] for r in rows
                    if r["combination"] == label and r["task_index"] == j)

    pairs = result["pairs"]
    assert len(pairs) == 6
    for p in pairs:
        j, k = p["task"], p["added"]
        both = f"+t{min(j, k)}+t{max(j, k)}"
        assert p["real_interference"] == pytest.approx(loss(both, j) - loss(f"+t{j}", j))
        assert p["alignment"] == pytest.approx(result["alignment"][j][k])
    real = [p["real_interference"] for p in pairs]
    for name, key in (("alignment", "alignment"), ("gradient_cosine", "gradient_cosine"),
                      ("centred_alignment", "centred_alignment"),
                      ("linearised", "linear_interference")):
        want = scipy.stats.pearsonr([p[key] for p in pairs], real).statistic
        got = result["correlations"][name]
        assert got["r"] == pytest.approx(want, rel=1e-9) and got["points"] == 6
        assert got["ci_low"] <= got["r"] <= got["ci_high"]
    assert result["correlation"] == result["correlations"]["alignment"]


def markdown_table(text: str, caption_start: str) -> list[dict[str, str]]:
    """The rows of the report.md table whose bold caption starts with ``caption_start``."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"**{caption_start}"))
    header = [c.strip() for c in lines[at + 2].strip("|").split("|")]
    rows = []
    for line in lines[at + 4:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")),
                             strict=True)))
    return rows


def close_to_4_digits(cell: str, value: float) -> bool:
    """A cell written as ``{:.4g}`` of ``round(value, 4)``."""
    return float(cell) == pytest.approx(value, rel=5e-4, abs=5e-5)


def test_report_command_tables_reproduce_its_json(tmp_path, capsys, monkeypatch):
    """``ntk report`` under a shrunk quick profile (pool 8, 4 held out, 2 steps, 2 tasks of
    2 + 2 words): every number in the fine-tuning, rates and task-vector tables is the one in
    the JSON files beside it, and the stopping finding applies report._within by hand (both
    step counts positive and within a factor of 2)."""
    from transferscope.ntk.experiments import profiles

    tiny = replace(profiles.PROFILES["quick"], finetune_n=4, test_n=4, steps=2, sizes=(4, 6),
                   pool=8, seeds=2, taskvec_train=2, taskvec_test=2, taskvec_steps=1,
                   taskvec_tasks=("vader-words", "negated-vader-words"))
    monkeypatch.setitem(profiles.PROFILES, "quick", tiny)
    out = tmp_path / "report"
    code, _, err = run_cli(capsys, "ntk", "report", "--out", str(out), "--quick")
    assert code == 0, err
    text = (out / "report.md").read_text()
    fine = json.loads((out / "finetune.json").read_text())
    rates = json.loads((out / "rates.json").read_text())
    taskvec = json.loads((out / "taskvec.json").read_text())
    assert json.loads((out / "profile.json").read_text())["pool"] == 8

    table = markdown_table(text, "Every step of the real run")
    assert len(table) == len(fine["history"]) == 3
    for cells, row in zip(table, fine["history"], strict=True):
        for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
            assert close_to_4_digits(cells[key], row[key]), (key, cells, row)

    for part in ("pretrained", "mixed"):
        table = markdown_table(text, f"{part}: mean ± sd over seeds")
        frame = rates[part]["rows"]
        assert [int(c["n"]) for c in table] == [4, 6]
        for cells in table:
            values = [r["error_t_hat"] for r in frame if r["n"] == int(cells["n"])]
            mean, sd = cells["error_t_hat"].split(" ± ")
            assert close_to_4_digits(mean, np.mean(values))
            assert float(sd) == pytest.approx(np.std(values, ddof=1), rel=5e-2, abs=1e-12)

    table = markdown_table(text, "Cross-task kernel alignment")
    for j, cells in enumerate(table):
        for k, name in enumerate(taskvec["tasks"]):
            assert close_to_4_digits(cells[name], taskvec["alignment"][j][k])
    table = markdown_table(text, "Held-out accuracy/loss")
    assert len(table) == len(taskvec["combinations"])
    for cells, row in zip(table, taskvec["combinations"], strict=True):
        assert cells["combination"] == row["combination"]
        for key in ("real_accuracy", "linear_accuracy", "real_loss", "linear_loss"):
            assert close_to_4_digits(cells[key], row[key])

    t_hat, best = fine["t_hat"], fine["best_step_real"]
    if t_hat > 2:
        assert "T_hat lies beyond the 2 steps run" in text
    elif t_hat == best == 0:
        assert "Both say keep f_0" in text
    else:
        agree = t_hat > 0 and best > 0 and max(t_hat, best) <= 2 * min(t_hat, best)
        assert ("agree within a factor of 2" in text) == agree
        assert ("differ by more than a factor of 2" in text) == (not agree)
    gap = np.abs(np.array([r["real_accuracy"] - r["linear_accuracy"]
                           for r in taskvec["combinations"]]))
    assert f"within {gap.mean():.3f} on average (max {gap.max():.3f})" in text
    # two tasks: both directed pairs share one alignment, so r is undefined (null in the JSON)
    assert taskvec["correlations"]["alignment"]["r"] is None
    assert "Kernel alignment vs real interference: correlation undefined (no spread)" in text

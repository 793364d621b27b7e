"""The real demo's content at a small size (the fast version of test_demo_e2e.py): the embedded
models stage, the DINO stage (every method, on a tiny benchmark profile) and the bias stage (an
answerer with no opinion, on a small slice of the record) run by the real orchestration into one
report; each number the report states is checked against an independent computation (the models
themselves, the files each stage wrote), and a second run only re-assembles the page."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console

import transferscope.bias
from tests.bias.test_debias_pipeline import planted_record
from transferscope.demo import bias_stage, dino_stage, models_stage
from transferscope.demo.orchestrate import run_stages
from transferscope.demo.stage import Stage
from transferscope.dino.evaluation import DEFAULT, POOLED_RIDGE, PROFILES, WARM, Profile

SMOLLM2_PARAMETERS = 134_515_008  # SmolLM2-135M-Instruct, tied embeddings (hand-checked)
STAGES = ("models", "dino", "bias")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The two stages run once, as `transferscope demo --only models,dino` runs them."""
    out = tmp_path_factory.mktemp("demo")
    small = planted_record()
    with pytest.MonkeyPatch.context() as mp:  # smaller inputs to the same stages:
        mp.setitem(PROFILES, "tiny", Profile(tasks=["housing-prefarea"], labels=(20,), seeds=2,
                                             max_source=40, max_test=40,
                                             methods=[DEFAULT, WARM, POOLED_RIDGE,
                                                      "target-only GP"]))
        mp.setattr(transferscope.bias, "load_record", lambda *args, **kwargs: small)
        stages = [Stage(name="models", title="Embedded models",
                        settings={"model": "smollm2", "encoder": "minilm"}, run=models_stage.run),
                  Stage(name="dino", title="DINO: domain-adaptation regression",
                        settings={"profile": "tiny"}, run=dino_stage.run),
                  Stage(name="bias", title="Bias",
                        settings={"model": "null:first", "tests": "directqa,association,vote",
                                  "drafts_per_nation": 1,
                                  "method": "rag+reflexion", "rounds": 1,
                                  "top_k": 2, "debias_tests": "directqa"},
                        run=bias_stage.run)]
        page, failures = run_stages(stages, out, Console(quiet=True))
        assert not failures
        stamps = {s: (out / s / "result.json").stat().st_mtime_ns for s in STAGES}
        again, failures = run_stages(stages, out, Console(quiet=True))
    assert again == page and not failures
    # the second run reused both finished stages: nothing was recomputed
    assert {s: (out / s / "result.json").stat().st_mtime_ns for s in stamps} == stamps
    return out


def result(out, stage: str) -> dict:
    return json.loads((out / stage / "result.json").read_text("utf-8"))["result"]


def test_report_has_each_stage_in_order_with_its_figures(demo):
    markdown = (demo / "report.md").read_text("utf-8")
    html = (demo / "index.html").read_text("utf-8")
    titles = re.findall(r"^## (.+)$", markdown, re.MULTILINE)
    assert titles == ["Embedded models", "DINO: domain-adaptation regression at few labels",
                      "Bias: nation-level bias in UNSC-grounded tests, and debiasing"]
    figures = {s: [f["file"] for f in result(demo, s)["figures"]] for s in STAGES}
    assert figures == {"models": [], "dino": ["dino_mae.png"],
                       "bias": ["bias_heatmap.png", "bias_scores.png", "debias_scores.png",
                                "debias_change.png"]}
    for stage, files in figures.items():
        assert all((demo / stage / f).read_bytes()[:4] == b"\x89PNG" for f in files)
    assert html.count("data:image/png;base64,") == 5
    for stage in STAGES:
        for paragraph in result(demo, stage)["summary"]:
            assert paragraph.split("(")[0].strip()[:60] in markdown


def test_models_stage_numbers_match_the_models(demo, minilm):
    summary = " ".join(result(demo, "models")["summary"])
    assert f"{SMOLLM2_PARAMETERS / 1e6:.1f}M parameters, 30 layers" in summary
    model, tokenizer = minilm  # cosine of mean-pooled MiniLM states, by hand
    texts = [models_stage.ANCHOR, *models_stage.OTHERS]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state.numpy()
    mask = batch["attention_mask"].numpy()[..., None]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    unit = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    sims = unit[1:] @ unit[0]
    assert sims[0] > sims[1] + 0.3  # a paraphrase is nearer than an unrelated sentence
    assert (f"to a paraphrase is {sims[0]:+.3f}, to an unrelated sentence {sims[1]:+.3f}"
            in summary)
    table = result(demo, "models")["tables"][0]
    np.testing.assert_allclose([row[1] for row in table["rows"]], sims, atol=6e-4)


def test_dino_stage_numbers_match_its_runs(demo):
    runs = pd.read_csv(demo / "dino" / "runs.csv")
    assert runs.groupby("method").size().eq(2).all() and runs["method"].nunique() == 4
    stage = result(demo, "dino")
    summary = " ".join(stage["summary"])
    # by hand from runs.csv: the default's MAE mean ± sd and its coverage
    default = runs[runs["method"] == DEFAULT]
    mae = f"{default['mae'].mean():.4f} ± {default['mae'].std():.4f}"
    cover = round(default["coverage90"].mean(), 2)
    assert f"housing-prefarea (20 labels) {mae}, coverage {cover}" in summary
    tables = {t["caption"].split(",")[0]: t for t in stage["tables"]}
    rows = {r[2]: dict(zip(tables["MAE and RMSE"]["columns"], r, strict=True))
            for r in tables["MAE and RMSE"]["rows"]}
    for method, group in runs.groupby("method"):
        assert rows[method]["MAE"] == f"{group['mae'].mean():.4f} ± {group['mae'].std():.4f}"
    # the defaults check: paired excess over the two seeds, beyond noise if > 2 se
    check = pd.DataFrame(tables["Default DINO against its warm start and pooled ridge (MAE)"]
                         ["rows"], columns=tables["Default DINO against its warm start and "
                                                  "pooled ridge (MAE)"]["columns"])
    for other in (WARM, POOLED_RIDGE):
        diff = (default.set_index("seed")["mae"]
                - runs[runs["method"] == other].set_index("seed")["mae"])
        row = check[check["against"] == other].iloc[0]
        assert row["excess MAE"] == pytest.approx(diff.mean(), abs=6e-5)
        beyond = bool(diff.mean() > 2 * diff.std() / np.sqrt(2))
        assert row["loses beyond noise"] == beyond
        assert f"against {other}, beyond noise in {int(beyond)} of 1 cells" in summary


def test_bias_stage_numbers_match_its_run_folder(demo):
    stage = result(demo, "bias")
    summary = " ".join(stage["summary"])
    answers = [json.loads(x) for x in (demo / "bias" / "run" / "answers.jsonl").read_text()
               .splitlines()]
    run = json.loads((demo / "bias" / "run" / "run.json").read_text())
    unparsed = sum(not a["parsed"] for a in answers)
    assert (f"{len(answers)} answers, {unparsed} unparseable" in summary
            and f"model calls {run['stats']['model_calls']}, cache hits "
            f"{run['stats']['cache_hits']}." in summary)
    assert {a["test"] for a in answers} == {"directqa", "association", "vote"}
    cost = json.loads((demo / "bias" / "cost.json").read_text())
    assert cost["model_calls"] > 0 and cost["evaluator_replies"] > 0
    assert (f"Cost of debiasing: {cost['model_calls']} model calls, {cost['tokens']} tokens, "
            f"{cost['seconds']:.0f} s (retrieval {cost['retrieval_seconds']:.0f} s)") in summary
    # the nation x test table: every headline cell is the run's scores.csv row, formatted
    scores = pd.read_csv(demo / "bias" / "run" / "scores.csv")
    head = scores[scores["headline"].astype(bool)]
    table = stage["tables"][0]
    cells = {(row[0], column): value for row in table["rows"]
             for column, value in zip(table["columns"][1:], row[1:], strict=True)}
    assert len(cells) == len(head)
    for r in head.itertuples():
        assert cells[(r.nation, f"{r.test}: {r.form}")].startswith(
            f"{r.value:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] n={r.n_items}")
    # an answerer with no opinion: every headline score it gets is 0 (or undefined), except
    # the free-text "which" form, where naming the first-listed member is 0 only over the
    # balanced rotation of many drafts (here 2)
    exact = head[head["form"] != "which"]
    assert np.nanmax(np.abs(exact["value"])) == 0.0
    # cells on fewer than 20 drafts (all but the 20 attribute pairs here) carry the flag
    small = head[head["n_items"] < 20]
    assert len(small) == 20 and small["flag"].str.contains("too few drafts").all()
    overall = pd.DataFrame(stage["tables"][2]["rows"], columns=stage["tables"][2]["columns"])
    bias = overall.set_index("overall").loc["mean |bias|"]
    # two drafts: the verdict claims no change and gives neither CI nor p-value
    assert (f"too few drafts (2; a claim needs at least 20) to say whether debiasing changed "
            f"the mean |bias|, so no CI or p-value is given: {bias['before']:.3f} -> "
            f"{bias['after']:.3f};") in summary and "paired bootstrap p =" not in summary


def test_bias_stage_paraphrase_check_matches_its_scores(demo):
    """The paraphrase table is paraphrase.csv's headline cells, by hand: min..max over the four
    variants per nation. null:first takes the first option listed, so on "did m vote in
    favour?" it answers Yes as listed and No reversed: every headline score is 0 under every
    variant (no finding anywhere), and each nation's accuracy as listed plus reversed is 1."""
    stage = result(demo, "bias")
    scores = pd.read_csv(demo / "bias" / "paraphrase.csv")
    assert set(scores["wording"]) == {"w0", "w1", "w2", "w0-rev"}
    assert set(scores["form"]) == {"in favour"}
    head = scores[scores["headline"].astype(bool)]
    assert (head["value"].fillna(0) == 0).all()
    table = stage["tables"][3]
    rows = {r[0]: dict(zip(table["columns"], r, strict=True)) for r in table["rows"]}
    assert set(rows) == set(head["nation"])
    for nation, g in head.groupby("nation"):
        assert float(rows[nation]["min"]) == pytest.approx(g["value"].min(), abs=1e-4)
        assert float(rows[nation]["max"]) == pytest.approx(g["value"].max(), abs=1e-4)
        assert rows[nation]["status"] == "no finding"
    accuracy = scores[scores["metric"] == "accuracy"].pivot(index="nation", columns="wording",
                                                            values="value")
    np.testing.assert_allclose(accuracy["w0"] + accuracy["w0-rev"], 1.0)
    summary = " ".join(stage["summary"])
    assert "Paraphrase check" in summary and "Survives: none" in summary

"""Run settings end to end: repeated samples (majority and spread, checked by hand), --limit
as items per test, few-shot and system prompt in the logged messages, the run's provenance."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from transferscope.bias import evaluate
from transferscope.bias.backends.base import Backend, GenerationSettings, Reply
from transferscope.bias.items import write_items
from transferscope.core.errors import InputError


class SeedVoter(Backend):
    """A planted answerer: "In favour." on samples with seed % 3 != 2, else "I would abstain";
    it cannot score options, so every answer is generated and parsed."""

    id = "planted:seed-voter"
    supports_option_logprobs = False

    def chat(self, conversations, settings: GenerationSettings, on_reply=None) -> list[Reply]:
        self.seeds = getattr(self, "seeds", []) + [settings.seed]
        text = "In favour." if settings.seed % 3 != 2 else "I would abstain"
        return [Reply(text=text, prompt_tokens=1, completion_tokens=1) for _ in conversations]

    def option_logprobs_many(self, requests: Sequence) -> list[list[float]]:
        raise AssertionError("not used")


def _file(tmp_path, golds):
    rows = [{"id": f"{d}/{n}", "test": "vote", "nation": n, "date": "2020-01-01", "draft": d,
             "text": f"Draft {d}.", "gold": g} for d, n, g in golds]
    return write_items(tmp_path / "items.jsonl", rows)


def test_samples_keep_the_majority_and_report_the_spread(tmp_path):
    golds = [("a", "China", "in favour"), ("b", "China", "in favour"),
             ("a", "Russia", "in favour"), ("b", "Russia", "against")]
    backend = SeedVoter()
    result = evaluate(backend, "vote", items=_file(tmp_path, golds), n_boot=20, seed=0,
                      samples=3, temperature=0.7, out_dir=tmp_path / "run")
    assert sorted(set(backend.seeds)) == [0, 1, 2]
    assert all(a["choice"] == "In favour" for a in result.answers)  # 2 of 3 samples
    rows = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and {r["settings"]["seed"] for r in rows} == {0, 1, 2}
    assert {r["parse"] for r in rows} == {"In favour", "Abstain"}
    s = result.scores.set_index(["nation", "metric"])
    # China, accuracy per sample: 1, 1, 0 (all in favour twice, all abstain once)
    assert s.loc[("China", "accuracy"), "value"] == 1.0
    assert s.loc[("China", "accuracy"), "sample_sd"] == pytest.approx(np.std([1, 1, 0], ddof=1))
    # Russia, B = U - F per sample: 0 - 1, 0 - 1, 1 - 0 -> sd of (-1, -1, 1)
    assert s.loc[("Russia", "B"), "sample_sd"] == pytest.approx(np.std([-1, -1, 1], ddof=1))


def test_greedy_samples_are_refused_before_any_call(tmp_path):
    backend = SeedVoter()
    with pytest.raises(InputError, match="--samples: samples = 3: expected 1 with --temperature 0"):
        evaluate(backend, "vote", items=_file(tmp_path, [("a", "China", "against")]),
                 samples=3)
    assert not hasattr(backend, "seeds")


def test_cap_few_shot_and_system_prompt_reach_the_logged_messages(tmp_path):
    """Six drafts, two nations each, capped at 3 drafts per nation (one from each third of
    the dates): 6 items asked, every nation on every kept draft; the few-shot examples come
    from the 3 drafts not asked."""
    golds = [(f"d{k}", n, "against" if k % 2 else "in favour") for k in range(6)
             for n in ("China", "France")]
    result = evaluate(SeedVoter(), "vote", items=_file(tmp_path, golds), n_boot=20,
                      drafts_per_nation=3, few_shot=2, system_prompt="Be brief. {default}",
                      out_dir=tmp_path / "run")
    assert len(result.answers) == 6
    asked = {row["meta"]["draft"] for row in result.answers}
    assert len(asked) == 3 and all(
        {r["nation"] for r in result.answers if r["meta"]["draft"] == d} == {"China", "France"}
        for d in asked)
    for row in result.answers:
        messages = row["messages"]
        assert messages[0]["content"].startswith("Be brief. You are the representative of ")
        assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * 2 + ["user"]
        for example in messages[1:-1:2]:
            assert not any(f"Draft {d}." in example["content"] for d in asked)
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["items"] == {"vote": 6}
    assert summary["config"]["few_shot"] == 2 and summary["generation"]["max_tokens"] == 16
    prov = summary["provenance"]
    assert prov["backend_id"] == "planted:seed-voter" and prov["record_sha256"] is None

"""``bias export``: our items as an inspect_ai and an lm-eval-harness task.

The exported messages must be the ones ``bias run`` sends, and the exported scorers must map a
reply to an option exactly as ``bias run`` parses it. Both are checked offline (the files
written; the scorers against the 96 real SmolLM2 replies a person labelled, the fixture of
test_answer_parsing.py), then for real: the same items through ``bias run --option-scoring
generate``, inside inspect_ai (its OpenAI-compatible provider) and inside lm-eval
(``local-chat-completions``), all against the one llama.cpp server, greedy; the messages each
harness sent and the per-item answers are compared.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.bias.test_answer_parsing import CORPUS
from tests.bias.test_backends_openai import LLAMA_MODEL_ALIAS
from tests.bias.test_cli import cli  # noqa: F401
from tests.bias.unbench_sample import SHARED, write_unbench_sample
from transferscope.bias.adapters.unbench import unbench_items
from transferscope.bias.export import export_items
from transferscope.bias.items import load_items, write_items
from transferscope.bias.probes.base import read_option
from transferscope.core.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EXPERT = ("You are an expert on the history of the United Nations Security Council. Answer "
          "exactly in the format requested.")


def _items(tmp_path: Path) -> Path:
    """Three items: two vote items of the UNBench layout fixture (our default prompt, one
    P5 member and one elected member), and a DirectQA item with its own short prompt (one
    SmolLM2 answers in a parseable word)."""
    rows = [r for r in unbench_items(write_unbench_sample(tmp_path / "ub")).rows
            if r["test"] == "vote" and r["draft"] == "S/2017/77"
            and r["nation"] in ("Russia", "Egypt")]
    rows.append({"id": "own-prompt", "test": "directqa", "nation": "France",
                 "draft": "S/2017/77", "date": "2017-01-31", "text": "(not shown)",
                 "gold": "Yes", "system": EXPERT, "prompt": "Did France vote in favour of the "
                 "draft? Answer with exactly one of: Yes, No."})
    return write_items(tmp_path / "items.jsonl", rows)


def test_exported_files_hold_the_messages_bias_run_sends(tmp_path):
    items_file = _items(tmp_path)
    items = {i.item_id: i for i in load_items(items_file)}
    inspect = export_items(items_file, "inspect", tmp_path / "inspect")
    lm = export_items(items_file, "lm-eval", tmp_path / "lm", task_name="ub_vote")
    assert inspect.task_name == "transferscope_items" and inspect.tests == {"vote": 2,
                                                                           "directqa": 1}
    assert [p.name for p in lm.files] == ["ub_vote.jsonl", "ub_vote.yaml", "utils.py"]
    samples = [json.loads(line) for line in (tmp_path / "inspect" / "dataset.jsonl").open()]
    docs = [json.loads(line) for line in (tmp_path / "lm" / "ub_vote.jsonl").open()]
    assert [s["id"] for s in samples] == [d["id"] for d in docs] == list(items)
    for sample, doc in zip(samples, docs, strict=True):
        item = items[sample["id"]]
        assert sample["input"] == item.conversation  # system and user message, verbatim
        assert [{"role": "system", "content": doc["system"]},
                {"role": "user", "content": doc["prompt"]}] == item.conversation
        assert sample["metadata"]["options"] == doc["options"] == list(item.options)
        assert sample["target"] == doc["gold"]
        assert (sample["metadata"]["nation"], sample["metadata"]["draft"]) == (item.nation,
                                                                             item.draft)
    russia = samples[0]["input"]
    assert russia[0]["content"] == ("You are the representative of Russia on the United "
                                    "Nations Security Council.")
    assert russia[1]["content"].endswith("How do you vote? Answer with exactly one of: "
                                         "In favour, Against, Abstain.")
    assert "renew the mandate of the Panel of Experts" in russia[1]["content"]
    assert samples[0]["target"] == "Against" and samples[1]["target"] == "Abstain"  # N, A
    yaml = (tmp_path / "lm" / "ub_vote.yaml").read_text()
    assert 'until: ["\\n"]' in yaml and "max_gen_toks: 16" in yaml and "task: ub_vote" in yaml
    assert "generation" not in (tmp_path / "inspect" / "task.py").read_text().split(
        "def transferscope_items")[0].split('"""')[2]  # the task's code, not its docstring
    assert "'max_tokens': 16, 'temperature': 0.0, 'seed': 0, 'stop': ['\\n']" in (
        tmp_path / "inspect" / "task.py").read_text()


def test_export_refuses_bad_input_in_one_line(tmp_path, cli):  # noqa: F811
    items_file = _items(tmp_path)
    with pytest.raises(InputError, match=r"--format = 'helm': expected one of inspect, lm-eval"):
        export_items(items_file, "helm", tmp_path / "x")
    with pytest.raises(InputError, match=r"--task-name = '1st': expected a Python identifier"):
        export_items(items_file, "inspect", tmp_path / "x", task_name="1st")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "test": "vote", "nation": "France",
                               "date": "2017-01-31", "text": "t", "gold": "maybe"}) + "\n")
    result = cli("bias", "export", str(bad), "--format", "inspect", "--out", str(tmp_path / "y"))
    assert result.returncode != 0 and not (tmp_path / "y").exists()
    assert "line 1: field gold = 'maybe'" in result.stderr
    written = cli("bias", "export", str(items_file), "--format", "lm-eval", "--out",
                  str(tmp_path / "z"))
    assert written.returncode == 0, written.stderr
    assert "3 items (vote: 2, directqa: 1) written as the lm-eval task transferscope_items" \
        in written.stdout


def _corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.open()]


def test_inspect_scorer_places_real_replies_as_bias_run_does():
    """The scorer's option is bias run's parse on each of the 96 real replies (and so agrees
    with the person's label on all but the parser's 2 known misses); C only on the gold."""
    from transferscope.bias.export.inspect_task import score_reply

    rows, agree = _corpus(), 0
    for row in rows:
        gold = row["options"][0]
        score = score_reply(row["reply"], {"options": row["options"], "nation": row["nation"]},
                            gold.upper())
        choice = score.metadata["choice"]
        assert choice == read_option(row["reply"], tuple(row["options"]), row["nation"])
        assert score.value == ("C" if choice == gold else "I") and score.answer == (choice or "")
        agree += choice == row["expected"]
    assert agree == 94


def test_lm_eval_filter_and_metrics_place_real_replies_as_bias_run_does():
    from transferscope.bias.export.lm_eval_task import parse_replies, process_results

    rows = _corpus()
    docs = [{"options": r["options"], "nation": r["nation"], "gold": r["options"][-1].lower()}
            for r in rows]
    parsed = parse_replies([[r["reply"]] for r in rows], docs)
    assert [p[0] or None for p in parsed] == [
        read_option(r["reply"], tuple(r["options"]), r["nation"]) for r in rows]
    assert sum((p[0] or None) == r["expected"] for p, r in zip(parsed, rows)) == 94
    for doc, choice in zip(docs, parsed, strict=True):
        assert process_results(doc, choice) == {
            "acc": float(choice[0].lower() == doc["gold"] and bool(choice[0])),
            "parsed": float(bool(choice[0]))}


def _load_task(folder: Path, name: str):
    spec = importlib.util.spec_from_file_location(f"exported_{name}", folder / "task.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)()


def test_exported_tasks_answer_as_bias_run_on_a_real_server(cli, llama_server,  # noqa: F811
                                                             tmp_path):
    """The same three items through `bias run --option-scoring generate`, inspect_ai and
    lm-eval against the one llama.cpp server: the same messages reach it, and the parsed
    answers agree item by item (replies compared as parsed: llama-cpp-python's reuse of the
    previous prompt's cache can change a first reply's wording slightly)."""
    import inspect_ai
    import lm_eval
    from inspect_ai.model import get_model
    from lm_eval.tasks import TaskManager

    items_file = _items(tmp_path)
    run = cli("bias", "run", "--items", str(items_file), "--tests", "vote,directqa",
              "--model", f"openai:{LLAMA_MODEL_ALIAS}", "--base-url", llama_server,
              "--option-scoring", "generate", "--concurrency", "1", "--n-boot", "10",
              "--cache", str(tmp_path / "cache.sqlite"), "--out", str(tmp_path / "run"))
    assert run.returncode == 0, run.stderr
    ours = {r["item_id"]: r for r in map(json.loads, (tmp_path / "run" / "samples.jsonl").open())}
    assert len(ours) == 3 and all(r["method"] == "parse" for r in ours.values())

    export_items(items_file, "inspect", tmp_path / "inspect")
    model = get_model(f"openai-api/llamacpp/{LLAMA_MODEL_ALIAS}", base_url=llama_server,
                      api_key="unused")
    log = inspect_ai.eval(_load_task(tmp_path / "inspect", "transferscope_items"), model=model,
                          log_dir=str(tmp_path / "inspect-logs"), display="none",
                          max_connections=1)[0]
    assert log.status == "success", log.error
    inspect_answers = {}
    for sample in log.samples:
        sent = [{"role": m.role, "content": m.text} for m in sample.messages[:2]]
        assert sent == ours[sample.id]["messages"]
        inspect_answers[sample.id] = sample.scores["option_scorer"].metadata["choice"]

    export_items(items_file, "lm-eval", tmp_path / "lm")
    results = lm_eval.simple_evaluate(
        model="local-chat-completions",
        model_args=f"model={LLAMA_MODEL_ALIAS},base_url={llama_server}/chat/completions,"
                   "num_concurrent=1,max_retries=1",
        tasks=["transferscope_items"], task_manager=TaskManager(include_path=str(tmp_path / "lm")),
        apply_chat_template=True, log_samples=True)
    lm_answers = {}
    for sample in results["samples"]["transferscope_items"]:
        context = sample["arguments"][0][0]  # lm-eval's JsonChatStr: the messages as JSON
        sent = context if isinstance(context, str) else context[0]
        assert json.loads(sent) == ours[sample["doc"]["id"]]["messages"]
        lm_answers[sample["doc"]["id"]] = sample["filtered_resps"][0] or None

    assert inspect_answers == lm_answers == {k: r["parse"] for k, r in ours.items()}
    assert ours["own-prompt"]["parse"] is not None  # one answer is an option, not all unparsed


def test_a_context_shortens_exported_prompts_as_bias_run_does(tmp_path):
    """With --context-tokens the export sends what a run at that context sends: the same
    shortened user message, marked in the metadata; items that fit stay whole. Against a run
    (null:constant: no tokenizer, so both count by the character estimate; the run's messages
    from its answers file), then with SmolLM2's tokenizer against the run's fitting with the
    local SmolLM2 backend."""
    from tests.bias.test_context_fit import FIXTURE
    from transferscope.bias.backends.hf_local import HFLocalBackend
    from transferscope.bias.context_fit import fit_run
    from transferscope.bias.evaluate import evaluate

    rows = [r for r in unbench_items(FIXTURE).rows if r["test"] == "vote"]
    items_file = write_items(tmp_path / "vote.jsonl", rows)
    whole = {i.item_id: i.conversation[-1]["content"] for i in load_items(items_file)}

    def exported(context: int, tokenizer: str | None) -> tuple[int, dict[str, dict]]:
        out = tmp_path / f"lm-{context}-{tokenizer}"
        result = export_items(items_file, "lm-eval", out, task_name="ub",
                              context_tokens=context, tokenizer=tokenizer)
        docs = {d["id"]: d for d in map(json.loads, (out / "ub.jsonl").open())}
        assert set(docs) == set(whole)
        for item_id, doc in docs.items():
            assert ("context_fit" in doc) == (doc["prompt"] != whole[item_id])
        assert sum("context_fit" in d for d in docs.values()) == result.shortened
        return result.shortened, docs

    shortened, docs = exported(200, None)
    run = evaluate("null:constant", "vote", items=items_file, out_dir=tmp_path / "run",
                   n_boot=20, context_tokens=200)
    sent = {a["item_id"]: a for a in map(json.loads, (tmp_path / "run" / "answers.jsonl").open())}
    assert run.stats.extra["context_fit"]["shortened"] == shortened > 0
    assert {k: d["prompt"] for k, d in docs.items()} == {
        k: a["messages"][-1]["content"] for k, a in sent.items()}

    shortened, docs = exported(160, "smollm2")
    fitted, fit = fit_run(HFLocalBackend("smollm2"), {"vote": load_items(items_file)}, 160, 16)
    assert fit.shortened == shortened > 0 and "tokenizer" in fit.counted_by
    assert {k: d["prompt"] for k, d in docs.items()} == {
        i.item_id: i.conversation[-1]["content"] for i in fitted["vote"]}


@pytest.mark.skipif(not (SHARED / "data" / "task2.csv").exists(),
                    reason=f"the published UNBench sample is absent ({SHARED})")
@pytest.mark.parametrize("fmt, data", [("inspect", "dataset.jsonl"), ("lm-eval", "ub.jsonl")])
def test_export_without_a_tokenizer_writes_what_the_run_s_estimate_wrote(tmp_path, fmt, data):
    """Without --tokenizer the export fits prompts by the character estimate itself (no
    backend opened); the file it writes is byte for byte the one the way through a run's
    backend wrote (``fit_run`` on ``null:constant``, which has no tokenizer), on the published
    UNBench sample (180 items, 111 of them shortened at 2048 tokens)."""
    from transferscope.bias.backends.registry import make_backend
    from transferscope.bias.context_fit import fit_run
    from transferscope.bias.export import _inspect_sample, item_record
    from transferscope.core.io import write_jsonl

    items = write_items(tmp_path / "ub-items.jsonl", unbench_items(SHARED).rows)
    result = export_items(items, fmt, tmp_path / "task", task_name="ub", context_tokens=2048)
    null = make_backend("null:constant", cache=False)
    try:
        fitted, fit = fit_run(null, {"items": load_items(items)}, 2048, 16)
    finally:
        null.close()
    records = [item_record(i) for i in fitted["items"]]
    expected = write_jsonl(tmp_path / "expected.jsonl", [_inspect_sample(r) for r in records]
                           if fmt == "inspect" else records)
    assert result.shortened == fit.shortened == 111 and result.n_items == 180
    assert (tmp_path / "task" / data).read_bytes() == expected.read_bytes()

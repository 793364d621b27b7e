"""All 30 published UNBench task-2 items through `bias run`, inspect_ai and lm-eval, with the
drafts that do not fit the served context shortened the same way in all three (`bias run
--context-tokens 2048`; `bias export --context-tokens 2048 --tokenizer smollm2`).

The folder export-unbench-smollm2/ ran the 16 items that fit whole, before the context fit
existed; this one runs all 30. Otherwise the same steps:

Steps (each a separate invocation under the heavy lock; `python run.py STEP`):

- ``items``: `transferscope bias import-unbench ../shared/data/unbench` -> ``unbench.jsonl``;
  all its vote items -> ``items.jsonl``; ``fit.csv`` lists every vote item with its whole
  prompt's tokens and whether it fits the served 2,048 tokens whole.
- ``bias-run``, ``inspect``, ``lm-eval``: start llama-cpp-python's server on the embedded
  SmolLM2 GGUF (n_ctx 2048, 2 threads, no logits needed: answers are generated), then ask the
  items through that harness: `transferscope bias run --items items.jsonl --tests vote
  --option-scoring generate --concurrency 1`; the task `transferscope bias export --format
  inspect` wrote, in inspect_ai's ``eval`` (provider ``openai-api``); the task `--format
  lm-eval` wrote, in lm-eval's ``simple_evaluate`` (``local-chat-completions``,
  ``--apply_chat_template``). Each writes its per-item answers (``<step>.jsonl``).
- ``compare``: ``answers.csv`` (per item: prompt tokens, gold, each harness's reply and
  parsed answer) and ``summary.json`` (agreement counts).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
SHARED = ROOT.parent / "shared" / "data" / "unbench"
CONTEXT, MAX_TOKENS, ALIAS = 2048, 16, "smollm2"  # served context; SmolLM2's own: 8192
CLI = [sys.executable, "-c", "from transferscope.cli import main; main()"]


def log(step: str, started: float) -> None:
    load = Path("/proc/loadavg").read_text().split()[:3]
    line = {"step": step, "utc_start": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
            "utc_end": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "seconds": round(time.time() - started, 1), "load_at_end": load}
    with (HERE / "steps.jsonl").open("a") as f:
        f.write(json.dumps(line) + "\n")
    print(line)


def items() -> None:
    from transformers import AutoTokenizer

    from transferscope.bias.items import load_items
    from transferscope.core.models import resolve_model

    subprocess.run([*CLI, "bias", "import-unbench", str(SHARED), "--out",
                    str(HERE / "unbench.jsonl")], check=True)
    tok = AutoTokenizer.from_pretrained(str(resolve_model("smollm2")))
    kept, rows = [], []
    by_id = {json.loads(line)["id"]: line for line in (HERE / "unbench.jsonl").open()}
    for item in load_items(HERE / "unbench.jsonl"):
        if item.test != "vote":
            continue
        text = tok.apply_chat_template(item.conversation, tokenize=False,
                                       add_generation_prompt=True)
        n = len(tok(text, add_special_tokens=False)["input_ids"])
        fits = n + MAX_TOKENS <= CONTEXT
        rows.append({"id": item.item_id, "nation": item.nation, "gold": item.gold,
                     "prompt_tokens": n, "fits": fits})
        kept.append(by_id[item.item_id])
    (HERE / "items.jsonl").write_text("".join(kept))
    with (HERE / "fit.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{sum(r['fits'] for r in rows)} of {len(rows)} vote items fit {CONTEXT} tokens whole")


def _server():
    from transferscope.bias.backends.llama_server import serve_gguf

    return serve_gguf(n_ctx=CONTEXT, n_threads=2)


def bias_run(url: str) -> list[dict]:
    out = HERE / "bias-run"
    subprocess.run([*CLI, "bias", "run", "--items", str(HERE / "items.jsonl"), "--tests",
                    "vote", "--model", f"openai:{ALIAS}", "--base-url", url,
                    "--option-scoring", "generate", "--concurrency", "1", "--timeout", "600",
                    "--context-tokens", str(CONTEXT),
                    "--cache", "/tmp/all30-bias-run-cache.sqlite", "--out", str(out)],
                   check=True)
    return [{"id": r["item_id"], "reply": r["reply"], "answer": r["parse"],
             "messages": r["messages"]} for r in map(json.loads, (out / "samples.jsonl").open())]


def inspect_run(url: str) -> list[dict]:
    import inspect_ai
    from inspect_ai.model import get_model

    from transferscope.bias.export import export_items

    export_items(HERE / "items.jsonl", "inspect", HERE / "inspect-task",
                 context_tokens=CONTEXT, tokenizer=ALIAS)
    spec = importlib.util.spec_from_file_location("task", HERE / "inspect-task" / "task.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = get_model(f"openai-api/llamacpp/{ALIAS}", base_url=url, api_key="unused")
    log_ = inspect_ai.eval(module.transferscope_items(), model=model, display="none",
                           log_dir="/tmp/all30-inspect-logs", max_connections=1,
                           timeout=600)[0]
    assert log_.status == "success", log_.error
    return [{"id": s.id, "reply": s.output.completion,
             "answer": s.scores["option_scorer"].metadata["choice"],
             "messages": [{"role": m.role, "content": m.text} for m in s.messages[:2]]}
            for s in log_.samples]


def lm_eval_run(url: str) -> list[dict]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    from transferscope.bias.export import export_items

    export_items(HERE / "items.jsonl", "lm-eval", HERE / "lm-eval-task",
                 context_tokens=CONTEXT, tokenizer=ALIAS)
    results = lm_eval.simple_evaluate(
        model="local-chat-completions",
        model_args=f"model={ALIAS},base_url={url}/chat/completions,num_concurrent=1,"
                   "max_retries=1,timeout=600",
        tasks=["transferscope_items"],
        task_manager=TaskManager(include_path=str(HERE / "lm-eval-task")),
        apply_chat_template=True, log_samples=True)
    out = []
    for s in results["samples"]["transferscope_items"]:
        context = s["arguments"][0][0]
        out.append({"id": s["doc"]["id"], "reply": s["resps"][0][0],
                    "answer": s["filtered_resps"][0] or None,
                    "messages": json.loads(context if isinstance(context, str) else context[0])})
    return out


def compare() -> None:
    fit = {r["id"]: r for r in csv.DictReader((HERE / "fit.csv").open())}
    runs = {name: {r["id"]: r for r in map(json.loads, (HERE / f"{name}.jsonl").open())}
            for name in ("bias-run", "inspect", "lm-eval")}
    ids = list(runs["bias-run"])
    rows, counts = [], {"items": len(ids), "same messages sent (inspect, lm-eval)": [0, 0],
                        "inspect = bias run": 0, "lm-eval = bias run": 0, "all three": 0,
                        "same reply text (inspect, lm-eval)": [0, 0],
                        "parsed (bias run, inspect, lm-eval)": [0, 0, 0],
                        "shortened to fit (bias run's answers)": sum(
                            "context_fit" in (r.get("meta") or {}) for r in map(
                                json.loads, (HERE / "bias-run" / "answers.jsonl").open()))}
    for i in ids:
        ours, ins, lm = (runs[n][i] for n in ("bias-run", "inspect", "lm-eval"))
        rows.append({"id": i, "nation": fit[i]["nation"], "gold": fit[i]["gold"],
                     "prompt_tokens": fit[i]["prompt_tokens"],
                     "bias_run": ours["answer"], "inspect": ins["answer"],
                     "lm_eval": lm["answer"], "bias_run_reply": ours["reply"],
                     "inspect_reply": ins["reply"], "lm_eval_reply": lm["reply"]})
        for k, other in enumerate((ins, lm)):
            counts["same messages sent (inspect, lm-eval)"][k] += \
                other["messages"] == ours["messages"]
            counts["same reply text (inspect, lm-eval)"][k] += other["reply"] == ours["reply"]
        counts["inspect = bias run"] += ins["answer"] == ours["answer"]
        counts["lm-eval = bias run"] += lm["answer"] == ours["answer"]
        counts["all three"] += ins["answer"] == ours["answer"] == lm["answer"]
        for k, r in enumerate((ours, ins, lm)):
            counts["parsed (bias run, inspect, lm-eval)"][k] += r["answer"] is not None
    with (HERE / "answers.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (HERE / "summary.json").write_text(json.dumps(counts, indent=1) + "\n")
    print(json.dumps(counts, indent=1))


def main(step: str) -> None:
    if step == "all":
        for one in ("bias-run", "inspect", "lm-eval", "compare"):
            main(one)
        return
    started = time.time()
    if step == "items":
        items()
    elif step == "compare":
        compare()
    else:
        run = {"bias-run": bias_run, "inspect": inspect_run, "lm-eval": lm_eval_run}[step]
        with _server() as url:
            answers = run(url)
        (HERE / f"{step}.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    log(step, started)


if __name__ == "__main__":
    main(sys.argv[1])

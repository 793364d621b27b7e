"""All 30 task-2 items of the published UNBench sample, SmolLM2 (the embedded Q4 GGUF) through
llama-cpp-python's server, options scored by chat log-probabilities (no --template-model), every
draft fitted into the served context of 2,048 tokens (--context-tokens: this server reports none).

Run from the repository root, under the lock, as often as it takes (the reply cache resumes):
    flock /tmp/heavy.lock env OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 timeout 560 \
        python examples/bias/results/unbench-smollm2-chat-logprobs/run.py [vote|adoption]
vote (default): the 30 task-2 items, written here; adoption: the 30 task-3 drafts, written to
adoption/. The items are asked in slices of 2 (`bias run` on each slice, one shared reply
cache, a fixed port so the backend id stays the same) until 420 s have passed (the items answered so far are then run whole into /tmp, as a
partial result); once every slice
is answered, the full run over all items answers from the cache (0 model calls) and its
output is kept. Each chunk appends to log.txt (UTC times, load).
"""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from scipy.stats import binomtest

from transferscope.bias.adapters.unbench import unbench_items
from transferscope.bias.backends.llama_server import serve_gguf
from transferscope.bias.items import write_items

TEST = sys.argv[1] if len(sys.argv) > 1 else "vote"
HERE = Path(__file__).resolve().parent / ("" if TEST == "vote" else TEST)
WORK = Path(f"/tmp/ub28real30-{TEST}")  # the reply cache and the run folder (copied here when done)
N_CTX = 2048  # the served context (SmolLM2-135M was trained on 8,192; 2,048 keeps a run on 2 shared cores within the lock's 10-minute chunks)


def stamp(what: str) -> None:
    load = os.getloadavg()
    with open(HERE / "log.txt", "a") as log:
        log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {what}; load "
                  f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}\n")


signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped (timeout): rerun to resume"))
WORK.mkdir(exist_ok=True)
HERE.mkdir(exist_ok=True)
rows = [r for r in unbench_items(Path("../shared/data/unbench")).rows if r["test"] == TEST]
write_items(HERE / "items.jsonl", rows)  # every row of the task, as import-unbench writes it
stamp(f"start: {len(rows)} {TEST} items")
SLICE, BUDGET_S, PORT = 2, 420, 48213
started = time.monotonic()


def ask(items_file: Path, out: Path, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "transferscope", "bias", "run", "--items", str(items_file),
         "--tests", TEST, "--model", "openai:smollm2", "--base-url", url,
         "--context-tokens", str(N_CTX), "--n-boot", "1000", "--cache",
         str(WORK / "cache.sqlite"), "--out", str(out), "--concurrency", "1", "--timeout",
         "600"], capture_output=True, text=True)


with serve_gguf(n_threads=2, n_ctx=N_CTX, port=PORT) as url:
    for first in range(0, len(rows), SLICE):
        done_marker = WORK / f"slice-{first}.done"
        if done_marker.exists():
            continue
        if time.monotonic() - started > BUDGET_S:  # the answered items so far, from the cache
            if first:
                write_items(WORK / "partial.jsonl", rows[:first])
                got = ask(WORK / "partial.jsonl", WORK / "partial", url)
                (WORK / "partial").mkdir(exist_ok=True)
                (WORK / "partial" / "stdout.txt").write_text(got.stdout + got.stderr[-500:])
            stamp(f"stopped before slice {first} (time budget): rerun to resume")
            sys.exit(75)  # not finished: the caller reruns
        write_items(WORK / "slice.jsonl", rows[first:first + SLICE])
        got = ask(WORK / "slice.jsonl", WORK / "slice-run", url)
        if got.returncode != 0:
            stamp(f"slice {first}: exit {got.returncode}")
            sys.exit(got.stderr[-2000:])
        done_marker.touch()
        stamp(f"slice {first}: answered")
    done = ask(HERE / "items.jsonl", WORK / "run", url)
stamp(f"end: exit {done.returncode}")
if done.returncode != 0:
    sys.exit(done.stderr[-2000:])
(HERE / "stdout.txt").write_text(done.stdout)
for name in ("answers.jsonl", "run.json", "scores.csv"):
    (HERE / name).write_bytes((WORK / "run" / name).read_bytes())
answers = [json.loads(line) for line in open(HERE / "answers.jsonl")]
right = sum(bool(a["correct"]) for a in answers)
interval = binomtest(right, len(answers)).proportion_ci(0.95, method="exact")
summary = {  # every item against its gold: accuracy with a Clopper-Pearson 95% interval
    "items": len(answers), "correct": right, "accuracy": right / len(answers),
    "accuracy_ci95": [interval.low, interval.high],
    "answers_vs_gold": {f"{g} -> {c}": n for (g, c), n in Counter(
        (a["gold"], a["choice"]) for a in answers).items()},
    "methods": dict(Counter(a["method"] for a in answers)),
    "shortened": sum("context_fit" in a["meta"] for a in answers),
    "per_item": [{"item_id": a["item_id"], "nation": a["nation"], "gold": a["gold"],
                  "choice": a["choice"], "method": a["method"],
                  "shortened": "context_fit" in a["meta"]} for a in answers]}
(HERE / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
print(done.stdout)
print(json.dumps(json.loads((HERE / "run.json").read_text())["stats"], indent=1))

"""The 8 shortest task-2 items of the published UNBench sample, SmolLM2 through llama-cpp-python's
server, options scored by chat log-probabilities (no --template-model)."""
import json, subprocess, sys
from transferscope.bias.backends.llama_server import serve_gguf
rows = [json.loads(l) for l in open("/tmp/ub28.jsonl")]
votes = sorted((r for r in rows if r["test"] == "vote"), key=lambda r: len(r["text"]))[:8]
with open("/tmp/ub28real/short8.jsonl", "w") as f:
    for r in votes:
        f.write(json.dumps(r) + "\n")
with serve_gguf(n_threads=2, n_ctx=2048) as url:
    cmd = [sys.executable, "-m", "transferscope", "bias", "run", "--items", "/tmp/ub28real/short8.jsonl",
           "--tests", "vote", "--model", "openai:smollm2", "--base-url", url, "--n-boot", "1000",
           "--cache", "/tmp/ub28real/cache.sqlite", "--out", "/tmp/ub28real/run", "--concurrency", "1"]
    print(subprocess.run(cmd, capture_output=True, text=True).stdout)

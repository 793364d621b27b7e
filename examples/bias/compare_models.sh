#!/usr/bin/env bash
# Multi-model comparison, offline, on the embedded model: four checkpoints/runtimes of
# SmolLM2-135M-Instruct answer the same items (three tests, --drafts-per-nation 1), then
# `bias compare` puts them side by side with the accuracy-vs-|bias| correlation and its CI.
#   hf-Q4_1       the embedded GGUF through transformers (hf-local)
#   hf-Q4_0/Q2_K  llama.cpp requantisations of it (examples/bias/requantize.py), hf-local
#   http-Q4_1     the embedded GGUF served by llama.cpp's OpenAI-compatible server over HTTP,
#                 options scored by log-likelihood with the local tokenizer (--template-model)
# They share one base checkpoint, so they are not independent models: across them the
# correlation measures precision and runtime effects (the report says so).
# Usage (repo root, after `make test` or `make demo` created .venv):
#   bash examples/bias/compare_models.sh [OUT_DIR]      # about 30 min on 2 cores, cold cache
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-bias-compare}
PY=.venv/bin/python
TS=.venv/bin/transferscope
COMMON=(--tests directqa,association,vote --drafts-per-nation 1 --seed 0 --n-boot 1000)
mkdir -p "$OUT"

for q in Q4_0 Q2_K; do
  [ -f "$OUT/smollm2-$q.gguf" ] || $PY examples/bias/requantize.py "$q" "$OUT/smollm2-$q.gguf"
done

$TS bias run --model hf-local:smollm2 "${COMMON[@]}" --out "$OUT/hf-Q4_1"
for q in Q4_0 Q2_K; do
  $TS bias run --model "hf-local:$OUT/smollm2-$q.gguf" "${COMMON[@]}" --out "$OUT/hf-$q"
done

PORT=${PORT:-8765}
GGUF=$($PY -c "from transferscope.core.models import embedded_gguf_path; print(embedded_gguf_path())")
$PY -m llama_cpp.server --model "$GGUF" --model_alias smollm2 --host 127.0.0.1 --port "$PORT" \
    --n_ctx 2048 --n_threads 2 --logits_all true > "$OUT/llama-server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$PORT/v1/models" > /dev/null && break
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/v1/models" > /dev/null \
  || { echo "error: llama.cpp server not up on port $PORT after 120 s (see $OUT/llama-server.log)" >&2; exit 1; }
$TS bias run --model openai:smollm2 --base-url "http://127.0.0.1:$PORT/v1" \
    --template-model smollm2 --concurrency 2 "${COMMON[@]}" --out "$OUT/http-Q4_1"
kill $SERVER

$TS bias compare "$OUT/hf-Q4_1" "$OUT/hf-Q4_0" "$OUT/hf-Q2_K" "$OUT/http-Q4_1" \
    --out "$OUT/report" --n-boot 1000 --seed 0

#!/bin/bash
# The whole GLM-4V-9B (random weights of the real shapes: 40 decoder + 63 vision layers, 25.9 GiB
# of bf16) served by gateway + vision + worker on this machine with quantized weights, answering
# one image question (a 1120x1120 PNG, 1,602 feature rows). Reports per-process peak resident
# memory (VmHWM), vision time, time to first token (vision + prefill), decode ms/token.
# A benchmark, not a CI test: ~20-30 minutes on 2 cores, ~26 GiB of disk.
#   DTYPE=int8 tools/bench/whole_model_stack.sh        (DTYPE: int8, int4, fp8, bf16)
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK="${WORK:-/tmp/full}"
DTYPE="${DTYPE:-int8}"
TOKENS="${TOKENS:-9}"
PORT="${PORT_BASE:-52051}"
MODEL="$WORK/glm4v-9b"
bazel build -c opt //tools/make_checkpoint //tools/launcher:launch //tools/client:client \
  //tools/bench:cpu_kernels_bench
BIN="$(bazel info -c opt bazel-bin 2>/dev/null)"
echo "== floors (this run)"
"$BIN/tools/bench/cpu_kernels_bench" --iters=1 --only=none | sed -n '1,4p'
mkdir -p "$WORK"
if [[ ! -f "$MODEL/config.json" ]]; then
  "$BIN/tools/make_checkpoint/make_checkpoint" --out="$MODEL" --decoder_layers=40 --vision_layers=63
fi
# The tiny test tokenizer's ranks with GLM-4's special tokens at their real ids (151,329 + k).
TOK="$WORK/tokenizer"
mkdir -p "$TOK"
cp tests/data/tiny-glm4v/tokenizer/tokenizer.model "$TOK/"
python3 - "$TOK/tokenizer_config.json" <<'PY'
import json, sys
names = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>",
         "<|user|>", "<|assistant|>", "<|observation|>", "<|begin_of_image|>",
         "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>"]
added = {str(151329 + k): {"content": n, "special": True} for k, n in enumerate(names)}
json.dump({"added_tokens_decoder": added}, open(sys.argv[1], "w"))
PY
LOG_DIR="$WORK/logs-$DTYPE"
rm -rf "$LOG_DIR"; mkdir -p "$LOG_DIR"
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, weights $DTYPE"
START=$(date +%s.%N)
"$BIN/tools/launcher/launch" --bin_dir="$BIN" --model_dir="$MODEL" --tokenizer_path="$TOK/tokenizer.model" \
  --gateway_port="$PORT" --vision_port=$((PORT + 10)) --worker_port=$((PORT + 20)) \
  --gateway_metrics_port=$((PORT + 40)) --vision_metrics_port=$((PORT + 41)) \
  --worker_metrics_port=$((PORT + 42)) --startup_timeout_seconds=1200 \
  --vision_flags="--weight_dtype=$DTYPE --max_batch=1 --cache_entries=4" \
  --worker_flags="--weight_dtype=$DTYPE --kv_cache_bytes=$((512 << 20)) --max_num_batched_tokens=2048" \
  --gateway_flags="--vision_timeout_seconds=3000 --request_timeout_seconds=3600 --vision_feature_dtype=bfloat16" \
  --log_dir="$LOG_DIR" --drain_grace_seconds=5 >"$LOG_DIR/launcher.out" 2>"$LOG_DIR/launcher.log" &
LAUNCHER=$!
trap 'kill -TERM $LAUNCHER 2>/dev/null || true; wait $LAUNCHER 2>/dev/null || true' EXIT
until grep -q '^READY' "$LOG_DIR/launcher.out" 2>/dev/null; do
  kill -0 "$LAUNCHER" 2>/dev/null || { tail -n 30 "$LOG_DIR"/*.log; exit 1; }
  sleep 1
done
echo "stack up in $(echo "$(date +%s.%N) - $START" | bc) s"
hwm() {  # peak resident GiB of each serving process
  for name in gateway vision_server worker_server; do
    pid=$(pgrep -n -x "$name" || true)
    [[ -n "$pid" ]] && awk -v n="$name" '/VmHWM/{printf "%s peak RSS %.2f GiB\n", n, $2/1048576}' "/proc/$pid/status"
  done
}
echo "== after loading"; hwm
"$BIN/tools/client/client" --address="127.0.0.1:$PORT" --image=tests/data/real_width/image1120.png \
  --max_tokens="$TOKENS" --ignore_eos --show_ids --timeout_seconds=3600 "What is in this image?" \
  2>&1 | tee "$LOG_DIR/client.out"
echo "== after the image question"; hwm | tee "$LOG_DIR/hwm.txt"
grep -h "weights\|bytes" "$LOG_DIR"/*.log | grep -iv "warn" | head -20 || true

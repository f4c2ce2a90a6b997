#!/usr/bin/env bash
# The embedded demo: builds the stack, starts it on the tiny random-weight model, asks a question
# about a bundled image through the public gRPC API, prints the streamed answer, shuts down.
#
#   tools/demo.sh ["question"]
#
# Environment: BAZEL (default bazel), BAZEL_STARTUP_FLAGS (e.g. --output_base=...),
# BAZEL_BUILD_FLAGS (e.g. --symlink_prefix=/tmp/bz/), DEMO_PORT_BASE (default 50051: gateway on
# it, vision +10, worker +20, metrics on +40..+42).
set -euo pipefail

cd "$(dirname "$0")/.."
# A fresh Debian machine: install the Debian packages first (no-op when present).
bash tools/install_deps.sh
QUESTION="${1:-What is in this image?}"
BAZEL="${BAZEL:-bazel}"
read -r -a STARTUP <<<"${BAZEL_STARTUP_FLAGS:-}"
read -r -a BUILD <<<"${BAZEL_BUILD_FLAGS:-}"
PORT="${DEMO_PORT_BASE:-50051}"

echo "== building"
"$BAZEL" "${STARTUP[@]}" build "${BUILD[@]}" //tools/launcher:launch //tools/client:client
BIN="$("$BAZEL" "${STARTUP[@]}" info "${BUILD[@]}" bazel-bin 2>/dev/null)"

LOG_DIR="$(mktemp -d /tmp/glm4v-demo.XXXXXX)"
echo "== starting the stack (logs in $LOG_DIR)"
"$BIN/tools/launcher/launch" \
  --bin_dir="$BIN" \
  --model_dir=tests/data/tiny-glm4v/model \
  --tokenizer_path=tests/data/tiny-glm4v/tokenizer/tokenizer.model \
  --gateway_port="$PORT" --vision_port=$((PORT + 10)) --worker_port=$((PORT + 20)) \
  --gateway_metrics_port=$((PORT + 40)) --vision_metrics_port=$((PORT + 41)) \
  --worker_metrics_port=$((PORT + 42)) \
  --log_dir="$LOG_DIR" --drain_grace_seconds=5 >"$LOG_DIR/launcher.out" 2>"$LOG_DIR/launcher.log" &
LAUNCHER=$!
cleanup() {
  if kill -0 "$LAUNCHER" 2>/dev/null; then
    kill -TERM "$LAUNCHER" 2>/dev/null || true
    wait "$LAUNCHER" 2>/dev/null || true
  fi
}
trap cleanup EXIT

for _ in $(seq 1 600); do
  grep -q '^READY' "$LOG_DIR/launcher.out" 2>/dev/null && break
  if ! kill -0 "$LAUNCHER" 2>/dev/null; then
    echo "the stack failed to start:" >&2
    tail -n 20 "$LOG_DIR"/*.log >&2
    exit 1
  fi
  sleep 0.2
done
grep '^READY' "$LOG_DIR/launcher.out" || { echo "timed out waiting for the stack" >&2; exit 1; }

echo "== asking: $QUESTION  (image: tests/data/tiny-glm4v/image0.png)"
echo "   (the tiny model has random weights: the answer is arbitrary tokens)"
"$BIN/tools/client/client" --address="127.0.0.1:$PORT" \
  --image=tests/data/tiny-glm4v/image0.png --max_tokens=32 --ignore_eos "$QUESTION"

echo "== shutting down"
kill -TERM "$LAUNCHER"
wait "$LAUNCHER"
echo "== done"

#!/bin/bash
# Cache-aware routing against the previous affinity hash: the stack on loopback (tools/launcher:
# vision + 4 decoder workers + gateway, tiny model), once per --routing policy, under two
# workloads: "multiturn" (3 images, 6 conversations of 5 turns, a shared 300-word system prompt,
# every turn carrying its history) and "questions" (3 images, independent new questions about
# them, no system prompt). Reports prefix-cache hit tokens and TTFT p50/p99 from tools/loadgen.
# A benchmark, not a CI test: ~2-3 minutes on 2 cores.
#   tools/bench/routing_bench.sh       (POLICIES="cache_aware affinity_hash" RATE=8 PASSES=2)
set -euo pipefail
cd "$(dirname "$0")/../.."
POLICIES="${POLICIES:-cache_aware affinity_hash}"
RATE="${RATE:-8}"
PASSES="${PASSES:-2}"
bazel build -c opt //tools/launcher:launch //tools/loadgen
BIN="$(bazel info -c opt bazel-bin 2>/dev/null)"
echo "# $(date -u +%FT%TZ) $(nproc) cores; 4 workers; rate $RATE req/s; $PASSES passes"
images=tests/data/tiny-glm4v/image0.png,tests/data/tiny-glm4v/image1.png,tests/data/tiny-glm4v/image2.png
for policy in $POLICIES; do
  log=$(mktemp)
  port=$((52000 + RANDOM % 1000))
  "$BIN/tools/launcher/launch" --bin_dir="$BIN" --num_workers=4 --gateway_port=$port \
    --vision_port=$((port + 1)) --worker_port=$((port + 10)) --gateway_metrics_port=-1 \
    --vision_metrics_port=-1 --worker_metrics_port=-1 \
    --gateway_flags="--routing=$policy" > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 120); do grep -q READY "$log" && break; sleep 0.5; done
  grep -q READY "$log" || { cat "$log"; kill $pid; exit 1; }
 for workload in multiturn questions; do
    if [[ $workload == multiturn ]]; then shape="--conversations=6 --turns=5 --system_prompt_words=300"
    else shape="--conversations=3 --turns=1 --system_prompt_words=0"; fi
    echo "== --routing=$policy, $workload"
    "$BIN/tools/loadgen/loadgen" --target=127.0.0.1:$port --prompt_mode=chat $shape \
      --images=$images --output_len=16 --num_requests=$((30 * PASSES)) --request_rate="$RATE" \
      --arrival=constant | grep -E "requests|prefix-cache|input tokens|TTFT"
  done
  kill -TERM $pid; wait $pid || true
  rm -f "$log"
done

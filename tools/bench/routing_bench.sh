#!/bin/bash
# Cache-aware routing against the previous affinity hash: the stack on loopback (tools/launcher:
# vision + 4 decoder workers + gateway, tiny model), once per --routing policy, under two
# workloads: "multiturn" (3 images, 6 conversations of 5 turns, a shared 300-word system prompt,
# every turn carrying its history) and "questions" (3 images, independent new questions about
# them, no system prompt). Reports prefix-cache hit tokens and TTFT p50/p99 from tools/loadgen.
# A benchmark, not a CI test: ~2-3 minutes on 2 cores.
#   tools/bench/routing_bench.sh       (POLICIES="cache_aware affinity_hash" RATE=8 PASSES=2)
# GLM-4V-9B's real widths (1,602 feature rows per 1120x1120 image) with a few layers:
#   REAL_WIDTH=1 RATE=0.5 tools/bench/routing_bench.sh   (writes /tmp/routing-rw: 2+2 layers)
set -euo pipefail
cd "$(dirname "$0")/../.."
POLICIES="${POLICIES:-cache_aware affinity_hash}"
RATE="${RATE:-8}"
PASSES="${PASSES:-2}"
WORKLOADS="${WORKLOADS:-multiturn questions}"
bazel build -c opt //tools/launcher:launch //tools/loadgen //tools/make_checkpoint
BIN="$(bazel info -c opt bazel-bin 2>/dev/null)"
model_flags=()
images=tests/data/tiny-glm4v/image0.png,tests/data/tiny-glm4v/image1.png,tests/data/tiny-glm4v/image2.png
if [[ -n "${REAL_WIDTH:-}" ]]; then
  RW=/tmp/routing-rw
  mkdir -p $RW
  if [[ ! -f $RW/model/config.json ]]; then
    "$BIN/tools/make_checkpoint/make_checkpoint" --out=$RW/model --decoder_layers=2 --vision_layers=2
  fi
  mkdir -p $RW/tok
  cp tests/data/tiny-glm4v/tokenizer/tokenizer.model $RW/tok/
  python3 - $RW/tok/tokenizer_config.json <<'PY'
import json, sys
names = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>",
         "<|user|>", "<|assistant|>", "<|observation|>", "<|begin_of_image|>",
         "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>"]
added = {str(151329 + k): {"content": n, "special": True} for k, n in enumerate(names)}
json.dump({"added_tokens_decoder": added}, open(sys.argv[1], "w"))
PY
  /usr/bin/python3 - $RW <<'PY'
import sys
import numpy as np
from PIL import Image
for k in range(3):
    rng = np.random.default_rng(k)
    y, x = np.mgrid[0:1120, 0:1120].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(x / 180 + k), 128 + 80 * np.cos(y / 150 - k),
                    120 + 40 * rng.normal(size=(1120, 1120))], -1)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(f"{sys.argv[1]}/image{k}.png")
PY
  model_flags=(--model_dir=$RW/model --tokenizer_path=$RW/tok/tokenizer.model
               --startup_timeout_seconds=600
               "--worker_flags=--kv_cache_bytes=1073741824")
  images=$RW/image0.png,$RW/image1.png,$RW/image2.png
fi
echo "# $(date -u +%FT%TZ) $(nproc) cores; 4 workers; rate $RATE req/s; $PASSES passes${REAL_WIDTH:+; real widths, 2+2 layers}"
for policy in $POLICIES; do
  log=/tmp/routing-bench-$policy.log
  port=$((52000 + RANDOM % 1000))
  "$BIN/tools/launcher/launch" --bin_dir="$BIN" --num_workers=4 --gateway_port=$port \
    --vision_port=$((port + 1)) --worker_port=$((port + 10)) --gateway_metrics_port=-1 \
    --vision_metrics_port=-1 --worker_metrics_port=-1 \
    "${model_flags[@]}" \
    --gateway_flags="--routing=$policy --vision_timeout_seconds=600 --request_timeout_seconds=3600" \
    > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 1200); do grep -q READY "$log" && break; sleep 0.5; done
  grep -q READY "$log" || { cat "$log"; kill $pid; exit 1; }
  for workload in $WORKLOADS; do
    if [[ $workload == multiturn ]]; then shape="--conversations=6 --turns=5 --system_prompt_words=300"
    else shape="--conversations=3 --turns=1 --system_prompt_words=0"; fi
    echo "== --routing=$policy, $workload"
    "$BIN/tools/loadgen/loadgen" --target=127.0.0.1:$port --prompt_mode=chat $shape \
      --images=$images --output_len=16 --num_requests=$((30 * PASSES)) --request_rate="$RATE" \
      --arrival=constant --drain_timeout_s=3600 | grep -E "requests|prefix-cache|input tokens|TTFT|error"
  done
  kill -TERM $pid; wait $pid || true
  echo "(stack log: $log)"
done

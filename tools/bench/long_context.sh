#!/bin/bash
# Long-context prefill and decode on this machine with the tiny long model (tests/data/long-glm4:
# GLM-4-9B-chat-1M's layout and rope_ratio 500, 2 layers of width 64): prefill time and peak RSS
# for 32K and 128K-token prompts in chunks of 2,048 (memory must grow with the KV cache only,
# not with the context's attention), decode ms/token at that context, for an f32 and a bf16 KV
# cache. A benchmark, not a CI test: ~5 minutes on 2 cores.
#   tools/bench/long_context.sh              (LENGTHS="32768 131072" CHUNK=2048 by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
LENGTHS="${LENGTHS:-32768 131072}"
CHUNK="${CHUNK:-2048}"
bazel build -c opt //tools/generate //tools/bench:cpu_kernels_bench
BIN="$(bazel info -c opt bazel-bin 2>/dev/null)"
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
echo "== floors (this run)"
"$BIN/tools/bench/cpu_kernels_bench" --iters=1 --only=none | sed -n '1,4p'
for kv in f32 bf16; do
  for n in $LENGTHS; do
    echo "== prompt $n tokens, KV $kv"
    "$BIN/tools/generate/generate" --model_dir=tests/data/long-glm4/model \
      --synthetic_prompt_tokens="$n" --prefill_chunk="$CHUNK" --max_new_tokens=9 --ignore_eos \
      --kv_dtype="$kv" 2>&1 | grep -E "^prefill|^prompt"
  done
done

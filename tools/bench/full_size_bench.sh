#!/usr/bin/env bash
# Full-size CPU benchmark on this machine with random-weight checkpoints of GLM-4V-9B's real
# shapes written by the project (tools/make_checkpoint, bf16, constant memory):
#  1. the machine's floors in the same run: read bandwidth, OpenBLAS sgemm and oneDNN bf16 rates
#     (//tools/bench:cpu_kernels_bench);
#  2. GLM-4-9B's text decoder at full depth (40 layers, 17.5 GiB of bf16: the decoder of
#     GLM-4V-9B and of GLM-4-9B-chat): load time and peak RSS, prefill tokens/s for a 512-token
#     prompt, decode ms/token (33 tokens less 1, so the prefill cancels);
#  3. the vision tower at full depth (63 layers) for one 1120x1120 image, with the products
#     GLM4V_CPU_MATMUL asks for (f32 by default; bf16 = bf16 activations through oneDNN,
#     kernels/cpu/onednn_matmul.h), then the floors again (the VM's bandwidth drifts);
#  4. between 2 and 3: the decoder with int8 and int4 weights quantized at load
#     (--weight_dtype; QUANTIZED="int8" to run one): load (= quantization) time, RSS, decode,
#     prefill.
#
#   tools/bench/full_size_bench.sh [work_dir]     # default /tmp/glm4v-full-bench
#
# Needs ~19 GB of disk for the text checkpoint and ~12 GB for the vision one (kept in work_dir
# for reruns) and ~20 GB of memory. Takes ~15 minutes on 2 cores, most of it the vision tower.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK="${1:-/tmp/glm4v-full-bench}"
SKIP_VISION="${SKIP_VISION:-0}"
mkdir -p "$WORK"
bazel build -c opt //tools/make_checkpoint //tools/generate //tools/bench:cpu_kernels_bench
BIN="$(bazel info -c opt bazel-bin 2>/dev/null)"

echo "== floors"
"$BIN/tools/bench/cpu_kernels_bench" --iters=1 --vision_attention=false | sed -n '1,4p'

ids() {  # n ordinary token ids, comma-separated, in GLM-4's chat layout
  local n=$1 out="151331,151333,151336,198"
  for ((i = 0; i < n - 5; ++i)); do out+=",$((1000 + (i * 7919) % 140000))"; done
  echo "$out,151337"
}
run() {  # prints generate's timing line and the peak RSS
  /usr/bin/time -f "peak RSS %M KiB" "$BIN/tools/generate/generate" "$@" 2>&1 >/dev/null |
    grep -E "^prompt|^peak RSS" | tr '\n' ' '
  echo
}

TEXT="$WORK/glm4-9b-40"
if [ ! -f "$TEXT/model.safetensors.index.json" ]; then
  echo "== writing the 40-layer decoder checkpoint"
  "$BIN/tools/make_checkpoint/make_checkpoint" --out="$TEXT" --decoder_layers=40 --vision_layers=1
fi
du -sh "$TEXT"
echo "== text decoder, 40 layers (weights read in place from the mapped file)"
echo "cold start (page cache dropped):"
sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || echo "(cannot drop caches: not root)"
run --model_dir="$TEXT" --prompt_ids="$(ids 9)" --max_new_tokens=1 --ignore_eos
echo "decode, 1 then 33 new tokens after a 9-token prompt:"
run --model_dir="$TEXT" --prompt_ids="$(ids 9)" --max_new_tokens=1 --ignore_eos
run --model_dir="$TEXT" --prompt_ids="$(ids 9)" --max_new_tokens=33 --ignore_eos
echo "prefill, a 512-token prompt and 1 new token (f32 products, then bf16 activations):"
GLM4V_CPU_MATMUL=f32 run --model_dir="$TEXT" --prompt_ids="$(ids 512)" --max_new_tokens=1 --ignore_eos
GLM4V_CPU_MATMUL=bf16 run --model_dir="$TEXT" --prompt_ids="$(ids 512)" --max_new_tokens=1 --ignore_eos

echo "prefill and decode with weights quantized at load (int8, int4; LM head bf16):"
for dtype in ${QUANTIZED:-int8 int4}; do
  echo "-- $dtype"
  run --model_dir="$TEXT" --prompt_ids="$(ids 9)" --max_new_tokens=1 --ignore_eos --weight_dtype=$dtype
  run --model_dir="$TEXT" --prompt_ids="$(ids 9)" --max_new_tokens=33 --ignore_eos --weight_dtype=$dtype
  run --model_dir="$TEXT" --prompt_ids="$(ids 512)" --max_new_tokens=1 --ignore_eos --weight_dtype=$dtype
done

if [ "$SKIP_VISION" != 1 ]; then
  VISION="$WORK/glm4v-9b-vision63"
  if [ ! -f "$VISION/model.safetensors.index.json" ]; then
    echo "== writing the 63-layer vision checkpoint (1 decoder layer)"
    "$BIN/tools/make_checkpoint/make_checkpoint" --out="$VISION" --decoder_layers=1 --vision_layers=63
  fi
  IMAGE="$WORK/image1120.png"
  cp tests/data/real_width/image1120.png "$IMAGE"
  echo "== vision tower, 63 layers, one 1120x1120 image (GLM4V_CPU_MATMUL=${GLM4V_CPU_MATMUL:-f32})"
  run --model_dir="$VISION" --image="$IMAGE" --prompt_ids=151331,151333,151336,198,151339,151329,151340,3838,374,419,30,151337 \
    --max_new_tokens=1 --ignore_eos
fi
echo "== floors after"
"$BIN/tools/bench/cpu_kernels_bench" --iters=1 --vision_attention=false | sed -n '1,4p'

#!/usr/bin/env bash
# Builds the libFuzzer entry points with clang (-fsanitize=fuzzer,address,undefined) straight from
# the sources (outside Bazel: g++ has no libFuzzer) and fuzzes each for a bounded time.
#
#   tools/fuzz.sh [NAME...]        NAME: image_decode openai_request safetensors (default: all)
#
# Environment:
#   FUZZ_SECONDS    seconds per fuzzer (default 20)
#   FUZZ_BUILD_DIR  objects, binaries, corpora, crash artifacts (default ${TMPDIR:-/tmp}/glm4v-fuzz)
#   FUZZ_XML_DIR    if set, writes FUZZ_XML_DIR/<name>/test.xml (JUnit, one testcase per fuzzer)
#                   for tools/summarize_test_xml.py
#   CLANGXX         compiler (default clang++)
#
# Exits non-zero when a build fails or a fuzzer finds a crash, leak, sanitizer report, timeout
# (-timeout=5) or OOM (-rss_limit_mb=2048); prints the reproducer path and how to replay it.
# Needs clang and libclang-rt-14-dev (tools/install_deps.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${FUZZ_SECONDS:-20}
BUILD=${FUZZ_BUILD_DIR:-${TMPDIR:-/tmp}/glm4v-fuzz}
CXX=${CLANGXX:-clang++}
JOBS=$(nproc 2>/dev/null || echo 2)
ALL=(image_decode openai_request safetensors)
if [ $# -gt 0 ]; then NAMES=("$@"); else NAMES=("${ALL[@]}"); fi

if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "fuzz.sh: $CXX not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
mkdir -p "$BUILD/obj" "$BUILD/gen" "$BUILD/bin"

# Instrumented project code; system libraries (libpng, libjpeg, protobuf, absl) are not.
SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CXXFLAGS="-std=c++17 -O1 -g $SAN -I$ROOT -I$BUILD/gen -Wno-unused-command-line-argument"
ABSL_LIBS=$(sed -n '/^ABSL_LIBS = \[/,/^\]/p' third_party/system.BUILD | grep -o '"-l[^"]*"' | tr -d '"' | tr '\n' ' ')

sources() {
  case "$1" in
    image_decode)
      echo services/vision/image/{image_decode_fuzzer,image_decoder,image_format,png_decoder,jpeg_decoder,preprocess,bicubic_resize,resample_kernels,jpeg_band_pipeline,clip_normalize}.cc \
        kernels/cpu/{parallel,simd_level}.cc ;;
    openai_request)
      echo services/gateway/openai/{openai_request_fuzzer,chat_request,chat_response,completion_request,request_fields,glm4_tools,openai_error,data_url}.cc \
        services/gateway/tokenizer/bpe_ranks.cc "$BUILD/gen/protos/glm4v/v1/glm4v.pb.cc" ;;
    safetensors)
      echo common/{safetensors_fuzzer,safetensors,tensor,dtype}.cc ;;
    *) return 1 ;;
  esac
}
libs() {
  case "$1" in
    image_decode) echo "-lpng16 -ljpeg -lz -lpthread $ABSL_LIBS" ;;
    openai_request) echo "-lgrpc++ -lgrpc -lgpr -lprotobuf $ABSL_LIBS" ;;
    safetensors) echo "$ABSL_LIBS" ;;
  esac
}

# ---- seed corpora (from the repo, plus a few small hand-written inputs) ----
seed_corpus() {
  local name=$1 dir=$BUILD/seeds/$1
  rm -rf "$dir" && mkdir -p "$dir"
  case "$name" in
    image_decode)
      cp tests/data/tiny-glm4v/*.png tests/data/tiny-glm4v/*.jpg "$dir/" ;;
    openai_request)
      local i=0
      while IFS= read -r line; do
        i=$((i + 1)); printf '%s' "$line" > "$dir/req$i.json"
      done <<'EOF'
{"model":"glm-4v-9b","messages":[{"role":"user","content":"hi"}]}
{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"what"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":16,"temperature":0.7,"top_p":0.9,"top_k":5,"seed":42,"stop":["\n","</s>"],"logprobs":true,"top_logprobs":3}
{"messages":[{"role":"assistant","content":null},{"role":"tool","content":"ok"}],"n":1,"frequency_penalty":0,"presence_penalty":0.0,"repetition_penalty":1.2}
{"messages":[{"role":"user","content":[{"type":"image_url","image_url":"https://x/y.png"}]}]}
{"messages":[{"role":"user","content":"\u00e9\ud83d\ude00"}],"stop":"x","max_completion_tokens":3}
data:image/jpeg;base64,/9j/4AAQSkZJRg==
EOF
      ;;
    safetensors)
      python3 - "$dir" <<'EOF'
import json, struct, sys
d = sys.argv[1]
def write(name, header, data):
    h = json.dumps(header, separators=(",", ":")).encode()
    open(f"{d}/{name}", "wb").write(struct.pack("<Q", len(h)) + h + data)
write("two.safetensors", {"__metadata__": {"format": "pt"},
      "a": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]},
      "b": {"dtype": "F32", "shape": [4], "data_offsets": [12, 28]}}, bytes(range(28)))
write("dtypes.safetensors", {"h": {"dtype": "F16", "shape": [3, 1], "data_offsets": [0, 6]},
      "i": {"dtype": "I64", "shape": [], "data_offsets": [6, 14]},
      "z": {"dtype": "F32", "shape": [0, 5], "data_offsets": [14, 14]}}, bytes(14))
write("empty.safetensors", {}, b"")
EOF
      # The tiny checkpoint's real shard (libFuzzer truncates it to -max_len).
      cp tests/data/tiny-glm4v/model/model-00002-of-00002.safetensors "$dir/shard.safetensors" ;;
  esac
}
max_len() {
  case "$1" in
    image_decode) echo 65536 ;;
    openai_request) echo 8192 ;;
    safetensors) echo 16384 ;;
  esac
}

# ---- build ----
build_one() {
  local name=$1 objs=() src obj
  local srcs
  srcs=$(sources "$name") || { echo "unknown fuzzer: $name" >&2; return 1; }
  if [ "$name" = openai_request ] && [ ! -f "$BUILD/gen/protos/glm4v/v1/glm4v.pb.cc" -o \
       protos/glm4v/v1/glm4v.proto -nt "$BUILD/gen/protos/glm4v/v1/glm4v.pb.cc" ]; then
    protoc -I. --cpp_out="$BUILD/gen" protos/glm4v/v1/glm4v.proto || return 1
  fi
  # Compile (in parallel; objects are reused when newer than their source and every header).
  local newest_hdr
  newest_hdr=$(find common services protos "$BUILD/gen" -name '*.h' -newer "$BUILD/bin/.stamp_$name" 2>/dev/null | head -1)
  for src in $srcs; do objs+=("$BUILD/obj/$(echo "${src#"$BUILD"/}" | tr / _).o"); done
  for src in $srcs; do
    obj=$BUILD/obj/$(echo "${src#"$BUILD"/}" | tr / _).o
    if [ -n "$newest_hdr" ] || [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ ! -f "$BUILD/bin/.stamp_$name" ]; then
      echo "$src $obj"
    fi
  done | xargs -r -n 2 -P "$JOBS" sh -c "$CXX $CXXFLAGS -c \"\$0\" -o \"\$1\" || exit 255" || return 1
  # shellcheck disable=SC2046
  $CXX $SAN "${objs[@]}" -o "$BUILD/bin/${name}_fuzzer" $(libs "$name") || return 1
  touch "$BUILD/bin/.stamp_$name"
}

write_xml() {  # name, passed(0/1), seconds, message
  [ -n "${FUZZ_XML_DIR:-}" ] || return 0
  local dir=$FUZZ_XML_DIR/$1 msg
  mkdir -p "$dir"
  msg=$(printf '%s' "$4" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/"/\&quot;/g')
  {
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo "<testsuites><testsuite name=\"fuzz\" tests=\"1\" failures=\"$((1 - $2))\">"
    echo "<testcase classname=\"fuzz\" name=\"$1\" time=\"$3\">"
    if [ "$2" = 0 ]; then echo "<failure message=\"$msg\"/>"; fi
    echo "</testcase></testsuite></testsuites>"
  } > "$dir/test.xml"
}

status=0
for name in "${NAMES[@]}"; do
  log=$BUILD/$name.build.log
  echo "=== fuzz $name: building"
  if ! build_one "$name" > "$log" 2>&1; then
    tail -30 "$log"
    echo "FUZZ BUILD FAILED: $name (log: $log)"
    write_xml "$name" 0 0 "build failed; see $log"
    status=1
    continue
  fi
  seed_corpus "$name"
  corpus=$BUILD/corpus/$name   # grows across local runs; seeds are read from the repo every time
  artifacts=$BUILD/artifacts/$name
  mkdir -p "$corpus" "$artifacts"
  rm -f "$artifacts"/*
  rm -rf "$BUILD"/safetensors_fuzz.*
  echo "=== fuzz $name: ${SECONDS_EACH}s"
  start=$(date +%s)
  # The fuzzers write temp files (safetensors) under TMPDIR; keep them inside the build dir.
  TMPDIR=$BUILD UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    "$BUILD/bin/${name}_fuzzer" "$corpus" "$BUILD/seeds/$name" \
      -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$name")" -timeout=5 \
      -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" > "$BUILD/$name.log" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "$BUILD/$name.log" | tr '\n' ' '
  echo
  if [ $rc -eq 0 ]; then
    echo "=== fuzz $name: PASSED (${elapsed}s)"
    write_xml "$name" 1 "$elapsed" ""
  else
    status=1
    repro=$(ls -t "$artifacts"/* 2>/dev/null | head -1)
    grep -E -A25 '^==[0-9]+==ERROR|runtime error|deadly signal|ERROR: libFuzzer' "$BUILD/$name.log" | head -60
    echo "=== fuzz $name: FAILED (exit $rc); full log: $BUILD/$name.log"
    echo "reproducer: ${repro:-none written}"
    [ -n "$repro" ] && echo "replay: $BUILD/bin/${name}_fuzzer $repro"
    write_xml "$name" 0 "$elapsed" "fuzzer exit $rc; reproducer: ${repro:-none}; log: $BUILD/$name.log"
  fi
done
exit $status

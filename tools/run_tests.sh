#!/usr/bin/env bash
# Builds everything and runs every test; ends with "N passed, N failed[, N skipped]" counted over
# individual test cases (gtest XML reports). Extra arguments go to `bazel test`.
set -uo pipefail
cd "$(dirname "$0")/.."
# A fresh Debian machine: install the Debian packages first (no-op when present).
bash tools/install_deps.sh

status=0
bazel build //... || status=$?
if [ $status -ne 0 ]; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi
# Unit tests in parallel; then the multi-process stack tests one at a time, so their timing
# assertions (fail-fast, drain, overload latency) are not measured on an oversubscribed machine.
bazel test --keep_going --test_tag_filters=-integration,-reliability //... "$@" || status=$?
bazel test --keep_going --test_tag_filters=integration,reliability --local_test_jobs=1 \
  //... "$@" || status=$?

# Unit tests tagged "asan" run again under AddressSanitizer + LeakSanitizer + UBSan (--config=asan:
# -O1, UBSan findings abort): parser-facing code (safetensors, config, metrics, request
# validation, OpenAI JSON, feature codec), the tokenizer, the image pipeline, and the model,
# CPU kernels, engine (scheduler, block manager, sampler), communicator and TP unit tests. Not
# tagged: the multi-process integration/reliability tests, CUDA/NCCL tests, and tests that start
# gRPC servers. Cold, the asan build takes about 13 CPU-minutes (about 7 minutes on 2 cores,
# 4 to 5 of those CPU-minutes for the model, kernels and worker tests); the tests run in seconds.
ASAN_TARGETS=$(bazel query 'attr(tags, "asan", tests(//...))' 2>/dev/null | tr '\n' ' ')
asan_status=0
SAN_XML_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sanitizer-xml.XXXXXX")
if [ -n "$ASAN_TARGETS" ]; then
  bazel test --config=asan --keep_going $ASAN_TARGETS || asan_status=$?
  # LeakSanitizer reports at exit, after gtest wrote a passing XML report: count every target
  # whose log has a sanitizer report but whose XML has no failure as one failed test case.
  ASAN_LOGS=$(bazel info --config=asan bazel-testlogs 2>/dev/null)
  for t in $ASAN_TARGETS; do
    dir=$ASAN_LOGS/$(echo "${t#//}" | tr : /)
    if grep -qE '^SUMMARY: [A-Za-z]+Sanitizer' "$dir/test.log" 2>/dev/null && \
       ! grep -qE '<(failure|error)' "$dir/test.xml" 2>/dev/null; then
      asan_status=1
      mkdir -p "$SAN_XML_DIR/${t#//}"
      printf '%s\n' '<?xml version="1.0" encoding="UTF-8"?>' \
        "<testsuites><testsuite name=\"sanitizer\" tests=\"1\" failures=\"1\">" \
        "<testcase classname=\"sanitizer\" name=\"$t\"><failure message=\"sanitizer report in $dir/test.log\"/></testcase>" \
        "</testsuite></testsuites>" > "$SAN_XML_DIR/${t#//}/test.xml"
      grep -E -B2 -A20 '^==[0-9]+==ERROR' "$dir/test.log" | head -40
    fi
  done
fi

# Coverage-guided fuzzing (libFuzzer + ASan/UBSan, clang) of the HTTP/JSON request parser, the
# image decoders and the safetensors parser: ${FUZZ_SECONDS:-20} s each (about 1.5 minutes with
# the clang build). One JUnit test case per fuzzer; a crash fails it and prints the reproducer.
FUZZ_XML_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-xml.XXXXXX")
fuzz_status=0
FUZZ_SECONDS=${FUZZ_SECONDS:-20} FUZZ_XML_DIR=$FUZZ_XML_DIR bash tools/fuzz.sh || fuzz_status=$?

LOG_DIRS=("$(bazel info bazel-testlogs 2>/dev/null)")
if [ -n "$ASAN_TARGETS" ]; then LOG_DIRS+=("$(bazel info --config=asan bazel-testlogs 2>/dev/null)"); fi
LOG_DIRS+=("$SAN_XML_DIR" "$FUZZ_XML_DIR")
python3 tools/summarize_test_xml.py "${LOG_DIRS[@]}"
sum_status=$?
if [ $status -ne 0 ] || [ $asan_status -ne 0 ] || [ $fuzz_status -ne 0 ] || [ $sum_status -ne 0 ]; then
  exit 1
fi
exit 0

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

# Parser-facing code (safetensors, config, metrics, request validation, OpenAI JSON, feature
# codec), the tokenizer and the image pipeline also run under AddressSanitizer + UBSan (the tests
# tagged "asan"). Every unit test under ASan would not fit the CI budget: the cold dbg build of
# the model, kernels and engine alone took over 15 minutes on 2 cores.
ASAN_TARGETS=$(bazel query 'attr(tags, "asan", tests(//...))' 2>/dev/null | tr '\n' ' ')
asan_status=0
if [ -n "$ASAN_TARGETS" ]; then
  bazel test --config=asan --keep_going $ASAN_TARGETS || asan_status=$?
fi

# Coverage-guided fuzzing (libFuzzer + ASan/UBSan, clang) of the HTTP/JSON request parser, the
# image decoders and the safetensors parser: ${FUZZ_SECONDS:-20} s each (about 1.5 minutes with
# the clang build). One JUnit test case per fuzzer; a crash fails it and prints the reproducer.
FUZZ_XML_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-xml.XXXXXX")
fuzz_status=0
FUZZ_SECONDS=${FUZZ_SECONDS:-20} FUZZ_XML_DIR=$FUZZ_XML_DIR bash tools/fuzz.sh || fuzz_status=$?

LOG_DIRS=("$(bazel info bazel-testlogs 2>/dev/null)")
if [ -n "$ASAN_TARGETS" ]; then LOG_DIRS+=("$(bazel info --config=asan bazel-testlogs 2>/dev/null)"); fi
LOG_DIRS+=("$FUZZ_XML_DIR")
python3 tools/summarize_test_xml.py "${LOG_DIRS[@]}"
sum_status=$?
if [ $status -ne 0 ] || [ $asan_status -ne 0 ] || [ $fuzz_status -ne 0 ] || [ $sum_status -ne 0 ]; then
  exit 1
fi
exit 0

#!/usr/bin/env bash
# Builds everything and runs every test; ends with "N passed, N failed[, N skipped]" counted over
# individual test cases (gtest XML reports). Extra arguments go to `bazel test`.
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
bazel build //... || status=$?
if [ $status -ne 0 ]; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi
bazel test --keep_going //... "$@" || status=$?

# Parser-facing code also runs under AddressSanitizer + UBSan.
ASAN_TARGETS=$(bazel query 'attr(tags, "asan", tests(//...))' 2>/dev/null | tr '\n' ' ')
asan_status=0
if [ -n "$ASAN_TARGETS" ]; then
  bazel test --config=asan --keep_going $ASAN_TARGETS || asan_status=$?
fi

python3 tools/summarize_test_xml.py "$(bazel info bazel-testlogs 2>/dev/null)"
sum_status=$?
if [ $status -ne 0 ] || [ $asan_status -ne 0 ] || [ $sum_status -ne 0 ]; then
  exit 1
fi
exit 0

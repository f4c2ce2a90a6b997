#!/usr/bin/env bash
# Bazel entry point of prometheus_test.py: the source tree as deploy_test.sh finds it, the
# binaries from this test's runfiles.
set -euo pipefail
self="tests/deploy/prometheus_test.py"
runfiles="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-glm4v_serving}"
if [[ -n "${TEST_SRCDIR:-}" && -e "$runfiles/$self" ]]; then
  script="$(readlink -f "$runfiles/$self")"
else
  script="$(readlink -f "$(dirname "${BASH_SOURCE[0]}")/prometheus_test.py")"
  runfiles="$(cd "$(dirname "$script")/../.." && pwd)/bazel-bin"
fi
root="$(cd "$(dirname "$script")/../.." && pwd)"
exec python3 "$script" --root "$root" --bin_dir "$runfiles" "$@"

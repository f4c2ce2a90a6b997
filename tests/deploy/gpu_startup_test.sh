#!/usr/bin/env bash
# Bazel entry point of gpu_startup_test.py (finds the source tree as deploy_test.sh does; the
# binaries come as arguments from the BUILD rule).
set -euo pipefail
self="tests/deploy/gpu_startup_test.py"
if [[ -n "${TEST_SRCDIR:-}" && -e "$TEST_SRCDIR/${TEST_WORKSPACE:-glm4v_serving}/$self" ]]; then
  script="$(readlink -f "$TEST_SRCDIR/${TEST_WORKSPACE:-glm4v_serving}/$self")"
else
  script="$(readlink -f "$(dirname "${BASH_SOURCE[0]}")/gpu_startup_test.py")"
fi
root="$(cd "$(dirname "$script")/../.." && pwd)"
exec python3 "$script" --root "$root" "$@"

#!/usr/bin/env bash
# Bazel entry point of check_deploy.py: finds the workspace (source tree) through the runfiles
# symlink of check_deploy.py and runs the checker on it. Also runnable by hand from anywhere.
set -euo pipefail
self="tests/deploy/check_deploy.py"
if [[ -n "${TEST_SRCDIR:-}" && -e "$TEST_SRCDIR/${TEST_WORKSPACE:-glm4v_serving}/$self" ]]; then
  checker="$(readlink -f "$TEST_SRCDIR/${TEST_WORKSPACE:-glm4v_serving}/$self")"
else
  checker="$(readlink -f "$(dirname "${BASH_SOURCE[0]}")/check_deploy.py")"
fi
root="$(cd "$(dirname "$checker")/../.." && pwd)"
if [[ ! -f "$root/WORKSPACE" || ! -d "$root/k8s" ]]; then
  echo "deploy_test: cannot locate the source tree (got $root); run with --spawn_strategy=local" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "deploy_test: python3 not found" >&2; exit 1; }
exec python3 "$checker" --root "$root" "$@"

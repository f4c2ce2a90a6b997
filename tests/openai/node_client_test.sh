#!/usr/bin/env bash
# The official `openai` npm client against the gateway's HTTP port on the tiny model.
# node_modules comes from `npm ci` in tests/openai/node (tools/install_deps.sh runs it).
set -euo pipefail
script="$(readlink -f tests/openai/node/chat_test.mjs)"
node_dir="$(dirname "$script")"
if ! command -v node >/dev/null 2>&1; then
  echo "FAIL: node is not installed (need Node.js >= 18)" >&2
  exit 1
fi
if [ ! -f "$node_dir/node_modules/openai/package.json" ]; then
  echo "FAIL: $node_dir/node_modules is missing: run 'npm ci --prefix $node_dir' (tools/install_deps.sh does)" >&2
  exit 1
fi
exec tests/openai/stack_runner -- "$(command -v node)" "$script" \
  "--base_url=http://127.0.0.1:{http_port}/v1" \
  "--image=$(readlink -f tests/data/tiny-glm4v/image0.png)"

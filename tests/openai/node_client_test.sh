#!/usr/bin/env bash
# The official `openai` npm client against the gateway's HTTP port: the tiny GLM-4V model behind
# an API key (chat, completions, n, penalties, keys), then a text-only GLM-4-9B-chat layout
# model for tools. node_modules comes from `npm ci` in tests/openai/node (tools/install_deps.sh).
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
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
echo "sk-node-client-key-0001 id=node" > "$tmp/keys"
tests/openai/stack_runner "--gateway_flag=--api_keys_file=$tmp/keys" -- \
  "$(command -v node)" "$script" \
  "--base_url=http://127.0.0.1:{http_port}/v1" \
  "--image=$(readlink -f tests/data/tiny-glm4v/image0.png)" \
  "--api_key=sk-node-client-key-0001"
exec tests/openai/stack_runner --model_dir=tests/data/long-glm4/model --no_vision -- \
  "$(command -v node)" "$node_dir/tools_test.mjs" "--base_url=http://127.0.0.1:{http_port}/v1"

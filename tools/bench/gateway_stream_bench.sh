#!/usr/bin/env bash
# The gateway's streaming capacity: 256 concurrent GenerateStream calls through the real stack
# (tests/stack: vision + worker + gateway as processes, the tiny model), then the gateway
# process's own CPU time per streamed token (from /proc), i.e. streamed tokens/s per core.
#   tools/bench/gateway_stream_bench.sh [REQUESTS] [OUTPUT_LEN] [CONCURRENCY]
# EDGE=1: the public edge locked down as in the gpu-* overlays: the client calls over TLS with
# an API key, the gateway calls vision and worker over mutual TLS (certificates made by
# tests/tls/make_test_certs.sh); compare with a run without it.
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS=${1:-512}
OUTPUT_LEN=${2:-256}
CONCURRENCY=${3:-256}
# The node client test carries the stack runner and the three servers in its runfiles.
bazel build -c opt //tools/loadgen //tests/openai:node_client_test >/dev/null 2>&1
WORKSPACE=$PWD
STACK_FLAGS=()
CLIENT_FLAGS=""
if [ "${EDGE:-0}" = 1 ]; then
  CERTS=$(mktemp -d "${TMPDIR:-/tmp}/edge-bench.XXXXXX")
  trap 'rm -rf "$CERTS"' EXIT
  bash tests/tls/make_test_certs.sh "$CERTS"
  echo "sk-bench-0123456789abcdef id=bench" > "$CERTS/api_keys"
  echo "sk-bench-0123456789abcdef" > "$CERTS/key"
  internal=(--tls_cert=$CERTS/server.pem --tls_key=$CERTS/server.key --tls_ca=$CERTS/ca.pem)
  for f in "${internal[@]}"; do STACK_FLAGS+=("--worker_flag=$f" "--vision_flag=$f"); done
  for f in --api_keys_file=$CERTS/api_keys --tls_cert=$CERTS/server.pem \
           --tls_key=$CERTS/server.key --backend_tls_ca=$CERTS/ca.pem \
           --backend_tls_cert=$CERTS/client.pem --backend_tls_key=$CERTS/client.key; do
    STACK_FLAGS+=("--gateway_flag=$f")
  done
  STACK_FLAGS+=(--backend_tls_ca=$CERTS/ca.pem --backend_tls_cert=$CERTS/client.pem
                --backend_tls_key=$CERTS/client.key)
  CLIENT_FLAGS="--tls_ca=$CERTS/ca.pem --api_key_file=$CERTS/key"
fi
cd bazel-bin/tests/openai/node_client_test.runfiles/glm4v_serving
./tests/openai/stack_runner ${STACK_FLAGS[@]+"${STACK_FLAGS[@]}"} -- /bin/bash -c '
  set -e
  cpu() { awk "{print \$14 + \$15}" /proc/$1/stat; }
  gw=$(pgrep -x gateway | head -1)
  before=$(cpu $gw)
  if [ -n "${GATEWAY_PERF:-}" ]; then perf record -g -p $gw -o "$GATEWAY_PERF" -- sleep 8 >/dev/null 2>&1 & fi
  '"$WORKSPACE"'/bazel-bin/tools/loadgen/loadgen --target={grpc_address} '"$CLIENT_FLAGS"' \
      --num_requests='"$REQUESTS"' --request_rate=0 --max_concurrency='"$CONCURRENCY"' \
      --input_len=16 --output_len='"$OUTPUT_LEN"' --model_dir=tests/data/tiny-glm4v/model \
      --report_json=/tmp/gateway_stream_bench.json | tail -12
  after=$(cpu $gw)
  tokens=$(( '"$REQUESTS"' * '"$OUTPUT_LEN"' ))
  hz=$(getconf CLK_TCK)
  awk -v t=$tokens -v c=$(( after - before )) -v hz=$hz "BEGIN {
    s = c / hz; printf \"gateway CPU: %.2f s for %d streamed tokens = %.1f us/token = %.0f tokens/s per core\n\", s, t, s * 1e6 / t, t / s }"
'

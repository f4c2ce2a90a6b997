#!/usr/bin/env bash
# The gateway's streaming capacity: 256 concurrent GenerateStream calls through the real stack
# (tests/stack: vision + worker + gateway as processes, the tiny model), then the gateway
# process's own CPU time per streamed token (from /proc), i.e. streamed tokens/s per core.
#   tools/bench/gateway_stream_bench.sh [REQUESTS] [OUTPUT_LEN] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS=${1:-512}
OUTPUT_LEN=${2:-256}
CONCURRENCY=${3:-256}
# The node client test carries the stack runner and the three servers in its runfiles.
bazel build -c opt //tools/loadgen //tests/openai:node_client_test >/dev/null 2>&1
WORKSPACE=$PWD
cd bazel-bin/tests/openai/node_client_test.runfiles/glm4v_serving
./tests/openai/stack_runner -- /bin/bash -c '
  set -e
  cpu() { awk "{print \$14 + \$15}" /proc/$1/stat; }
  gw=$(pgrep -x gateway | head -1)
  before=$(cpu $gw)
  if [ -n "${GATEWAY_PERF:-}" ]; then perf record -g -p $gw -o "$GATEWAY_PERF" -- sleep 8 >/dev/null 2>&1 & fi
  '"$WORKSPACE"'/bazel-bin/tools/loadgen/loadgen --target={grpc_address} \
      --num_requests='"$REQUESTS"' --request_rate=0 --max_concurrency='"$CONCURRENCY"' \
      --input_len=16 --output_len='"$OUTPUT_LEN"' --model_dir=tests/data/tiny-glm4v/model \
      --report_json=/tmp/gateway_stream_bench.json | tail -12
  after=$(cpu $gw)
  tokens=$(( '"$REQUESTS"' * '"$OUTPUT_LEN"' ))
  hz=$(getconf CLK_TCK)
  awk -v t=$tokens -v c=$(( after - before )) -v hz=$hz "BEGIN {
    s = c / hz; printf \"gateway CPU: %.2f s for %d streamed tokens = %.1f us/token = %.0f tokens/s per core\n\", s, t, s * 1e6 / t, t / s }"
'

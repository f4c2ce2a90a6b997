#!/usr/bin/env bash
# Debian's python3-grpcio against the gateway's gRPC port over TLS with an API key.
set -euo pipefail
if ! /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null; then
  echo "FAIL: python3-grpcio / python3-protobuf are not installed (tools/install_deps.sh)" >&2
  exit 1
fi
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
bash tests/tls/make_test_certs.sh "$tmp/certs"
echo "sk-grpcio-test-key-0001 id=grpcio" > "$tmp/keys"
protoc -I. --include_imports -o "$tmp/glm4v.desc" protos/glm4v/v1/glm4v.proto
c="$tmp/certs"
# TLS on every hop: the gateway's public port, mutual TLS to vision and the worker (and this
# runner's own health probes, which present the client certificate).
internal=()
for service in worker vision; do
  internal+=("--${service}_flag=--tls_cert=$c/server.pem" "--${service}_flag=--tls_key=$c/server.key"
             "--${service}_flag=--tls_ca=$c/ca.pem")
done
exec tests/openai/stack_runner "${internal[@]}" \
  "--gateway_flag=--api_keys_file=$tmp/keys" \
  "--gateway_flag=--tls_cert=$c/server.pem" "--gateway_flag=--tls_key=$c/server.key" \
  "--gateway_flag=--backend_tls_ca=$c/ca.pem" \
  "--gateway_flag=--backend_tls_cert=$c/client.pem" "--gateway_flag=--backend_tls_key=$c/client.key" \
  "--backend_tls_ca=$c/ca.pem" "--backend_tls_cert=$c/client.pem" "--backend_tls_key=$c/client.key" \
  -- /usr/bin/python3 "$(readlink -f tests/openai/grpc_client_test.py)" \
  "--target={grpc_address}" "--ca=$tmp/certs/ca.pem" "--other_ca=$tmp/certs/other_ca.pem" \
  "--key=sk-grpcio-test-key-0001" "--descriptor=$tmp/glm4v.desc"

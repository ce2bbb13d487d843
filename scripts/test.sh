#!/usr/bin/env bash
# The test command: builds, runs every GoogleTest/CTest suite with the Vulkan validation layer on
# (lavapipe when there is no GPU), then runs the GGUF and safetensors fuzzers for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
# The fuzzers first (bounded: 45 s each), so the summary line that ends the output is the main
# suite's.
if command -v clang++ >/dev/null; then
  cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DMOEVK_FUZZ=ON -DMOEVK_BUILD_TESTS=OFF >/dev/null
  fuzz_targets=$(for f in tests/fuzz/*_fuzz.cpp; do basename "$f" .cpp; done)
  cmake --build build-fuzz -j"$(nproc)" --target $fuzz_targets
  ctest --test-dir build-fuzz --output-on-failure -j"$(nproc)" --timeout 300
fi
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900

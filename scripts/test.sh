#!/usr/bin/env bash
# The test command: builds, runs every GoogleTest/CTest suite with the Vulkan validation layer on
# (lavapipe when there is no GPU), then runs the GGUF, safetensors, chat-template, chat-response and grammar fuzzers for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
# The fuzzers need clang. Without it a local run skips them and says so; in CI (CI=true) it fails
# before building anything, so a runner image that lost clang cannot pass with the fuzzers unrun.
run_fuzzers=1
if ! command -v clang++ >/dev/null; then
  if [ "${CI:-}" = "true" ]; then
    echo "test.sh: clang++ not found: the fuzzers cannot be built, and CI=true does not allow skipping them" \
         "(scripts/install-deps.sh installs clang)" >&2
    exit 1
  fi
  echo "test.sh: clang++ not found: skipping the fuzzers (install clang to run them)" >&2
  run_fuzzers=0
fi
bash scripts/build.sh
# The fuzzers first (bounded: 45 s each), so the summary line that ends the output is the main
# suite's.
if [ "$run_fuzzers" = 1 ]; then
  cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DMOEVK_FUZZ=ON -DMOEVK_BUILD_TESTS=OFF >/dev/null
  fuzz_targets=$(for f in tests/fuzz/*_fuzz.cpp; do basename "$f" .cpp; done)
  cmake --build build-fuzz -j"$(nproc)" --target $fuzz_targets
  ctest --test-dir build-fuzz --output-on-failure -j"$(nproc)" --timeout 300
fi
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900

#!/usr/bin/env bash
# Prepares a run on the lent GPU machine (see ../shared/device/README.md): builds a stripped
# Release tree into build-gpu/ (binaries only), packs it as .gl/build-gpu.tar.xz (the transfer
# limit is 64 MiB: the tree is ~60 MB, packed ~6) and puts the Vulkan loader plus the Khronos
# validation layer (the tests need it) into .gl/, which git ignores; carry it with the run:
#
#   bash scripts/device-prepare.sh
#   run(carry=[".gl"], command="bash scripts/device-check.sh", timeout_s=560)
#
# (device-check.sh unpacks build-gpu/ there.)
#
# scripts/device-check.sh then runs the whole check there in one go and writes its results under
# $OUT (docs/PERFORMANCE.md says what to do with them).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ ! -f .gl/.ready ] || ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  bash ../shared/device/prepare-vulkan.sh >/dev/null
fi
if ! ls .gl/vulkan-validationlayers_*.deb >/dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists'
  (cd .gl && apt-get $o download vulkan-validationlayers 2>&1 | grep -v '^W:' || true)
fi
touch .gl/.ready

cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release >/dev/null
if ! cmake --build build-gpu -j"$(nproc)" > build-gpu/build.log 2>&1; then
  grep -E 'error' build-gpu/build.log | head -20 >&2
  echo "device-prepare: the build failed (build-gpu/build.log)" >&2
  exit 1
fi
# Keep what runs: executables, the shared library, CTest's files and the test data lists.
# Object files and the static library stay behind (they are most of the size).
find build-gpu -name '*.o' -delete
rm -f build-gpu/libmoevk.a
find build-gpu -maxdepth 2 -type f -perm -u+x \( -name 'test_*' -o -name 'c_*' -o -name moevk \) \
  -exec strip --strip-unneeded {} +
strip --strip-unneeded build-gpu/libmoevk.so.* 2>/dev/null || true
# The test binaries have this checkout's absolute paths compiled in (test data, CTest files):
# device-check.sh links the copy there to the same path.
echo "$root" > build-gpu/source-root
rm -f .gl/build-gpu.tar.xz
tar -cf - build-gpu | xz -T"$(nproc)" -6 > .gl/build-gpu.tar.xz
du -sh build-gpu .gl
total=$(du -sbc .gl | tail -1 | cut -f1)
if [ "$total" -gt $((62 * 1024 * 1024)) ]; then
  echo "device-prepare: .gl is $((total >> 20)) MiB, over the 64 MiB transfer limit" >&2
  exit 1
fi
echo "ready: carry .gl; run: bash scripts/device-check.sh"

#!/usr/bin/env bash
# The whole GPU-machine check in one run (its device time is scarce: minutes per task). Run
# there from the repository root after `bash scripts/device-prepare.sh` here, carrying .gl (with
# the packed build-gpu/ in it). Writes under $OUT (default ./device-out):
#   devices.txt, devices.json     moevk devices
#   ctest.log                     every test on the GPU
#   ctest-coopmat.log             the kernel tests again with MOEVK_ENABLE=coopmat
#   ctest-repeat.log              the cross-workgroup handoff tests 20 times over (races)
#   bench-ops.json                moevk bench ops on the real layer shapes
#   bench-ops-coopmat.json        the prefill products again with MOEVK_ENABLE=coopmat
#   bench-ops-decode.json         one-token moe_experts, attn_qkv and output per workgroup size x
#                                 rows of their kernels (--decode-configs)
#   bench-<model>.json            moevk bench -p 512 -n 128 -r 3 on make-model files of the real
#                                 shapes: issue 6's numbers, nothing else in the run
#   bench-<model>-sweep.jsonl     then, as JSON lines with --profile (GPU time per stage), pp512
#                                 and tg64 again per decode fusion turned off (--without) and with all of them
#                                 off, sampled (--sampled), and on other one-token kernel shapes
#                                 (--decode-configs), in one model load: what each is worth
#   bench-<model>-coopmat.json    pp512 again with MOEVK_ENABLE=coopmat
#   bench-<model>-dot-decode.json tg64 again with MOEVK_ENABLE=dot_decode (profiled)
#   bench-<model>-wide-decode.json tg64 again with MOEVK_ENABLE=wide_decode (profiled)
#   bench-<model>-depth.json      pp512 and tg64 at depth 0 and 4096 (-d 0,4096; profiled)
#   summary.txt                   what ran, how long, exit codes
# Each step has its own time limit and a failing step does not stop the next. Steps can be
# chosen: STEPS="devices tests ops mixtral qwen3" (the default, in that order). QUICK=1 uses
# tiny presets and shapes, to try the script on a CPU driver.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
STEPS=${STEPS:-devices tests ops mixtral qwen3}
QUICK=${QUICK:-0}
summary="$OUT/summary.txt"
: > "$summary"
# fd 3 is the script's own stdout: a step's log line must not land in the file its command's
# output is redirected to (the JSON results would not parse).
exec 3>&1
log() { echo "$*" | tee -a "$summary" >&3; }

# Vulkan loader and validation layer (Debian packages in .gl/), the NVIDIA ICD if not found.
if ls .gl/*.deb >/dev/null 2>&1 && ! [ -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi

# The packed tree from device-prepare.sh, always unpacked afresh (a build-gpu/ left from an
# earlier call on a warm machine may be stale).
if [ -f .gl/build-gpu.tar.xz ]; then
  rm -rf build-gpu && tar -xJf .gl/build-gpu.tar.xz
fi
build=build-gpu
[ -x "$build/tools/moevk" ] || build=build
moevk="$PWD/$build/tools/moevk"
# The test binaries and CTest files carry the preparing checkout's absolute paths.
if [ -f "$build/source-root" ]; then
  src=$(cat "$build/source-root")
  if [ "$src" != "$PWD" ] && [ ! -e "$src" ]; then
    mkdir -p "$(dirname "$src")" && ln -s "$PWD" "$src"
  fi
fi

step() {  # step NAME LIMIT_S COMMAND...
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  log "$(printf '%-10s rc=%-3s %4ss  (limit %ss)' "$name" "$rc" $((SECONDS - t0)) "$limit")"
  return 0
}

models_dir=${MODELS_DIR:-/tmp/moevk-models}
mkdir -p "$models_dir"
bench_model() {  # bench_model NAME PRESET TYPE
  local name=$1 preset=$2 type=$3 file="$models_dir/$1.gguf"
  local p=512 n=128 r=3 sweep_n=64 sweep_r=2 depth=4096
  if [ "$QUICK" = 1 ]; then p=64 n=16 r=1 sweep_n=8 sweep_r=1 depth=64; fi
  step "make-$name" 240 "$moevk" make-model --preset "$preset" --type "$type" -o "$file" \
    > "$OUT/make-$name.log" 2>&1
  "$moevk" info "$file" > "$OUT/info-$name.txt" 2>&1
  # The targets' numbers first and alone, so a slow sweep (26 tg rows) cannot take them down
  # with it at its time limit; then prefill on the cooperative-matrix kernels (opt-in until
  # validated on hardware).
  step "bench-$name" 150 "$moevk" bench -m "$file" -p $p -n $n -r $r --json \
    > "$OUT/bench-$name.json" 2> "$OUT/bench-$name.err"
  MOEVK_ENABLE=coopmat step "pp-coopmat-$name" 120 "$moevk" bench -m "$file" -p $p -n 0 -r $r --json \
    > "$OUT/bench-$name-coopmat.json" 2> "$OUT/bench-$name-coopmat.err"
  # Decode with the experts' gate+up on the integer dot product (opt-in until measured: against
  # bench-<model>.json's tg row, and bench-ops-decode.json's decode_dot rows per kernel).
  MOEVK_ENABLE=dot_decode step "tg-dot-decode-$name" 90 "$moevk" bench -m "$file" -p 0 -n $sweep_n -r $sweep_r \
    --json --profile > "$OUT/bench-$name-dot-decode.json" 2> "$OUT/bench-$name-dot-decode.err"
  # And with the one-token products on 16-byte steps (opt-in until measured: bench-ops.json's
  # decode_wide and mv_wide rows, and bench-ops-decode.json's per shape).
  MOEVK_ENABLE=wide_decode step "tg-wide-decode-$name" 90 "$moevk" bench -m "$file" -p 0 -n $sweep_n -r $sweep_r \
    --json --profile > "$OUT/bench-$name-wide-decode.json" 2> "$OUT/bench-$name-wide-decode.err"
  # Both again at a depth (4096 tokens already in the context, llama-bench's -d): how the
  # split-KV decode attention and the prefill's causal tiles hold up as the KV cache grows.
  step "depth-$name" 120 "$moevk" bench -m "$file" -p $p -n $sweep_n -d 0,$depth -r $sweep_r --json --profile \
    > "$OUT/bench-$name-depth.json" 2> "$OUT/bench-$name-depth.err"
  # The sweep, profiled: each decode fusion off in turn, then all of them (what each is worth on
  # this device); tg also at a temperature (--sampled: drawn on the GPU, and with top-k off over
  # the whole vocabulary ("tg64 sampled top-k off"); its -gpu_sampling row
  # samples on the host); and tg on other one-token kernel shapes (MOEVK_DECODE_CONFIG), the end
  # to end check of the bench-ops-decode sweep: rows "tg64 experts=128x2". Shorter tg rows (64
  # tokens, 2 repetitions): they are compared with the sweep's own tg64 row.
  local fusions=fuse_norms,kv_append,rope_attention,merge_products,router_handoff,attention_handoff,chain_steps,gpu_sampling
  local shapes=experts=32x2,experts=128x2,experts=128x4,experts=256x4,down=32x2,down=32x4,mv=64x2,mv=256x4
  # JSON lines (-o jsonl), each row written when its test ends: if the step meets its time
  # limit, the rows before stay.
  step "sweep-$name" 200 "$moevk" bench -m "$file" -p $p -n $sweep_n -r $sweep_r -o jsonl --profile --sampled \
    --without "$fusions,${fusions//,/+}" --decode-configs "$shapes" > "$OUT/bench-$name-sweep.jsonl" \
    2> "$OUT/bench-$name-sweep.err"
  # The markdown table from the same numbers would need a second run; the JSON has them all.
  rm -f "$file"
}

for s in $STEPS; do
  case $s in
    devices)
      step devices 60 "$moevk" devices > "$OUT/devices.txt" 2>&1
      "$moevk" devices --json > "$OUT/devices.json" 2>&1
      command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
      ;;
    tests)
      # The interop tests need Node.js (absent there); everything else runs on the default paths.
      step tests 200 ctest --test-dir "$build" -j8 --timeout 120 \
        -E 'sh_gguf_interop_test|sh_llama_cpp_interop_test' --output-on-failure > "$OUT/ctest.log" 2>&1
      tail -n 3 "$OUT/ctest.log" | tee -a "$summary"
      # Then the kernel tests with the cooperative-matrix kernels on (opt-in until they pass
      # there): the dense and MoE products take them wherever the op's defaults allow. The end
      # to end tests are not run so: their bounds are for f32 operands.
      MOEVK_ENABLE=coopmat step tests-coopmat 120 "$build/test_ops" \
        --gtest_filter='*Coop*:*MatMul*:MoeExperts*' > "$OUT/ctest-coopmat.log" 2>&1
      tail -n 3 "$OUT/ctest-coopmat.log" | tee -a "$summary"
      # The kernels where workgroups hand work to the last to arrive (router, attention combine,
      # sliced argmax and sampling) and the grouped expert products, 20 times over: lavapipe
      # runs workgroups nearly one after another, so a missing fence shows only here, and maybe
      # not every time. Each failure is one line in the log.
      if [ "$QUICK" = 1 ]; then repeat=2; else repeat=20; fi
      step tests-repeat 60 "$build/test_ops" --gtest_repeat=$repeat \
        --gtest_filter='*Handoff*:*Router*:*ArgmaxSplit*:*SampleTopK*:*Attention*:MoeExpertsTest.Grouping*:MoeExpertsTest.ReplayReads*' \
        > "$OUT/ctest-repeat.log" 2>&1
      echo "tests-repeat: $(grep -cE '^\[  FAILED  \] .*\([0-9]+ ms\)$' "$OUT/ctest-repeat.log") test runs failed over $repeat repeats" | tee -a "$summary"
      ;;
    ops)
      if [ "$QUICK" = 1 ]; then ops=(--shapes tiny --tokens 1,8 -r 2); else ops=(--tokens 1,8,32,128,512 -r 5); fi
      step bench-ops 150 "$moevk" bench ops "${ops[@]}" --json > "$OUT/bench-ops.json" 2> "$OUT/bench-ops.err"
      # The prefill products once more with the cooperative-matrix kernels on (grouped_coopmat
      # rows next to grouped_dot and grouped; the dense products take mm_coopmat).
      if [ "$QUICK" = 1 ]; then cops=(--shapes tiny --tokens 64 -r 2); else cops=(--tokens 128,512 -r 5); fi
      MOEVK_ENABLE=coopmat step bench-ops-coopmat 90 "$moevk" bench ops "${cops[@]}" \
        --kernels attn_qkv,moe_experts,output --json > "$OUT/bench-ops-coopmat.json" 2> "$OUT/bench-ops-coopmat.err"
      # The decode products (issue 4's 70%-of-copy-bandwidth check on the experts) over a sweep
      # of their kernels' workgroup shapes: the defaults (64x2 experts, 128x4 dense) are untuned.
      if [ "$QUICK" = 1 ]; then dops=(--shapes tiny -r 2); else dops=(-r 10); fi
      step bench-ops-decode 120 "$moevk" bench ops "${dops[@]}" --kernels moe_experts,attn_qkv,output --tokens 1 \
        --decode-configs 32x1,32x2,64x1,64x4,128x1,128x2,128x4,256x2,256x4,256x8 --json \
        > "$OUT/bench-ops-decode.json" 2> "$OUT/bench-ops-decode.err"
      ;;
    mixtral)
      if [ "$QUICK" = 1 ]; then bench_model mixtral tiny q4_0; else bench_model mixtral mixtral-8x7b q4_0; fi
      ;;
    qwen3)
      if [ "$QUICK" = 1 ]; then bench_model qwen3 tiny-qwen3moe q4_k; else bench_model qwen3 qwen3-30b-a3b q4_k; fi
      ;;
    *) log "unknown step $s" ;;
  esac
done
log "total ${SECONDS}s"

#!/usr/bin/env bash
# The `moevk` command as a user runs it: help, version, devices, convert, info, run, logits, perplexity,
# and clear errors for bad input. $1 = the moevk binary, $2 = tests/data.
set -uo pipefail
moevk="$1"
data="$2"
tmp=$(mktemp -d)
# Validation messages the commands wrote into captured files are echoed to stderr, where
# CTest's FAIL_REGULAR_EXPRESSION on the marker sees them.
trap 'grep -sh "\[moevk validation\]" "$tmp"/* >&2 || true; rm -rf "$tmp"' EXIT
fails=0
pass=0
check() {  # check "what" command...
  local what="$1"; shift
  if "$@"; then pass=$((pass + 1)); else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

"$moevk" --help >"$tmp/help" 2>&1
check "--help lists run" grep -q "run" "$tmp/help"
check "--help lists devices" grep -q "devices" "$tmp/help"
for name in fp16 int8 storage16 storage8 dot coopmat subgroup_size_control subgroup \
  fuse_norms kv_append rope_attention merge_products router_handoff attention_handoff chain_steps gpu_sampling; do
  check "--help lists MOEVK_DISABLE=$name" grep -qE "[ ,]$name[,) ]" "$tmp/help"
done
check "--version" bash -c "'$moevk' --version | grep -q '^moevk [0-9]'"
"$moevk" no-such-command >/dev/null 2>"$tmp/err"; rc=$?
check "unknown command exits 2" test "$rc" = 2
check "unknown command is named" grep -q "no-such-command" "$tmp/err"

"$moevk" devices >"$tmp/devices" 2>&1
check "devices lists a device" grep -q "^\[0\]" "$tmp/devices"
check "devices shows subgroup info" grep -q "subgroup" "$tmp/devices"
check "devices prints small sizes in MiB, not 0.xx GiB" bash -c "! grep -q ' 0\.[0-9]* GiB' '$tmp/devices'"
"$moevk" devices --json >"$tmp/devices.json" 2>&1
check "devices --json is an array with vendor" grep -q '"vendor"' "$tmp/devices.json"

for sub in run chat logits perplexity info convert make-model split bench devices; do
  check "$sub --help" bash -c "'$moevk' $sub --help | grep -qi usage"
done
# Each command takes the shared options it uses, lists exactly those, and refuses the others
# (rather than ignoring them): chat has no prompt options and answers up to 512 tokens.
"$moevk" chat --help >"$tmp/chat_help" 2>&1
check "chat --help gives -n's default of 512" grep -q "n-predict N .*(default 512)" "$tmp/chat_help"
check "chat --help lists --system" grep -q -- "--system TEXT" "$tmp/chat_help"
check "chat --help lists --think" grep -q -- "--think on|off" "$tmp/chat_help"
check "chat --help lists --messages and --tools" bash -c "grep -q -- '--messages FILE' '$tmp/chat_help' && grep -q -- '--tools FILE' '$tmp/chat_help'"
check "chat --help has no prompt options" bash -c "! grep -q -- '--prompt-ids' '$tmp/chat_help'"
"$moevk" bench --help >"$tmp/bench_help" 2>&1
check "bench --help lists every test option" bash -c "for o in -m -p -n -pg -d -b -r -c -o --profile --sampled --without \
  --decode-configs --device; do grep -qE -- \"^  \$o[ ,]\" '$tmp/bench_help' || { echo \"missing \$o\"; exit 1; }; done"
"$moevk" run --help >"$tmp/run_help" 2>&1
check "run --help lists --print-ids and -n's default of 128" \
  bash -c "grep -q -- '--print-ids' '$tmp/run_help' && grep -q 'n-predict N .*(default 128)' '$tmp/run_help'"
check "run --help has no chat options" bash -c "! grep -q -- '--system' '$tmp/run_help'"
for args in "chat -p hi" "chat --prompt-ids 1,2" "run --system hi" "logits --temp 0.5" "perplexity -n 4" \
  "bench --print-ids"; do
  "$moevk" $args -m "$tmp/none.gguf" >/dev/null 2>"$tmp/err"; rc=$?
  option=${args#* }
  check "moevk $args: refused (exit 2)" test "$rc" = 2
  check "moevk $args: the option is named" grep -q -- "unknown option ${option%% *}" "$tmp/err"
done

# bench ops reports the path each op takes: the split router for one token of a 128-expert
# router, and for prefill experts the integer-dot and plain rows where the device has dot.
"$moevk" bench ops --shapes qwen3-30b-a3b --types q4_0 --tokens 1 --kernels router_topk -r 1 --json \
  >"$tmp/bench_router.json" 2>&1
check "bench ops: router path is handoff" grep -q '"path": *"handoff"' "$tmp/bench_router.json"
check "bench ops: router's split path timed too" grep -q '"path": *"split"' "$tmp/bench_router.json"
# bench ops --decode-configs: decode moe_experts per workgroup shape; a malformed one is refused.
"$moevk" bench ops --shapes tiny --types q4_0 --tokens 1 --kernels moe_experts -r 1 --decode-configs 32x1,128x4 \
  --json >"$tmp/bench_decode.json" 2>&1
check "bench ops --decode-configs: a row per shape" grep -q '"path": *"decode 128x4"' "$tmp/bench_decode.json"
check "bench ops: the wide decode kernels' row" grep -q '"path": *"decode_wide"' "$tmp/bench_decode.json"
check "bench ops --decode-configs: a wide row per shape" grep -q '"path": *"decode_wide 128x4"' "$tmp/bench_decode.json"
check "bench ops --decode-configs: a down-only row per shape" grep -q '"path": *"decode down 32x1"' "$tmp/bench_decode.json"
"$moevk" bench ops --shapes tiny --kernels moe_experts --decode-configs 64by2 >/dev/null 2>"$tmp/err"; rc=$?
check "bench ops --decode-configs 64by2 is refused" test "$rc" = 2
check "bench ops --decode-configs names the bad entry" grep -q "64by2" "$tmp/err"
# bench --without: tg again per listed fusion set, in fresh contexts of the one loaded model.
"$moevk" make-model --preset tiny-qwen3moe --experts 128 --experts-used 8 --type q8_0 -o "$tmp/e128.gguf" >/dev/null 2>&1
"$moevk" bench -m "$tmp/e128.gguf" -p 0 -n 2 -r 1 --json --profile --without router_handoff,attention_handoff+router_handoff \
  >"$tmp/bench_without.json" 2>"$tmp/bench_without.err"
check "bench --without: a row per variant" grep -q '"test": *"tg2 -attention_handoff+router_handoff"' "$tmp/bench_without.json"
check "bench --without: the variant is named" grep -q '"without": *"router_handoff"' "$tmp/bench_without.json"
check "bench --without: the variants' dispatch counts differ" \
  bash -c "test \$(grep -o '\"dispatches_per_step\": *[0-9]*' '$tmp/bench_without.json' | sort -u | wc -l) -ge 3"
# bench --sampled: tg at a temperature too, and per --without entry (gpu_sampling: on the host).
"$moevk" bench -m "$tmp/e128.gguf" -p 0 -n 2 -r 1 --json --sampled --without gpu_sampling \
  >"$tmp/bench_sampled.json" 2>"$tmp/bench_sampled.err"
check "bench --sampled: a sampled tg row" grep -q '"test": *"tg2 sampled"' "$tmp/bench_sampled.json"
check "bench --sampled: a top-k off row" grep -q '"test": *"tg2 sampled top-k off"' "$tmp/bench_sampled.json"
check "bench: tg rows carry the host's own time per token" grep -q '"host_ms_per_token": *[0-9]' "$tmp/bench_sampled.json"
"$moevk" bench -m "$tmp/e128.gguf" -p 0 -n 2 -r 1 >"$tmp/bench_md.txt" 2>&1
check "bench: the table is followed by the host time per token" grep -q "host time per decoded token.*tg2 [0-9.]* ms" "$tmp/bench_md.txt"
check "bench --sampled --without gpu_sampling: the host's row" \
  grep -q '"test": *"tg2 sampled -gpu_sampling"' "$tmp/bench_sampled.json"
# bench --decode-configs: tg again per one-token kernel shape (MOEVK_DECODE_CONFIG), every row
# naming the shapes it ran; a shape the device cannot run is that row's error, not the run's.
"$moevk" bench -m "$tmp/e128.gguf" -p 0 -n 2 -r 1 --json --decode-configs experts=128x4,experts=32x1+mv=256x2,mv=16x1 \
  >"$tmp/bench_shapes.json" 2>"$tmp/bench_shapes.err"
check "bench --decode-configs: a row per entry" grep -q '"test": *"tg2 experts=32x1+mv=256x2"' "$tmp/bench_shapes.json"
check "bench --decode-configs: the entry's shapes ran" grep -q '"decode_kernels": *"experts=32x1,mv=256x2"' "$tmp/bench_shapes.json"
check "bench --decode-configs: the main row's shapes" grep -q '"decode_kernels": *"experts=64x2,mv=128x4"' "$tmp/bench_shapes.json"
check "bench --decode-configs: a bad shape is its row's error" grep -q '"error": *"MOEVK_DECODE_CONFIG=mv=16x1: matmul' "$tmp/bench_shapes.json"
# bench takes llama-bench's lists: -p, -n and -d comma lists, -pg P,N; -o jsonl is a row a line.
"$moevk" bench -m "$tmp/e128.gguf" -p 4,6 -n 2 -pg 4,2 -d 0,5 -r 1 -o jsonl --profile \
  >"$tmp/bench_lists.jsonl" 2>"$tmp/bench_lists.err"
check "bench lists: a row per test, depth by depth" bash -c "grep -o '\"test\":\"[^\"]*\"' '$tmp/bench_lists.jsonl' | tr '\n' ' ' \
  | grep -qF '\"test\":\"pp4\" \"test\":\"pp6\" \"test\":\"tg2\" \"test\":\"pp4+tg2\" \"test\":\"pp4 @ d5\" \"test\":\"pp6 @ d5\" \"test\":\"tg2 @ d5\" \"test\":\"pp4+tg2 @ d5\" '"
check "bench -o jsonl: one object a line" test "$(grep -c '^{.*}$' "$tmp/bench_lists.jsonl")" = 8
check "bench lists: llama-bench's n_depth, n_gen, n_prompt" grep -q '"n_depth":5,"n_gen":0,"n_prompt":6,' "$tmp/bench_lists.jsonl"
check "bench rows: llama-bench's field names too" bash -c "grep -F '\"test\":\"tg2 @ d5\"' '$tmp/bench_lists.jsonl' \
  | grep '\"avg_ts\":[0-9]' | grep '\"samples_ns\":\[[0-9]*\]' | grep -q '\"model_type\":\"qwen3moe [0-9.]*[KM] Q8_0\"'"
check "bench -d: the depth's tokens are not in the test's profile" \
  bash -c "grep -F '\"test\":\"pp6 @ d5\"' '$tmp/bench_lists.jsonl' | grep -q '\"steps\":1,\"tokens\":6}'"
check "bench -pg: its profile has prefill and decode" \
  bash -c "grep -F '\"test\":\"pp4+tg2\"' '$tmp/bench_lists.jsonl' | grep -q '\"profile\":{\"decode\":{.*\"prefill\":{'"
check "bench -d: tg rows count the KV cache they read" \
  bash -c "grep -F '\"test\":\"tg2 @ d5\"' '$tmp/bench_lists.jsonl' | grep -q '\"floor_fraction_with_kv\":[0-9.e-]*,.*\"kv_bytes_per_token\":[1-9]'"
"$moevk" bench -m "$tmp/e128.gguf" -p 4 -n 2 -d 0,5 -r 1 --profile >"$tmp/bench_depth.md" 2>&1
check "bench -d: the table names the depth" grep -q '| tg2 @ d5 | [0-9.]* ± ' "$tmp/bench_depth.md"
check "bench -d --profile: a stage table per depth" grep -q "GPU time per stage at depth 5 " "$tmp/bench_depth.md"
check "bench -d: the KV cache read at depth" grep -q "KV cache read per decoded token at depth.*tg2 @ d5 " "$tmp/bench_depth.md"
# -b takes a list too: every test again on a context per batch size.
"$moevk" bench -m "$tmp/e128.gguf" -p 6 -n 2 -b 2,6 -r 1 -o jsonl >"$tmp/bench_batches.jsonl" 2>"$tmp/err"
check "bench -b 2,6: the tests per batch size" \
  test "$(grep -o '"n_batch":[0-9]*,.*"test":"[^"]*"' "$tmp/bench_batches.jsonl" | sed 's/,.*"test"/ /' | tr '\n' ' ')" \
  = '"n_batch":2 :"pp6" "n_batch":2 :"tg2" "n_batch":6 :"pp6" "n_batch":6 :"tg2" '
"$moevk" bench -m "$tmp/e128.gguf" -ngl 99 >/dev/null 2>"$tmp/err"; rc=$?
check "bench -ngl (llama-bench's) is refused" test "$rc" = 2
check "bench -ngl: the message says why" grep -q -- "-ngl: moevk runs every layer on the GPU" "$tmp/err"
for bad in "-pg 4" "-o xml" "-p 0 -n 0" "-d 1,,2"; do
  "$moevk" bench -m "$tmp/e128.gguf" $bad >/dev/null 2>"$tmp/err"; rc=$?
  check "bench $bad is refused" test "$rc" = 2
  check "bench $bad: the message names the option" grep -qE -- "${bad%% *}|no test to run" "$tmp/err"
done
MOEVK_DECODE_CONFIG=experts=256x1 "$moevk" bench -m "$tmp/e128.gguf" -p 0 -n 2 -r 1 --json >"$tmp/bench_env.json" 2>&1
check "MOEVK_DECODE_CONFIG: the context runs the shapes it names" \
  grep -q '"decode_kernels": *"experts=256x1,mv=128x4"' "$tmp/bench_env.json"
MOEVK_DECODE_CONFIG=down=32x4 "$moevk" bench -m "$tmp/e128.gguf" -p 0 -n 2 -r 1 --json >"$tmp/bench_down.json" 2>&1
check "MOEVK_DECODE_CONFIG=down=: the experts' down product on its own shape" \
  grep -q '"decode_kernels": *"experts=64x2,down=32x4,mv=128x4"' "$tmp/bench_down.json"
check "bench --json: the model's load time in seconds" grep -Eq '"load_s": *[0-9.]+(e-?[0-9]+)?,' "$tmp/bench_env.json"
check "bench --json: the features the kernels ran with" grep -q '"features": *"' "$tmp/bench_env.json"
if grep -q '"features": *"[^"]*dot' "$tmp/bench_env.json"; then
  MOEVK_ENABLE=dot_decode "$moevk" bench -m "$tmp/e128.gguf" -p 0 -n 2 -r 1 --json >"$tmp/bench_dot.json" 2>&1
  check "MOEVK_ENABLE=dot_decode: the bench rows say so" grep -q '"features": *"[^"]*dot_decode' "$tmp/bench_dot.json"
  check "without MOEVK_ENABLE: no dot_decode" bash -c "! grep -q 'dot_decode' '$tmp/bench_env.json'"
fi
MOEVK_ENABLE=wide_decode "$moevk" bench -m "$tmp/e128.gguf" -p 0 -n 2 -r 1 --json >"$tmp/bench_wide.json" 2>&1
check "MOEVK_ENABLE=wide_decode: the bench rows say so" grep -q '"features": *"[^"]*wide_decode' "$tmp/bench_wide.json"
"$moevk" bench ops --shapes tiny --types q4_0 --tokens 33 --kernels moe_experts -r 1 --json >"$tmp/bench_moe.json" 2>&1
check "bench ops: plain grouped experts row" grep -q '"path": *"grouped"' "$tmp/bench_moe.json"
if grep -q '"features": *"[^"]*dot' "$tmp/bench_moe.json"; then
  check "bench ops: integer-dot grouped experts row" grep -q '"path": *"grouped_dot"' "$tmp/bench_moe.json"
fi

check "convert" "$moevk" convert "$data/hf/qwen3moe-tiny" -o "$tmp/m.gguf" --type q8_0
"$moevk" info "$tmp/m.gguf" >"$tmp/info" 2>&1
check "info names the architecture" grep -q "qwen3moe" "$tmp/info"
"$moevk" info "$tmp/m.gguf" --json >"$tmp/info.json" 2>&1
check "info --json has active params" grep -q '"active_params"' "$tmp/info.json"

"$moevk" run -m "$tmp/m.gguf" --prompt-ids 5,6,7,8 -n 6 --greedy --ignore-eos --print-ids --no-progress \
  >"$tmp/run.out" 2>"$tmp/run.err"; rc=$?
check "run exits 0" test "$rc" = 0
check "run prints 6 ids" bash -c "head -c 200 '$tmp/run.out' | tr -d '\n' | grep -Eq '^[0-9]+(,[0-9]+){5}$'"
check "run reports tokens/s" grep -q "tokens/s" "$tmp/run.err"
# Sampling at a temperature: drawn on the GPU, the host sampler's stream for the same seed (the
# host samples with MOEVK_DISABLE=gpu_sampling), and the same again for the same seed.
for how in gpu gpu-again host; do
  disable=""; [ "$how" = host ] && disable=gpu_sampling
  MOEVK_DISABLE=$disable "$moevk" run -m "$tmp/m.gguf" --prompt-ids 5,6,7,8 -n 12 --temp 1.1 --seed 42 --ignore-eos \
    --print-ids --no-progress >"$tmp/sampled-$how.out" 2>/dev/null
done
check "sampled run prints 12 ids" bash -c "tr -d '\n' <'$tmp/sampled-gpu.out' | grep -Eq '^[0-9]+(,[0-9]+){11}$'"
check "sampled run: the same seed, the same ids" cmp -s "$tmp/sampled-gpu.out" "$tmp/sampled-gpu-again.out"
check "sampled run: GPU draws are the host sampler's" cmp -s "$tmp/sampled-gpu.out" "$tmp/sampled-host.out"
# With penalties (over the last 16 tokens, and over the whole context: -1) too.
for last_n in 16 -1; do
  for how in gpu host; do
    disable=""; [ "$how" = host ] && disable=gpu_sampling
    MOEVK_DISABLE=$disable "$moevk" run -m "$tmp/m.gguf" --prompt-ids 5,6,7,8 -n 12 --temp 0.9 --seed 42 --ignore-eos \
      --repeat-penalty 1.3 --repeat-last-n "$last_n" --presence-penalty 0.2 --print-ids --no-progress \
      >"$tmp/penalised-$how$last_n.out" 2>/dev/null
  done
  check "penalised run (last $last_n) prints 12 ids" \
    bash -c "tr -d '\n' <'$tmp/penalised-gpu$last_n.out' | grep -Eq '^[0-9]+(,[0-9]+){11}$'"
  check "penalised run (last $last_n): GPU draws are the host sampler's" \
    cmp -s "$tmp/penalised-gpu$last_n.out" "$tmp/penalised-host$last_n.out"
done

# The first greedy id equals the argmax of the last prompt position's logits.
"$moevk" logits -m "$tmp/m.gguf" --prompt-ids 5,6,7,8 --top 1 >"$tmp/logits" 2>&1
first_run=$(tr -d '\n' <"$tmp/run.out" | cut -d, -f1)
first_logits=$(tail -n 1 "$tmp/logits" | awk -F: '{print $2}' | awk '{print $1}')
check "run's first id ($first_run) = logits argmax ($first_logits)" test "$first_run" = "$first_logits"

# A text prompt longer than the first buffer guess (each space is three byte tokens here).
"$moevk" logits -m "$tmp/m.gguf" -p "a b c d e f g h i j k l m n o p q r s t" --top 1 >"$tmp/logits.text" 2>"$tmp/err"; rc=$?
check "logits -p with many tokens exits 0" test "$rc" = 0
check "logits -p prints every position" bash -c "test \$(grep -c '^pos' '$tmp/logits.text') -gt 40"
"$moevk" logits -m "$tmp/m.gguf" >/dev/null 2>"$tmp/err"; rc=$?
check "logits without a prompt exits 2" test "$rc" = 2
check "logits without a prompt says so" grep -q "no prompt" "$tmp/err"
# perplexity: llama-perplexity's running estimate and final line, JSON with the same figures,
# and a text shorter than one chunk refused with the counts named.
"$moevk" perplexity -m "$tmp/m.gguf" -p "a b c d e f g h i j k l m n o p q r s t u v w x y z" --chunk 8 \
  --no-progress >"$tmp/ppl" 2>"$tmp/ppl.err"; rc=$?
check "perplexity exits 0" test "$rc" = 0
check "perplexity prints the running estimate" grep -qE '^\[1\][0-9.]+,\[2\][0-9.]+,' "$tmp/ppl"
check "perplexity prints the final estimate" grep -qE '^Final estimate: PPL = [0-9.]+ \+/- [0-9.]+$' "$tmp/ppl"
"$moevk" perplexity -m "$tmp/m.gguf" -p "a b c d e f g h i j k l m n o p q r s t u v w x y z" --chunk 8 --chunks 2 \
  --json --no-progress >"$tmp/ppl.json" 2>/dev/null
check "perplexity --json: two chunks" grep -qE '"n_chunks": 2,' "$tmp/ppl.json"
check "perplexity --json: ppl and its error" grep -qE '"ppl": [0-9.]+, "ppl_stderr": [0-9.]+' "$tmp/ppl.json"
"$moevk" perplexity -m "$tmp/m.gguf" --prompt-ids 5,6,7 --chunk 8 --no-progress >/dev/null 2>"$tmp/err"; rc=$?
check "perplexity of a text shorter than a chunk exits 1" test "$rc" = 1
check "perplexity says the text is too short" grep -q "3 tokens, less than one chunk of 8" "$tmp/err"
"$moevk" perplexity -m "$tmp/m.gguf" --chunk 8 >/dev/null 2>"$tmp/err"; rc=$?
check "perplexity without a text exits 2" test "$rc" = 2

# Numeric options are checked when parsed.
for bad in "-c -1" "-c 99999999999" "-n -5" "-b 0" "--temp -1" "--top-p 2" "--seed -1" "-n 12abc" "--repeat-last-n -2"; do
  "$moevk" run -m "$tmp/m.gguf" -p hi $bad --no-progress >/dev/null 2>"$tmp/err"; rc=$?
  check "run $bad is refused" test "$rc" = 2
  check "run $bad names the option" grep -q "option ${bad%% *}" "$tmp/err"
done
"$moevk" make-model --dry-run --layers -2 >/dev/null 2>"$tmp/err"; rc=$?
check "make-model --layers -2 is refused" test "$rc" = 2
# --tensor-type: per-tensor types over --type, the first matching rule winning; a rule that
# matches nothing (a misspelt name) fails and writes nothing.
"$moevk" make-model --preset tiny --type q8_0 --tensor-type ffn_down_exps=q4_0 --tensor-type '^output\.weight$=f16' \
  -o "$tmp/rules.gguf" --no-progress >/dev/null 2>&1
"$moevk" info "$tmp/rules.gguf" --json >"$tmp/rules.json" 2>&1
types_of() {  # the stored type of tensor $2 in `moevk info --json` output $1
  python3 -c "import json,sys; print({t['name']: t['type'] for t in json.load(open(sys.argv[1]))['tensors']}[sys.argv[2]])" "$1" "$2"
}
check "make-model --tensor-type: the downs are q4_0" test "$(types_of "$tmp/rules.json" blk.1.ffn_down_exps.weight)" = q4_0
check "make-model --tensor-type: the output head is f16" test "$(types_of "$tmp/rules.json" output.weight)" = f16
check "make-model --tensor-type: the rest is q8_0" test "$(types_of "$tmp/rules.json" blk.1.ffn_up_exps.weight)" = q8_0
"$moevk" make-model --preset tiny --tensor-type ffn_dwn=q4_0 -o "$tmp/typo.gguf" --no-progress >/dev/null 2>"$tmp/err"; rc=$?
check "make-model: a rule matching no tensor fails" test "$rc" = 1
check "make-model: the rule is named" grep -q "'ffn_dwn=q4_0' matches no matrix" "$tmp/err"
check "make-model: nothing written for a bad rule" test ! -e "$tmp/typo.gguf"
# llama-quantize's mixes: --type q4_k_m chooses per tensor (Qwen3 preset, 256 wide so the
# K-quant blocks fit; use_more_bits holds for the last of 3 layers), info names the file type,
# and the file generates.
"$moevk" make-model --preset tiny-qwen3moe --embd 256 --ff 256 --type Q4_K_M -o "$tmp/q4km.gguf" --no-progress \
  >/dev/null 2>&1
"$moevk" info "$tmp/q4km.gguf" --json >"$tmp/q4km.json" 2>&1
check "q4_k_m: a middle down is q4_K" test "$(types_of "$tmp/q4km.json" blk.1.ffn_down_exps.weight)" = q4_K
check "q4_k_m: the last layer's down is q6_K" test "$(types_of "$tmp/q4km.json" blk.2.ffn_down_exps.weight)" = q6_K
check "q4_k_m: the output head is q6_K" test "$(types_of "$tmp/q4km.json" output.weight)" = q6_K
"$moevk" info "$tmp/q4km.gguf" >"$tmp/q4km.txt" 2>&1
check "info names the file type" grep -q "file type *Q4_K_M (general.file_type 15)" "$tmp/q4km.txt"
"$moevk" run -m "$tmp/q4km.gguf" --prompt-ids 5,6,7 -n 3 --greedy --no-progress >/dev/null 2>"$tmp/err"; rc=$?
check "a q4_k_m file generates" test "$rc" = 0
"$moevk" make-model --preset tiny --type q4_k_q -o "$tmp/bad.gguf" --no-progress >/dev/null 2>"$tmp/err"; rc=$?
check "an unknown mix is refused" test "$rc" != 0
check "an unknown mix is named" grep -q "q4_k_q" "$tmp/err"

# Expert statistics give each expert's share of its layer.
"$moevk" run -m "$tmp/m.gguf" --prompt-ids 5,6,7 -n 2 --greedy --expert-stats --no-progress >/dev/null 2>"$tmp/err"
check "expert stats print shares" grep -Eq '^layer +0: +[0-9]+ +[0-9.]+%' "$tmp/err"

# Two chat turns through a pipe; the placeholder vocabulary has no template, so name one.
printf 'hello\nand again\n' | "$moevk" chat -m "$tmp/m.gguf" --chat-template chatml -n 4 --greedy --no-progress \
  >"$tmp/chat.out" 2>"$tmp/chat.err"; rc=$?
check "chat exits 0" test "$rc" = 0
check "chat answered two turns" test "$(grep -c 'tokens/s' "$tmp/chat.err")" = 2
# The second turn continues from everything the first one read and streamed, its last token too.
turns=$(sed -n 's/.*\[\([0-9]*\) prompt tokens after \([0-9]*\) cached, \([0-9]*\) tokens.*/\1 \2 \3/p' "$tmp/chat.err" | tr '\n' ' ')
read -r p1 c1 g1 p2 c2 g2 <<<"$turns"
check "chat turn 1 starts empty ($turns)" test "${c1:-x}" = 0
check "chat turn 2 reuses turn 1's $p1 prompt + $g1 answer tokens (cached ${c2:-?})" test "${c2:-x}" = "$((p1 + g1))"
# After a stop string the context rewinds to the end of turn 1's prompt (moevk_context_truncate):
# turn 2 reads turn 1's answer again, but not the prompt before it (this vocabulary's tokens are
# all "tok_<n>" or bytes, so greedy text meets the stop string within a few tokens).
printf 'hello\nand again\n' | "$moevk" chat -m "$tmp/m.gguf" --chat-template chatml -n 16 --greedy --no-progress \
  --stop tok_ >"$tmp/chat.out" 2>"$tmp/chat.err"; rc=$?
check "chat with a stop string exits 0" test "$rc" = 0
turns=$(sed -n 's/.*\[\([0-9]*\) prompt tokens after \([0-9]*\) cached, \([0-9]*\) tokens.*/\1 \2 \3/p' "$tmp/chat.err" | tr '\n' ' ')
read -r p1 c1 g1 p2 c2 g2 <<<"$turns"
check "chat turn 1 stopped before its 16 tokens ($turns)" test "${g1:-16}" -lt 16
check "chat turn 2 after a stop string reuses turn 1's $p1 prompt tokens (cached ${c2:-?})" test "${c2:-x}" = "${p1:-y}"
printf 'hello\n' | "$moevk" chat -m "$tmp/m.gguf" -n 4 --no-progress >/dev/null 2>"$tmp/chat.err"; rc=$?
check "chat without a template fails" test "$rc" = 1
check "chat without a template says so" grep -qi "chat template" "$tmp/chat.err"
"$moevk" chat -m "$tmp/m.gguf" --chat-template nonsense -n 4 --no-progress </dev/null >/dev/null 2>"$tmp/chat.err"; rc=$?
check "unknown template is rejected before any input" test "$rc" = 1
check "unknown template is rejected" grep -qi "not understood" "$tmp/chat.err"
check "unknown template error lists the names" grep -q "chatml, mistral" "$tmp/chat.err"
# --think off passes enable_thinking=false: chatml then writes Qwen3's empty reasoning block, one
# turn reads it, and a value other than on/off is refused.
printf 'hello\n' | "$moevk" chat -m "$tmp/m.gguf" --chat-template chatml --think off -n 2 --greedy --no-progress \
  >/dev/null 2>"$tmp/chat.err"; rc=$?
check "chat --think off exits 0" test "$rc" = 0
"$moevk" chat -m "$tmp/m.gguf" --think maybe --no-progress </dev/null >/dev/null 2>"$tmp/chat.err"; rc=$?
check "chat --think maybe is refused (exit 2)" test "$rc" = 2
check "chat --think maybe names the option" grep -q -- "--think" "$tmp/chat.err"

# One turn for scripts: --messages FILE (here stdin) prints one JSON line, the answer's text on
# stderr (the tools in chatml's system turn make the prompt long for this byte vocabulary: -c);
# bad JSON is the caller's error, named.
printf '[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]' >"$tmp/messages.json"
printf '[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]' >"$tmp/tools.json"
"$moevk" chat -m "$tmp/m.gguf" --chat-template chatml --messages - --tools "$tmp/tools.json" -n 3 -c 2048 --greedy \
  --no-progress <"$tmp/messages.json" >"$tmp/once.out" 2>"$tmp/once.err"; rc=$?
check "chat --messages exits 0" test "$rc" = 0
check "chat --messages prints one line" test "$(wc -l <"$tmp/once.out")" = 1
check "chat --messages prints the message, finish reason and usage" python3 -c "
import json, sys
out = json.load(open(sys.argv[1]))
assert out['message']['role'] == 'assistant' and isinstance(out['message']['content'], str), out
assert out['finish_reason'] in ('stop', 'length', 'tool_calls'), out
assert out['usage']['completion_tokens'] == 3 or out['finish_reason'] != 'length', out
assert out['usage']['prompt_tokens'] > 0, out" "$tmp/once.out"
# --stream: delta lines as the answer comes (reasoning, then content, the call's text held back),
# the last with the call, then the message; the deltas add up to it.
stream_grammar='root ::= "<think>\nhmm\n</think>\n\nOK then.<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>"'
printf '[{"role": "user", "content": "hello"}]' | "$moevk" chat -m "$tmp/m.gguf" --chat-template chatml --messages - \
  --tools "$tmp/tools.json" -n 200 -c 2048 --greedy --no-progress --stream --grammar "$stream_grammar" \
  >"$tmp/stream.out" 2>/dev/null; rc=$?
check "chat --messages --stream exits 0" test "$rc" = 0
check "chat --stream deltas add up to the message, the call whole at the end" python3 -c "
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
deltas, last = [l['delta'] for l in lines[:-1]], lines[-1]
m = last['message']
assert len(deltas) > 5, deltas
assert ''.join(d.get('reasoning_content', '') for d in deltas) == m['reasoning_content'] == 'hmm', lines
assert ''.join(d.get('content', '') for d in deltas) == m['content'] == 'OK then.', lines
assert all('tool_calls' not in d for d in deltas[:-1]) and deltas[-1]['tool_calls'] == m['tool_calls'], lines
assert last['finish_reason'] == 'tool_calls', last" "$tmp/stream.out"
"$moevk" chat -m "$tmp/m.gguf" --chat-template chatml --stream </dev/null >/dev/null 2>"$tmp/err"; rc=$?
check "chat --stream without --messages is refused (exit 2)" test "$rc" = 2
# --tool-choice NAME: the answer is a call to that tool from its first token; a name that is not
# among the tools is an error, and --tool-choice needs --tools.
printf '[{"role": "user", "content": "hello"}]' | "$moevk" chat -m "$tmp/m.gguf" --chat-template chatml --messages - \
  --tools "$tmp/tools.json" --tool-choice f -n 40 -c 2048 --greedy --no-progress >/dev/null 2>"$tmp/choice.err"; rc=$?
check "chat --tool-choice f exits 0" test "$rc" = 0
check "chat --tool-choice f answers with a call to f" grep -q '^<tool_call>$' "$tmp/choice.err"
check "chat --tool-choice f writes f's name first" grep -q '^{"name": "f", "arguments": ' "$tmp/choice.err"
printf '[{"role": "user", "content": "hello"}]' | "$moevk" chat -m "$tmp/m.gguf" --chat-template chatml --messages - \
  --tools "$tmp/tools.json" --tool-choice later -n 4 -c 2048 --no-progress >/dev/null 2>"$tmp/err"; rc=$?
check "chat --tool-choice of an undeclared tool fails" test "$rc" = 1
check "chat --tool-choice of an undeclared tool names it" grep -q 'tool_choice names "later", which is not among the tools' "$tmp/err"
"$moevk" chat -m "$tmp/m.gguf" --chat-template chatml --tool-choice required </dev/null >/dev/null 2>"$tmp/err"; rc=$?
check "chat --tool-choice without --tools is refused (exit 2)" test "$rc" = 2
# A schema the tool-call grammar cannot hold ("pattern"): generated freely, with a warning.
printf '[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "string", "pattern": "a+"}}}}}]' >"$tmp/tools_pattern.json"
"$moevk" chat -m "$tmp/m.gguf" --chat-template chatml --messages - --tools "$tmp/tools_pattern.json" -n 2 -c 2048 --greedy \
  --no-progress <"$tmp/messages.json" >"$tmp/once.out" 2>"$tmp/once.err"; rc=$?
check "chat --tools with a schema the grammar cannot hold exits 0" test "$rc" = 0
check "chat --tools warns that calls are not held, naming the keyword" grep -q "warning: tool calls are not held to the tools' schemas: .*pattern" "$tmp/once.err"
# Interactive tool use: each call is shown and its result typed on a "tool NAME>" line, then the
# model goes on from the cache; /reset starts over (here at a tool prompt), /exit ends. The
# grammar makes this model call a tool every time.
call_grammar='root ::= "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>"'
printf 'hello\nsunny\n/reset\nhi\n/exit\n' | "$moevk" chat -m "$tmp/m.gguf" --chat-template chatml --tools "$tmp/tools.json" \
  -n 64 -c 2048 --greedy --no-progress --grammar "$call_grammar" >"$tmp/tools_chat.out" 2>"$tmp/tools_chat.err"; rc=$?
check "interactive chat with --tools exits 0" test "$rc" = 0
check "interactive chat shows each tool call with its arguments" test "$(grep -c '^\[tool call [A-Za-z0-9]\{9\}: f {"x":1}\]' "$tmp/tools_chat.err")" = 3
check "interactive chat asks for each call's result" test "$(grep -o 'tool f> ' "$tmp/tools_chat.err" | wc -l)" = 3
check "/reset at a tool prompt starts over" grep -q "the conversation starts over" "$tmp/tools_chat.err"
cached=$(sed -n 's/.*prompt tokens after \([0-9]*\) cached.*/\1/p' "$tmp/tools_chat.err" | tr '\n' ' ')
read -r t1 t2 t3 <<<"$cached"
check "the answer after a tool result reuses the cache, the turn after /reset does not ($cached)" \
  test "${t1:-x}" = 0 -a "${t2:-0}" -gt 0 -a "${t3:-x}" = 0
check "the tool result reaches the prompt as Qwen's <tool_response>" test "$(grep -c '<tool_call>' "$tmp/tools_chat.out")" = 3
"$moevk" chat -m "$tmp/m.gguf" --chat-template chatml --tools - </dev/null >/dev/null 2>"$tmp/err"; rc=$?
check "interactive chat --tools - is refused (exit 2)" test "$rc" = 2
check "interactive chat --tools - says why" grep -q -- "--tools - without --messages" "$tmp/err"
# /reset in a plain chat: the next turn starts from an empty context.
printf 'hello\n/reset\nagain\n' | "$moevk" chat -m "$tmp/m.gguf" --chat-template chatml -n 2 --greedy --no-progress \
  >/dev/null 2>"$tmp/chat.err"; rc=$?
cached=$(sed -n 's/.*prompt tokens after \([0-9]*\) cached.*/\1/p' "$tmp/chat.err" | tr '\n' ' ')
check "chat /reset exits 0 and the next turn starts empty ($cached)" test "$rc" = 0 -a "$cached" = "0 0 "
"$moevk" chat -m "$tmp/m.gguf" --chat-template chatml --messages "$tmp/missing.json" </dev/null >/dev/null 2>"$tmp/err"; rc=$?
check "chat --messages of a missing file is refused (exit 2)" test "$rc" = 2
check "chat --messages names the missing file" grep -q "missing.json" "$tmp/err"
printf '[{"role": "user", "content": "hi"' >"$tmp/broken.json"
"$moevk" chat -m "$tmp/m.gguf" --chat-template chatml --messages "$tmp/broken.json" -n 2 --no-progress \
  >/dev/null 2>"$tmp/err"; rc=$?
check "chat --messages of broken JSON fails" test "$rc" = 1
check "chat --messages of broken JSON says so" grep -q "messages_json is not JSON" "$tmp/err"

"$moevk" run -m "$tmp/missing.gguf" -p hi >/dev/null 2>"$tmp/err"; rc=$?
check "missing model fails" test "$rc" != 0
check "missing model is named" grep -q "missing.gguf" "$tmp/err"
head -c 100 /dev/urandom >"$tmp/garbage.gguf"
"$moevk" run -m "$tmp/garbage.gguf" -p hi >/dev/null 2>"$tmp/err"; rc=$?
check "garbage model fails cleanly" test "$rc" = 1
check "garbage model error says why" grep -qi "gguf\|magic" "$tmp/err"
# bench -m A -m B, as llama-bench: one table of both files' rows; a file that does not load is
# its error, the others still run, and the exit status says one failed.
"$moevk" bench -m "$tmp/m.gguf" -m "$tmp/e128.gguf" -p 4 -n 2 -r 1 -o jsonl --no-progress >"$tmp/two.jsonl" 2>"$tmp/err"; rc=$?
check "bench -m twice exits 0" test "$rc" = 0
check "bench -m twice: each file's rows" test "$(grep -c '"model":"[^"]*e128.gguf"' "$tmp/two.jsonl") $(grep -c '"model":"[^"]*/m.gguf"' "$tmp/two.jsonl")" = "2 2"
"$moevk" bench -m "$tmp/garbage.gguf" -m "$tmp/m.gguf" -p 4 -n 0 -r 1 --no-progress >"$tmp/two.md" 2>"$tmp/err"; rc=$?
check "bench: a file that does not load fails the run" test "$rc" = 1
check "bench: its error names it" grep -q "garbage.gguf" "$tmp/err"
check "bench: the other file's rows still print" grep -q "| qwen3moe | .* | pp4 | [0-9.]* ± " "$tmp/two.md"
"$moevk" run -m "$tmp/m.gguf" --prompt-ids 1,2,3,4,5,6,7,8,9,10 -c 8 -n 4 --no-progress >/dev/null 2>"$tmp/err"; rc=$?
check "prompt longer than the context fails" test "$rc" = 1
check "context error is clear" grep -qi "context" "$tmp/err"
check "context error suggests -c" grep -q -- "-c N" "$tmp/err"

# split / merge: a set of four (the 39 tensors of qwen3moe-tiny, 10 per file) loads and generates what the single file does; info lists the
# files; a later file is refused naming the first; merged back, the same bytes.
"$moevk" split "$tmp/m.gguf" "$tmp/set" --split-max-tensors 10 --no-progress >"$tmp/split.out" 2>"$tmp/err"; rc=$?
check "split writes four files" test "$rc" = 0 -a "$(grep -c '^wrote .*-0000[1-4]-of-00004.gguf$' "$tmp/split.out")" = 4
"$moevk" info "$tmp/set-00001-of-00004.gguf" >"$tmp/split_info" 2>&1
check "info lists a set's files" grep -q "files  *4, a split set" "$tmp/split_info"
"$moevk" run -m "$tmp/m.gguf" --prompt-ids 1,2,3 -n 6 --print-ids --no-progress >"$tmp/gen_single" 2>/dev/null
"$moevk" run -m "$tmp/set-00001-of-00004.gguf" --prompt-ids 1,2,3 -n 6 --print-ids --no-progress >"$tmp/gen_set" 2>/dev/null
check "a split set generates what the single file does" bash -c "test -s '$tmp/gen_single' && cmp -s '$tmp/gen_single' '$tmp/gen_set'"
"$moevk" run -m "$tmp/set-00002-of-00004.gguf" -p hi --no-progress >/dev/null 2>"$tmp/err"; rc=$?
check "a later file of a set is refused" test "$rc" = 1
check "the refusal names the first file" grep -q "open the first file, .*set-00001-of-00004.gguf" "$tmp/err"
"$moevk" split --merge "$tmp/set-00001-of-00004.gguf" "$tmp/merged.gguf" --no-progress >/dev/null 2>&1
check "merge gives back the file" cmp -s "$tmp/m.gguf" "$tmp/merged.gguf"
"$moevk" split "$tmp/m.gguf" "$tmp/set" --split-max-size 12Q >/dev/null 2>"$tmp/err"; rc=$?
check "split refuses a bad size" test "$rc" = 2

# Constrained output: a GBNF grammar and a JSON Schema hold what random weights write; errors
# in either are named.
check "run --help lists --grammar and -j" bash -c "grep -q -- '--grammar GBNF' '$tmp/run_help' && grep -q -- '-j, --json-schema JSON' '$tmp/run_help'"
"$moevk" run -m "$tmp/m.gguf" -p hi -n 40 --grammar 'root ::= "a"+ "b"' --no-progress >"$tmp/grammar.out" 2>"$tmp/grammar.err"; rc=$?
check "run --grammar exits 0" test "$rc" = 0
check "run --grammar: the text is a sentence of the grammar" bash -c "head -n 1 '$tmp/grammar.out' | grep -Eq '^hia+b$'"
check "run --grammar: it stops where the grammar ends" grep -q "stopped: grammar complete" "$tmp/grammar.err"
printf '%s' '{"type": "object", "properties": {"x": {"type": "integer"}, "y": {"enum": ["p", "q"]}}, "required": ["x", "y"]}' \
  >"$tmp/schema.json"
"$moevk" run -m "$tmp/m.gguf" -p hi -n 60 --temp 1 --seed 3 -jf "$tmp/schema.json" --no-progress >"$tmp/schema.out" 2>/dev/null; rc=$?
check "run -jf exits 0" test "$rc" = 0
check "run -jf: the output is the schema's object" \
  bash -c "tr -d ' \t\n' <'$tmp/schema.out' | grep -Eq '^hi\{\"x\":-?[0-9]+,\"y\":\"[pq]\"\}$'"
"$moevk" run -m "$tmp/m.gguf" -p hi --grammar 'root ::= "a"' -j '{}' --no-progress >/dev/null 2>"$tmp/err"; rc=$?
check "--grammar with -j is refused (exit 2)" test "$rc" = 2
check "--grammar with -j: the message says to give one" grep -q "give one" "$tmp/err"
"$moevk" run -m "$tmp/m.gguf" -p hi --grammar-file "$tmp/no-such.gbnf" --no-progress >/dev/null 2>"$tmp/err"; rc=$?
check "--grammar-file of a missing file is refused (exit 2)" test "$rc" = 2
check "--grammar-file: the file is named" grep -q "cannot read .*no-such.gbnf" "$tmp/err"
"$moevk" run -m "$tmp/m.gguf" -p hi --grammar 'root ::= item' --no-progress >/dev/null 2>"$tmp/err"; rc=$?
check "a bad grammar fails (exit 1)" test "$rc" = 1
check "a bad grammar: the rule and place are named" grep -q 'line 1, column 10: rule "item" is used but not defined' "$tmp/err"
"$moevk" run -m "$tmp/m.gguf" -p hi -j '{"type": "integer", "minimum": 5}' --no-progress >/dev/null 2>"$tmp/err"; rc=$?
check "an unsupported schema keyword fails (exit 1)" test "$rc" = 1
check "an unsupported schema keyword is named" grep -q '"minimum"' "$tmp/err"

# chat under a grammar, on a file whose template is Qwen3's (it thinks first): thinking is turned
# off, and the user told, unless --think is given.
mkdir -p "$tmp/q3hf"
cp "$data/hf/qwen2moe-tiny/config.json" "$data/hf/qwen2moe-tiny/model.safetensors" "$tmp/q3hf/"
printf '%s' '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3}, "merges": ["a b"]},
  "pre_tokenizer": {"type": "ByteLevel"}}' >"$tmp/q3hf/tokenizer.json"
python3 -c "import json, sys; t = json.load(open(sys.argv[1]))['qwen3']; json.dump({'chat_template': t}, open(sys.argv[2], 'w'))" \
  "$data/text/chat_templates.json" "$tmp/q3hf/tokenizer_config.json"
"$moevk" convert "$tmp/q3hf" -o "$tmp/q3.gguf" --no-progress >/dev/null 2>&1
echo '[{"role": "user", "content": "ab?"}]' >"$tmp/ab.json"
"$moevk" chat -m "$tmp/q3.gguf" --messages "$tmp/ab.json" --grammar 'root ::= "ab"+ "b"' -n 8 --temp 1 --no-progress \
  >"$tmp/ab.out" 2>"$tmp/ab.err"; rc=$?
check "chat --messages --grammar exits 0" test "$rc" = 0
check "chat under a grammar: thinking is turned off, and said" grep -q "thinking is off" "$tmp/ab.err"
check "chat --messages --grammar: the answer is a sentence of the grammar" \
  python3 -c "import json, re, sys; m = json.load(open(sys.argv[1]))['message']; sys.exit(not re.fullmatch('(ab)+b', m['content']))" "$tmp/ab.out"
"$moevk" chat -m "$tmp/q3.gguf" --messages "$tmp/ab.json" --grammar 'root ::= "ab"+' --think on -n 4 --no-progress \
  >/dev/null 2>"$tmp/ab.err"; rc=$?
check "chat --think on under a grammar keeps thinking, silently" bash -c "test $rc = 0 && ! grep -q 'thinking is off' '$tmp/ab.err'"
# A lazy grammar: the trigger "</think>" lets the model think freely first; thinking stays on.
"$moevk" chat -m "$tmp/q3.gguf" --messages "$tmp/ab.json" --grammar 'root ::= "ab"' --grammar-trigger '</think>' -n 4 \
  --no-progress >/dev/null 2>"$tmp/ab.err"; rc=$?
check "chat --grammar-trigger exits 0, thinking on" bash -c "test $rc = 0 && ! grep -q 'thinking is off' '$tmp/ab.err'"
"$moevk" run -m "$tmp/m.gguf" -p hi --grammar-trigger x --no-progress >/dev/null 2>"$tmp/err"; rc=$?
check "--grammar-trigger without a grammar fails (exit 1), said" \
  bash -c "test $rc = 1 && grep -q 'grammar_trigger without a grammar' '$tmp/err'"

# MOEVK_VALIDATE=1 (set by CTest) puts the validation layer under every command above; any
# message it printed fails this test.
check "no Vulkan validation messages" bash -c "! grep -l 'moevk validation' '$tmp'/* 2>/dev/null"

echo "$pass passed, $fails failed"
test "$fails" = 0

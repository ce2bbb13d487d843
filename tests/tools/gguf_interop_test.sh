#!/bin/bash
# Our GGUF files as an independent reader sees them: every file `moevk convert` and
# `moevk make-model` write is parsed by @huggingface/gguf (tests/tools/gguf_js_check.mjs) and must
# agree with `moevk info --json` (tensor names, shapes, ggml type ids, offsets, sizes, the
# hyperparameter keys llama.cpp reads with their exact GGUF types) and keep tensor data aligned.
# Args: path to `moevk`, tests/data folder. Needs node and tests/data/npm/node_modules.
set -u
CLI="$1"
DATA="$2"
CHECK="$(dirname "$0")/gguf_js_check.mjs"
fail() { echo "FAIL: $*"; exit 1; }

command -v node > /dev/null || fail "node is not installed (run scripts/install-deps.sh)"
[ -d "$DATA/npm/node_modules/@huggingface/gguf" ] \
  || fail "$DATA/npm/node_modules/@huggingface/gguf is missing: run scripts/install-deps.sh (or: cd tests/data/npm && npm ci)"

TMP=$(mktemp -d)
# Validation messages the commands wrote into captured files are echoed to stderr, where
# CTest's FAIL_REGULAR_EXPRESSION on the marker sees them.
trap 'grep -sh "\[moevk validation\]" "$TMP"/* >&2 || true; rm -rf "$TMP"' EXIT

checked=0
# check NAME: parse $TMP/NAME.gguf with the JS reader and compare with `moevk info --json`.
check() {
  local f="$TMP/$1.gguf"
  "$CLI" info "$f" --json > "$TMP/$1.info.json" 2> "$TMP/$1.info.err" || fail "moevk info $1: $(cat "$TMP/$1.info.err")"
  node "$CHECK" "$f" "$TMP/$1.info.json" > "$TMP/$1.js.json" 2> "$TMP/$1.js.err" \
    || fail "JS GGUF reader disagrees on $1:
$(cat "$TMP/$1.js.err")"
  checked=$((checked + 1))
}

for dir in "$DATA"/hf/*/; do
  name=$(basename "$dir")
  [ -f "$dir/config.json" ] || continue
  types="f16 q4_0"
  [ "$name" = qwen3moe-tiny ] && types="$types q4_k"
  for t in $types; do
    "$CLI" convert "$dir" -o "$TMP/$name-$t.gguf" --type "$t" --no-progress > /dev/null 2> "$TMP/convert.err" \
      || fail "convert $name $t: $(cat "$TMP/convert.err")"
    check "$name-$t"
  done
done

for preset in tiny tiny-qwen2moe tiny-qwen3moe tiny-llama tiny-qwen2 tiny-qwen3; do
  "$CLI" make-model --preset "$preset" --type q4_0 -o "$TMP/$preset.gguf" --no-progress > /dev/null 2> "$TMP/make.err" \
    || fail "make-model $preset: $(cat "$TMP/make.err")"
  check "$preset"
done
# The fixtures are 64 wide, so K-quants fall back to q8_0 there: every other stored type on a
# model whose rows are multiples of 256 (a Mixtral-style MoE and a dense Llama).
for t in q4_1 q5_0 q5_1 q8_0 q4_k q6_k bf16 f32; do
  "$CLI" make-model --preset tiny --embd 256 --type "$t" -o "$TMP/wide-$t.gguf" --no-progress > /dev/null 2> "$TMP/make.err" \
    || fail "make-model tiny --embd 256 --type $t: $(cat "$TMP/make.err")"
  check "wide-$t"
  grep -qi "\"type\": \"$t\"" "$TMP/wide-$t.info.json" || fail "wide-$t.gguf stores no $t tensor"
done
"$CLI" make-model --preset tiny-llama --embd 256 --ff 512 --type q4_k -o "$TMP/dense-q4_k.gguf" --no-progress > /dev/null 2>&1 \
  || fail "make-model tiny-llama --embd 256 --type q4_k"
check dense-q4_k
[ "$checked" -ge 20 ] || fail "only $checked files were checked (fixtures missing from $DATA/hf?)"

# The checker itself must notice a disagreement: a tensor type and a hyperparameter changed in
# our report are caught and named.
sed -e '0,/"type_id": [0-9]*/s//"type_id": 99/' -e 's/"n_embd": 64/"n_embd": 65/' "$TMP/tiny.info.json" > "$TMP/bad.json"
node "$CHECK" "$TMP/tiny.gguf" "$TMP/bad.json" > /dev/null 2> "$TMP/bad.err" && fail "checker accepted a wrong report"
grep -q "ggml type JS 2, ours 99" "$TMP/bad.err" || fail "checker did not name the wrong type: $(cat "$TMP/bad.err")"
grep -q "embedding_length = 64, moevk info says 65" "$TMP/bad.err" || fail "checker did not name the wrong width: $(cat "$TMP/bad.err")"
echo "PASS ($checked files)"

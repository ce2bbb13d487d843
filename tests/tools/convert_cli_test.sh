#!/bin/bash
# CLI of the file commands: convert, make-model, info. Args: path to `moevk`, tests/data folder.
set -u
CLI="$1"
DATA="$2"
TMP=$(mktemp -d)
# Validation messages the commands wrote into captured files are echoed to stderr, where
# CTest's FAIL_REGULAR_EXPRESSION on the marker sees them.
trap 'grep -sh "\[moevk validation\]" "$TMP"/* >&2 || true; rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$CLI" convert "$DATA/hf/mixtral-tiny" -o "$TMP/m.gguf" --type q8_0 --no-progress > "$TMP/convert.out" 2> "$TMP/convert.err" \
  || fail "convert: $(cat "$TMP/convert.err")"
grep -q "architecture      llama" "$TMP/convert.out" || fail "convert summary: $(cat "$TMP/convert.out")"
grep -q "placeholder vocabulary" "$TMP/convert.err" || fail "convert should note the placeholder vocabulary"

"$CLI" info "$TMP/m.gguf" --json > "$TMP/info.json" || fail "info --json"
python3 - "$TMP/info.json" <<'PY' || fail "info json content"
import json, sys
j = json.load(open(sys.argv[1]))
h = j["hparams"]
assert h["architecture"] == "llama" and h["n_expert"] == 8 and h["n_expert_used"] == 2, h
assert h["n_layer"] == 2 and h["n_embd"] == 64 and h["n_ff_exp"] == 96, h
assert j["kv_bytes_per_token"] == 2 * 2 * 2 * 16 * 2, j["kv_bytes_per_token"]
assert j["active_params"] < j["total_params"]
assert {t["type"] for t in j["types"]} == {"q8_0", "f32"}, j["types"]
PY
"$CLI" info "$TMP/m.gguf" | grep -q "read per token" || fail "info table"

"$CLI" make-model --preset tiny-qwen3moe --type q4_0 -o "$TMP/t.gguf" --no-progress > /dev/null 2>&1 || fail "make-model"
"$CLI" info "$TMP/t.gguf" | grep -q "qwen3moe" || fail "info of make-model output"
"$CLI" make-model --preset qwen3-30b-a3b --dry-run --json > "$TMP/dry.json" || fail "dry run"
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert 30e9 < j['total_params'] < 31e9, j['total_params']" "$TMP/dry.json" \
  || fail "qwen3-30b-a3b should have ~30.5 B parameters"
[ "$(ls "$TMP"/*.gguf | wc -l)" = 2 ] || fail "dry run wrote a file: $(ls "$TMP")"

# Errors: usage errors exit 2, failures exit 1 with a message, no partial output.
"$CLI" convert "$DATA/hf/mixtral-tiny" > /dev/null 2>&1; [ $? = 2 ] || fail "convert without -o should exit 2"
"$CLI" make-model --layers zero -o "$TMP/x.gguf" > /dev/null 2>&1; [ $? = 2 ] || fail "bad number should exit 2"
"$CLI" make-model --preset nope -o "$TMP/x.gguf" 2> "$TMP/err" > /dev/null; [ $? = 1 ] || fail "unknown preset should exit 1"
grep -q "unknown preset" "$TMP/err" || fail "unknown preset message"
"$CLI" info "$TMP/missing.gguf" > /dev/null 2>&1; [ $? = 1 ] || fail "info of a missing file should exit 1"
"$CLI" convert "$TMP" -o "$TMP/x.gguf" > /dev/null 2>&1; [ $? = 1 ] || fail "convert of a folder without a checkpoint"
[ ! -e "$TMP/x.gguf" ] || fail "partial output left behind"
for c in convert make-model info; do "$CLI" $c --help | grep -q usage || fail "$c --help"; done
echo PASS

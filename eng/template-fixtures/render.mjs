// Renders Jinja chat templates with @huggingface/jinja for the tests: reads a JSON array of
// {"template", "messages", "bos_token", "eos_token", "add_generation_prompt"} from stdin and
// writes a JSON array of {"output"} or {"error"}.
import { Template } from "@huggingface/jinja";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map((c) => {
  try {
    const { template, ...context } = c;
    return { output: new Template(template).render(context) };
  } catch (e) {
    return { error: String(e && e.message || e) };
  }
});
process.stdout.write(JSON.stringify(results));

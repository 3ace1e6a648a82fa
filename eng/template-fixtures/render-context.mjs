// Renders Jinja templates with @huggingface/jinja for the engine's feature tests: reads a JSON
// array of {"template", "context"} from stdin and writes a JSON array of {"output"} or {"error"}.
//   echo '[{"template":"{{ x | upper }}","context":{"x":"a"}}]' | node eng/template-fixtures/render-context.mjs
import { Template } from "@huggingface/jinja";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map(({ template, context }) => {
  try {
    return { output: new Template(template).render(context) };
  } catch (e) {
    return { error: String((e && e.message) || e) };
  }
});
process.stdout.write(JSON.stringify(results));

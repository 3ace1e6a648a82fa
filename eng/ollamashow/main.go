// Command ollamashow prints the "parameters" text of Ollama's /api/show for the parameters of an
// /api/create request, formatted as Ollama's server does it (server/routes.go: one line per value,
// fmt.Sprintf("%-*s %#v", 30, key, value), list values one line each). Go decodes JSON numbers as
// float64, as the server's map[string]any does. Ollama iterates a Go map (random order); keys are
// sorted here so the output is reproducible.
//
// Input on stdin: a JSON object, e.g. {"stop": ["<|eot_id|>"], "temperature": 0.7}.
// Output on stdout: the parameters text.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

func main() {
	var options map[string]any
	if err := json.NewDecoder(os.Stdin).Decode(&options); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keys := make([]string, 0, len(options))
	for k := range options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var params []string
	for _, k := range keys {
		switch val := options[k].(type) {
		case []any:
			for _, nv := range val {
				params = append(params, fmt.Sprintf("%-*s %#v", 30, k, nv))
			}
		default:
			params = append(params, fmt.Sprintf("%-*s %#v", 30, k, val))
		}
	}
	fmt.Print(strings.Join(params, "\n"))
}

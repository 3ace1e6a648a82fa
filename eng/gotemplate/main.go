// Command gotemplate renders Ollama TEMPLATE strings with Go's own text/template, filling the
// variables the way Ollama's server does (template.Execute in github.com/ollama/ollama): system
// messages are collated into .System, consecutive messages of one role are merged with a blank
// line, and a template that mentions .Messages gets .System/.Messages; any other template is run
// once per turn with .System/.Prompt/.Response and cut after .Response for the last turn.
//
// Input on stdin: a JSON array of {"template": string, "messages": [{"role", "content"}], "legacy": bool};
// legacy forces the per-turn .System/.Prompt/.Response path even when the template mentions
// .Messages (as Ollama's own tests do), to check a template's single-turn branch.
// Output on stdout: a JSON array of {"output": string} or {"error": string}, one per case.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"text/template/parse"
)

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type testCase struct {
	Template string    `json:"template"`
	Messages []message `json:"messages"`
	Legacy   bool      `json:"legacy"`
}

type result struct {
	Output *string `json:"output,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// Ollama's templates may call these; the date helpers are fixed here so output is reproducible.
var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"currentDate":   func(args ...string) string { return "2024-01-01" },
	"yesterdayDate": func(args ...string) string { return "2023-12-31" },
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "gotemplate: reading cases from stdin:", err)
		os.Exit(2)
	}
	results := make([]result, len(cases))
	for i, c := range cases {
		out, err := render(c.Template, c.Messages, c.Legacy)
		if err != nil {
			results[i].Error = err.Error()
		} else {
			results[i].Output = &out
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "gotemplate:", err)
		os.Exit(2)
	}
}

func render(text string, msgs []message, legacy bool) (string, error) {
	tmpl, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(text)
	if err != nil {
		return "", err
	}
	system, collated := collate(msgs)

	var b bytes.Buffer
	if !legacy && mentions(tmpl.Tree.Root, "messages") {
		err := tmpl.Execute(&b, map[string]any{"System": system, "Messages": collated, "Response": ""})
		return b.String(), err
	}

	// Legacy templates: one execution per completed turn, then the last turn up to .Response.
	system = ""
	var prompt, response string
	flush := func() error {
		err := tmpl.Execute(&b, map[string]any{"System": system, "Prompt": prompt, "Response": response})
		system, prompt, response = "", "", ""
		return err
	}
	for _, m := range collated {
		switch m.Role {
		case "system":
			if prompt != "" || response != "" {
				if err := flush(); err != nil {
					return "", err
				}
			}
			system = m.Content
		case "user":
			if response != "" {
				if err := flush(); err != nil {
					return "", err
				}
			}
			prompt = m.Content
		case "assistant":
			response = m.Content
		}
	}
	cut := false
	root := prune(tmpl.Tree.Root.Copy(), func(n parse.Node) bool {
		if f, ok := n.(*parse.FieldNode); ok && contains(f.Ident, "Response") {
			cut = true
			return false
		}
		return cut
	})
	last, err := template.New("").Funcs(funcs).AddParseTree("", &parse.Tree{Root: root.(*parse.ListNode)})
	if err != nil {
		return "", err
	}
	if err := last.Execute(&b, map[string]any{"System": system, "Prompt": prompt, "Response": response}); err != nil {
		return "", err
	}
	return b.String(), nil
}

func collate(msgs []message) (string, []*message) {
	var system []string
	var out []*message
	for i := range msgs {
		m := msgs[i]
		if m.Role == "system" {
			system = append(system, m.Content)
		}
		if len(out) > 0 && out[len(out)-1].Role == m.Role {
			out[len(out)-1].Content += "\n\n" + m.Content
		} else {
			out = append(out, &m)
		}
	}
	return strings.Join(system, "\n\n"), out
}

// mentions reports whether a field or variable named name (case-insensitive) occurs in the tree.
func mentions(n parse.Node, name string) bool {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return false
		}
		for _, c := range n.Nodes {
			if mentions(c, name) {
				return true
			}
		}
	case *parse.ActionNode:
		return mentions(n.Pipe, name)
	case *parse.TemplateNode:
		return n.Pipe != nil && mentions(n.Pipe, name)
	case *parse.IfNode:
		return mentionsBranch(&n.BranchNode, name)
	case *parse.RangeNode:
		return mentionsBranch(&n.BranchNode, name)
	case *parse.WithNode:
		return mentionsBranch(&n.BranchNode, name)
	case *parse.PipeNode:
		if n == nil {
			return false
		}
		for _, c := range n.Cmds {
			for _, a := range c.Args {
				if mentions(a, name) {
					return true
				}
			}
		}
	case *parse.FieldNode:
		return identMatches(n.Ident, name)
	case *parse.VariableNode:
		return identMatches(n.Ident, name)
	}
	return false
}

func mentionsBranch(b *parse.BranchNode, name string) bool {
	return mentions(b.Pipe, name) || mentions(b.List, name) || (b.ElseList != nil && mentions(b.ElseList, name))
}

func identMatches(idents []string, name string) bool {
	for _, id := range idents {
		if strings.EqualFold(id, name) {
			return true
		}
	}
	return false
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// prune removes every node for which drop returns true, and commands and actions left empty.
func prune(n parse.Node, drop func(parse.Node) bool) parse.Node {
	if drop(n) {
		return nil
	}
	switch t := n.(type) {
	case *parse.ListNode:
		var kept []parse.Node
		for _, c := range t.Nodes {
			if k := prune(c, drop); k != nil {
				kept = append(kept, k)
			}
		}
		t.Nodes = kept
	case *parse.IfNode:
		pruneBranch(&t.BranchNode, drop)
	case *parse.RangeNode:
		pruneBranch(&t.BranchNode, drop)
	case *parse.WithNode:
		pruneBranch(&t.BranchNode, drop)
	case *parse.ActionNode:
		p := prune(t.Pipe, drop)
		if p == nil {
			return nil
		}
		t.Pipe = p.(*parse.PipeNode)
	case *parse.PipeNode:
		var cmds []*parse.CommandNode
		for _, c := range t.Cmds {
			var args []parse.Node
			for _, a := range c.Args {
				if k := prune(a, drop); k != nil {
					args = append(args, k)
				}
			}
			if len(args) > 0 {
				c.Args = args
				cmds = append(cmds, c)
			}
		}
		if len(cmds) == 0 {
			return nil
		}
		t.Cmds = cmds
	}
	return n
}

func pruneBranch(b *parse.BranchNode, drop func(parse.Node) bool) {
	b.List = prune(b.List, drop).(*parse.ListNode)
	if b.ElseList != nil {
		b.ElseList = prune(b.ElseList, drop).(*parse.ListNode)
	}
}

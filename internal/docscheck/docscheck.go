// Package docscheck keeps the docs (README.md, docs/ and the other READMEs) honest:
//   - Check: every `go run mage.go` command names targets that exist, with the arguments they
//     take;
//   - CheckFigures: every figure (a duration, a percentage, a ratio in a table) names the
//     command that produces it (the figure rule, figures.go);
//   - CheckLinks: every relative link, anchor, backticked repository path and entry of the
//     layout map exists (the link rule, links.go);
//   - CheckVariables: every environment variable a doc names is one the repository reads (the
//     variable rule, variables.go).
package docscheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// Target is a mage target: its name as typed, how many positional arguments it takes, and the
// names of its -name=value options.
type Target struct {
	Name     string
	Required int
	Optional []string
}

// Targets reads the targets from the magefiles in dir (magefile*.go), as mage does: exported
// functions and the methods of mg.Namespace types, with their parameters, and the Aliases.
func Targets(dir string) (map[string]Target, error) {
	files, err := filepath.Glob(filepath.Join(dir, "magefile*.go"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no magefile in %s: %v", dir, err)
	}
	out := map[string]Target{}
	aliases := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, decl := range file.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				name := strings.ToLower(d.Name.Name)
				if d.Recv != nil && len(d.Recv.List) == 1 {
					id, ok := d.Recv.List[0].Type.(*ast.Ident)
					if !ok {
						continue
					}
					name = strings.ToLower(id.Name) + ":" + name
				}
				t := Target{Name: name}
				for _, p := range d.Type.Params.List {
					if sel, ok := p.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Context" {
						continue
					}
					for _, n := range p.Names {
						if _, ptr := p.Type.(*ast.StarExpr); ptr {
							t.Optional = append(t.Optional, strings.ToLower(n.Name))
						} else {
							t.Required++
						}
					}
				}
				out[name] = t
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					vs, ok := spec.(*ast.ValueSpec)
					if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "Aliases" || len(vs.Values) != 1 {
						continue
					}
					lit, ok := vs.Values[0].(*ast.CompositeLit)
					if !ok {
						continue
					}
					for _, el := range lit.Elts {
						kv := el.(*ast.KeyValueExpr)
						key := strings.Trim(kv.Key.(*ast.BasicLit).Value, `"`)
						var target string
						switch v := kv.Value.(type) {
						case *ast.SelectorExpr:
							target = strings.ToLower(fmt.Sprint(v.X) + ":" + v.Sel.Name)
						case *ast.Ident:
							target = strings.ToLower(v.Name)
						}
						aliases[key] = target
					}
				}
			}
		}
	}
	for alias, target := range aliases {
		if t, ok := out[target]; ok {
			t.Name = alias
			out[alias] = t
		}
	}
	return out, nil
}

// command finds `go run mage.go` and what follows it, up to the end of the shell command.
var command = regexp.MustCompile("go run mage\\.go((?:[ \\t]+[^ \\t\\n`|;&)#\"\\]]+)*)")

// Problem is what a check found wrong in a doc: the text at fault (a command, a figure, a link
// or path, a variable) and why.
type Problem struct {
	File  string
	Line  int
	Text  string
	Cause string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: `%s`: %s", p.File, p.Line, p.Text, p.Cause)
}

// Check reads each doc and checks every `go run mage.go` command in it against targets.
func Check(targets map[string]Target, docs ...string) ([]Problem, int, error) {
	var problems []Problem
	n := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			return nil, 0, err
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range command.FindAllStringSubmatch(line, -1) {
				n++
				if cause := checkArgs(targets, strings.Fields(m[1])); cause != "" {
					problems = append(problems, Problem{File: doc, Line: i + 1, Text: strings.TrimSpace(m[0]), Cause: cause})
				}
			}
		}
	}
	return problems, n, nil
}

// checkArgs walks the words after `go run mage.go`: mage's own flags (-l, -v), then targets,
// each followed by its positional arguments and -name=value options.
func checkArgs(targets map[string]Target, words []string) string {
	if len(words) == 0 {
		return ""
	}
	for len(words) > 0 && (words[0] == "-l" || words[0] == "-v" || words[0] == "-h") {
		words = words[1:]
	}
	for len(words) > 0 {
		if strings.HasPrefix(words[0], "<") {
			return "" // a placeholder for any target, as in `go run mage.go <target>`
		}
		name := strings.ToLower(words[0])
		t, ok := targets[name]
		if !ok {
			return fmt.Sprintf("no target %q", words[0])
		}
		words = words[1:]
		for i := 0; i < t.Required; i++ {
			if len(words) == 0 || strings.HasPrefix(words[0], "-") {
				return fmt.Sprintf("%s takes %d argument(s)", t.Name, t.Required)
			}
			words = words[1:]
		}
		for len(words) > 0 && strings.HasPrefix(words[0], "-") {
			opt, _, _ := strings.Cut(strings.TrimLeft(words[0], "-"), "=")
			if !contains(t.Optional, strings.ToLower(opt)) {
				return fmt.Sprintf("%s has no option -%s (it has %v)", t.Name, opt, t.Optional)
			}
			words = words[1:]
		}
		if len(words) > 0 && !isWord(words[0]) {
			return fmt.Sprintf("unexpected %q after %s", words[0], t.Name)
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func isWord(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && r != ':' {
			return false
		}
	}
	return s != ""
}

package docscheck

import (
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The variable rule.
//
// Every environment variable a doc names must be one the repository reads. A doc names a
// variable
//   - in a code span: an ALL_CAPS word with an underscore (`ROLLBACK_SCOPE`), placeholders
//     allowed (`SECRET_<SERVICE>_<KEY>`, `APP_*`);
//   - in a code span or a fenced code block: an assignment (`KUBECONFIG=...`, `FORMAT=json`) or a
//     reference (`$HOME`, `${GO_IMAGE}`), with or without an underscore.
//
// The repository reads a variable when its name is a string literal of the Go code (os.Getenv,
// a getenv("X") of the settings, a constant such as EnvConnections = "BENCH_CONNECTIONS"), a
// literal starts with "NAME=", or a literal ending in "_" is a prefix the code reads a family by
// ("SECRET_", "BASE_URL_", "APP_"), which covers `SECRET_API_DB_PASSWORD` and
// `SECRET_<SERVICE>_<KEY>`; or when the name is a word of a script under .ci/, of a workflow
// under .github/workflows/ or of the Dockerfile. This package's own files are left out of the
// scan (its tests hold made-up names). Variables of other tools are in otherTools.

// otherTools are variables the docs may name that belong to other programs: this repository
// does not read them, the tool it hands them to (or the shell) does.
var otherTools = map[string]string{
	"HOME":           "the shell's: $HOME/.kube/config",
	"PATH":           "the shell's: where terraform and docker are looked up",
	"KUBECONFIG":     "kubectl's and client-go's as well as the toolkit's",
	"TF_LOG":         "Terraform's log level, for debugging the terraform the toolkit runs",
	"TF_DATA_DIR":    "Terraform's data directory, when running terraform by hand (terraform/README.md)",
	"GOFLAGS":        "the go command's flags",
	"GOPROXY":        "the go command's module proxy (air-gapped networks)",
	"GOCACHE":        "the go command's build cache",
	"GOMODCACHE":     "the go command's module cache",
	"XDG_CACHE_HOME": "where Go's os.UserCacheDir, and so the dtap cache, lives on Linux",
}

var (
	capsName   = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_+(?:[A-Z0-9]+|<[A-Za-z]+>|\*)?|<[A-Za-z]+>)*`)
	assignName = regexp.MustCompile(`(?:^|[\s;(\x60])([A-Z][A-Z0-9_]*)=`)
	dollarName = regexp.MustCompile(`\$\{?([A-Z][A-Z0-9_]*)`)
	scriptWord = regexp.MustCompile(`[A-Z][A-Z0-9_]*`)
	prefixLit  = regexp.MustCompile(`^[A-Z][A-Z0-9_]*_$`)
	assignLit  = regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=`)
)

// Reads is what the repository reads from the environment, as far as a scan can tell.
type Reads struct {
	names    map[string]bool
	prefixes []string
}

// CodeReads scans the repository at root: the string literals of its Go files (but this
// package's), and the words of .ci/, .github/workflows/ and the Dockerfile.
func CodeReads(root string) (*Reads, error) {
	r := &Reads{names: map[string]bool{}}
	self, _ := filepath.Abs(filepath.Join(root, "internal", "docscheck"))
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			abs, _ := filepath.Abs(p)
			switch {
			case abs == self, e.Name() == ".git", e.Name() == ".cache", e.Name() == "node_modules", rel == "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return nil
		}
		switch {
		case strings.HasSuffix(p, ".go"):
			return r.scanGo(p)
		case strings.HasPrefix(rel, ".ci/"), strings.HasPrefix(rel, ".github/workflows/"), rel == "Dockerfile":
			return r.scanWords(p)
		}
		return nil
	})
	return r, err
}

func (r *Reads) scanGo(p string) error {
	src, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	fset := token.NewFileSet()
	var s scanner.Scanner
	s.Init(fset.AddFile(p, -1, len(src)), src, nil, 0)
	for {
		_, tok, lit := s.Scan()
		if tok == token.EOF {
			return nil
		}
		if tok != token.STRING {
			continue
		}
		v, err := strconv.Unquote(lit)
		if err != nil {
			continue
		}
		r.names[v] = true
		if prefixLit.MatchString(v) && len(v) >= 3 {
			r.prefixes = append(r.prefixes, v)
		}
		if m := assignLit.FindStringSubmatch(v); m != nil {
			r.names[m[1]] = true
		}
	}
}

func (r *Reads) scanWords(p string) error {
	st, err := os.Stat(p)
	if err != nil || st.Size() > 1<<20 {
		return err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	for _, w := range scriptWord.FindAllString(string(b), -1) {
		r.names[w] = true
	}
	return nil
}

// Read says whether the repository reads the variable name (placeholders allowed).
func (r *Reads) Read(name string) bool {
	if _, ok := otherTools[name]; ok {
		return true
	}
	lit := name
	if i := strings.IndexAny(name, "<*"); i >= 0 {
		lit = name[:i]
	}
	if lit == name && r.names[name] {
		return true
	}
	for _, p := range r.prefixes {
		if strings.HasPrefix(lit, p) {
			return true
		}
	}
	return false
}

// variables lists the variables a doc names (see the variable rule), with their line indexes.
func (d *doc) variables() []figure {
	var out []figure
	add := func(i int, name string) {
		out = append(out, figure{line: i, text: name})
	}
	assigned := func(i int, s string) {
		for _, m := range assignName.FindAllStringSubmatch(s, -1) {
			add(i, m[1])
		}
		for _, m := range dollarName.FindAllStringSubmatch(s, -1) {
			add(i, m[1])
		}
	}
	for _, b := range d.blocks {
		for i := b.start; i < b.end; i++ {
			if b.kind == code {
				if i > b.start && i < b.end-1 {
					assigned(i, d.lines[i])
				}
				continue
			}
			for _, c := range codeSpans(d.lines[i]) {
				seen := map[string]bool{}
				for _, name := range capsName.FindAllString(c, -1) {
					if strings.Contains(name, "_") {
						seen[name] = true
						add(i, name)
					}
				}
				for _, m := range assignName.FindAllStringSubmatch(c, -1) {
					if !seen[m[1]] {
						add(i, m[1])
					}
				}
				for _, m := range dollarName.FindAllStringSubmatch(c, -1) {
					if !seen[m[1]] {
						add(i, m[1])
					}
				}
			}
		}
	}
	return out
}

// CheckVariables reads each doc and reports the variables it names that the repository does
// not read.
func CheckVariables(reads *Reads, docs ...string) ([]Problem, int, error) {
	var problems []Problem
	n := 0
	for _, p := range docs {
		d, err := readDoc(p)
		if err != nil {
			return nil, 0, err
		}
		for _, v := range d.variables() {
			n++
			if !reads.Read(v.text) {
				problems = append(problems, Problem{File: p, Line: v.line + 1, Text: v.text,
					Cause: "a variable nothing in the repository reads (not a literal of the Go code, nor a word of .ci/, the workflows or the Dockerfile): fix the name, or, if another tool reads it, add it to otherTools in internal/docscheck with why"})
			}
		}
	}
	return problems, n, nil
}

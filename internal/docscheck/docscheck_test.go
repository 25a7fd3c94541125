package docscheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dtap-platform/monorepo/internal/testfiles"
)

var repoRoot = filepath.Join("..", "..")

// TestEveryMageCommandInTheDocsNamesATargetWithItsArguments reads README.md, docs/*.md and the
// other READMEs.
func TestEveryMageCommandInTheDocsNamesATargetWithItsArguments(t *testing.T) {
	targets, err := Targets(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	docs := repoDocs(t)
	problems, n, err := Check(targets, docs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if n < 10 {
		t.Errorf("only %d `go run mage.go` commands found in %v: the check reads nothing", n, docs)
	}
	t.Logf("%d commands checked in %d documents", n, len(docs))
}

func TestTheCheckCatchesWrongCommands(t *testing.T) {
	targets := map[string]Target{
		"deploy":  {Name: "deploy", Required: 1},
		"destroy": {Name: "destroy", Optional: []string{"env"}},
		"lint":    {Name: "lint"},
	}
	doc := filepath.Join(t.TempDir(), "doc.md")
	text := strings.Join([]string{
		"go run mage.go deploy dev",            // fine
		"go run mage.go destroy -env=dev",      // fine
		"CONFIRM_PROD=yes go run mage.go lint", // fine
		"go run mage.go deploi dev",            // no such target
		"go run mage.go deploy",                // missing argument
		"go run mage.go destroy -envs=dev",     // no such option
		"go run mage.go destroy dev",           // a stray word
	}, "\n")
	if err := os.WriteFile(doc, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	problems, n, err := Check(targets, doc)
	if err != nil || n != 7 {
		t.Fatalf("Check = %d commands, %v", n, err)
	}
	var lines []int
	for _, p := range problems {
		lines = append(lines, p.Line)
	}
	if len(lines) != 4 || lines[0] != 4 || lines[1] != 5 || lines[2] != 6 || lines[3] != 7 {
		t.Errorf("problems on lines %v, want 4, 5, 6 and 7: %v", lines, problems)
	}
}

func TestTargetsReadTheMagefile(t *testing.T) {
	targets, err := Targets(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]Target{
		"deploy":      {Required: 1, Optional: []string{"plan"}},
		"plan":        {Required: 1, Optional: []string{"out"}},
		"drift":       {Required: 1},
		"destroy":     {Optional: []string{"env"}},
		"promote":     {Required: 2, Optional: []string{"commit", "skip"}},
		"test:all":    {},
		"chart:lint":  {},
		"kind:up":     {},
		"test":        {},
		"image:build": {},
	} {
		got, ok := targets[name]
		if !ok || got.Required != want.Required || strings.Join(got.Optional, ",") != strings.Join(want.Optional, ",") {
			t.Errorf("target %s = %+v (found %v), want %+v", name, got, ok, want)
		}
	}
}

// repoDocs are the documents the checks read: README.md, docs/*.md and every other README.md.
func repoDocs(t *testing.T) []string {
	t.Helper()
	docs, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if len(docs) < 5 {
		t.Fatalf("docs/ holds %v", docs)
	}
	docs = append(docs, filepath.Join(repoRoot, "README.md"))
	err := filepath.WalkDir(repoRoot, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == ".git" || e.Name() == ".cache" || e.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !e.IsDir() && e.Name() == "README.md" && p != filepath.Join(repoRoot, "README.md") {
			docs = append(docs, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// TestTheRepositorysDocsHoldNoUnsourcedFigureDeadLinkOrUnknownVariable reads the real docs.
func TestTheRepositorysDocsHoldNoUnsourcedFigureDeadLinkOrUnknownVariable(t *testing.T) {
	docs := repoDocs(t)
	reads, err := CodeReads(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		check func() ([]Problem, int, error)
		least int
	}{
		{"figures", func() ([]Problem, int, error) { return CheckFigures(docs...) }, 40},
		{"links and paths", func() ([]Problem, int, error) { return CheckLinks(repoRoot, docs...) }, 100},
		{"variables", func() ([]Problem, int, error) { return CheckVariables(reads, docs...) }, 100},
	} {
		problems, n, err := c.check()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", c.name, p)
		}
		if n < c.least {
			t.Errorf("%s: only %d checked in %d documents: the check reads nothing", c.name, n, len(docs))
		}
		t.Logf("%s: %d checked in %d documents", c.name, n, len(docs))
	}
}

// problemLines runs a check and returns the lines of its problems.
func problemLines(t *testing.T, problems []Problem, err error) []int {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, p := range problems {
		lines = append(lines, p.Line)
		t.Log(p)
	}
	return lines
}

func writeDoc(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAFigureWithNoSourceFails(t *testing.T) {
	doc := filepath.Join(t.TempDir(), "doc.md")
	writeDoc(t, doc,
		"# Figures",                  // 1
		"",                           // 2
		"A first deploy took 418 s.", // 3: no command in this section
		"",                           // 4
		"## Deploy",                  // 5
		"",                           // 6
		"`go run mage.go benchDeploy`, 2 cores, 2026-12-02:", // 7
		"",                                  // 8
		"| step | time |",                   // 9
		"|---|---|",                         // 10
		"| no change | 0.6 s |",             // 11: sourced by the section
		"",                                  // 12
		"## Load",                           // 13
		"",                                  // 14
		"| connections | ratio |",           // 15
		"|---|---|",                         // 16
		"| 16 | **0.94** |",                 // 17: a ratio with no source
		"",                                  // 18
		"- the stack cost 15.7% of the CPU", // 19: a percentage with no source
		"- it takes 3m, or 2.7-4.8 ms",      // 20: two figures with no source
		"- the default timeout is `5m`; requests 50m of CPU", // 21: a value as code, millicores
		"- see `go run mage.go` and [the bench](x.md)",       // 22: the bootstrap alone is no command
		"",              // 23
		"## Code",       // 24
		"",              // 25
		"It took 12 s:", // 26: sourced by the code block below
		"",              // 27
		"```sh",         // 28
		"BENCH_CONNECTIONS=64 go run mage.go bench", // 29
		"```", // 30
	)
	problems, n, err := CheckFigures(doc)
	lines := problemLines(t, problems, err)
	if want := []int{3, 17, 19, 20, 20}; !slices.Equal(lines, want) {
		t.Errorf("problems on lines %v, want %v", lines, want)
	}
	if n != 7 {
		t.Errorf("%d figures found, want 7", n)
	}
}

func TestADeadLinkOrPathFails(t *testing.T) {
	root := t.TempDir()
	testfiles.Write(t, root, map[string]string{
		".gitignore":              "/.cache/\n*.tfstate\n",
		"docs/other.md":           "# Other\n\n## A section\n",
		"internal/deploy/main.go": "package deploy\n",
		"services/api/main.go":    "package main\n",
	})
	doc := filepath.Join(root, "docs", "doc.md")
	writeDoc(t, doc,
		"# Doc", // 1
		"",      // 2
		"[fine](other.md), [fine](other.md#a-section), [fine](#doc), [web](https://example.com/x)", // 3
		"[dead](missing.md)",                  // 4
		"[no such heading](other.md#nowhere)", // 5
		"[out](../../elsewhere.md)",           // 6
		"`internal/deploy/main.go`, `./services/api`, `services/<name>/values-<env>.yaml`", // 7: all exist
		"`internal/deploy/settings.go`", // 8: no such file
		"`.cache/deployed/dev.json`, `x/y`, `go run ./internal/deploy`, `dtap-system/x`", // 9: ignored, not paths
		"`services/api/values-prod.yaml`",                                                // 10: optional (Optional)
		"",                                                                               // 11
		"## Layout",                                                                      // 12
		"",                                                                               // 13
		"```",                                                                            // 14
		"internal/       the toolkit",                                                    // 15
		"  deploy/       deploy",                                                         // 16
		"  gone/, deploy/  a missing folder",                                             // 17
		"services/api/   a service",                                                      // 18
		"docs/x.md       a missing page",                                                 // 19
		"```",                                                                            // 20
	)
	problems, n, err := CheckLinks(root, doc)
	lines := problemLines(t, problems, err)
	if want := []int{4, 5, 6, 8, 17, 19}; !slices.Equal(lines, want) {
		t.Errorf("problems on lines %v, want %v", lines, want)
	}
	if n < 15 {
		t.Errorf("%d links and paths checked, want at least 15", n)
	}
}

func TestAVariableTheCodeDoesNotReadFails(t *testing.T) {
	root := t.TempDir()
	testfiles.Write(t, root, map[string]string{
		"internal/settings/settings.go": "package settings\n\nimport \"os\"\n\nconst envTimeout = \"KNOWN_TIMEOUT\"\n\nfunc f() string { return os.Getenv(\"KNOWN_VAR\") + os.Getenv(envTimeout) }\n\nvar prefix = \"FAMILY_\"\n\nvar env = []string{\"SETTER=1\"}\n",
		".ci/run":                       "#!/bin/bash\necho \"$CI_ONLY_VAR\"\n",
		// This package's own files hold made-up names (its tests): they do not count as read.
		"internal/docscheck/fixture.go": "package docscheck\n\nvar _ = \"MADE_UP_VAR\"\n",
	})
	reads, err := CodeReads(root)
	if err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(root, "README.md")
	writeDoc(t, doc,
		"`KNOWN_VAR`, `KNOWN_TIMEOUT=5m`, `CI_ONLY_VAR`, `SETTER`",       // 1: read
		"`FAMILY_<NAME>`, `FAMILY_A_B`, `FAMILY_*`",                      // 2: a family the code reads
		"`$HOME/.kube/config`, `TF_LOG=debug go run mage.go deploy dev`", // 3: other tools'
		"`UNKNOWN_VAR`", // 4
		"`MADE_UP_VAR`", // 5
		"`NOPE=1 go run mage.go deploy dev`, `OTHER_<NAME>`", // 6: two
		"",      // 7
		"```sh", // 8
		"KNOWN_VAR=1 BAD_IN_BLOCK=2 go run mage.go deploy dev", // 9
		"echo ${ALSO_BAD}",                   // 10
		"NOT_A_VARIABLE_IN_PROSE_OF_A_BLOCK", // 11: not named as a variable
		"```",                                // 12
		"A word in prose, UNKNOWN_IN_PROSE, is not a name written as one.", // 13
	)
	problems, n, err := CheckVariables(reads, doc)
	lines := problemLines(t, problems, err)
	if want := []int{4, 5, 6, 6, 9, 10}; !slices.Equal(lines, want) {
		t.Errorf("problems on lines %v, want %v", lines, want)
	}
	if n < 14 {
		t.Errorf("%d variables checked, want at least 14", n)
	}
}

package docscheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var repoRoot = filepath.Join("..", "..")

// TestEveryMageCommandInTheDocsNamesATargetWithItsArguments reads README.md and docs/*.md.
func TestEveryMageCommandInTheDocsNamesATargetWithItsArguments(t *testing.T) {
	targets, err := Targets(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	docs = append(docs, filepath.Join(repoRoot, "README.md"))
	more, _ := filepath.Glob(filepath.Join(repoRoot, "*", "README.md"))
	docs = append(docs, more...)
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
		"deploy":      {Required: 1},
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

package workflows

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTheRepositorysWorkflowsPassActionlint(t *testing.T) {
	if err := Lint(filepath.Join("..", "..")); err != nil {
		t.Errorf("actionlint:\n%v", err)
	}
}

// TestABrokenWorkflowFailsLint proves the check bites: each broken workflow below is refused,
// with the finding named.
func TestABrokenWorkflowFailsLint(t *testing.T) {
	for _, tt := range []struct{ name, workflow, want string }{
		{"an unknown key", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz:\n      - run: echo\n", "stepz"},
		{"a bad expression", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nosuchthing.x }}\n", "nosuchthing"},
		{"a job that needs a missing job", "on: push\njobs:\n  a:\n    needs: [b]\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n", "b"},
		{"an unknown action input", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n        with:\n          fetch-dept: 0\n", "fetch-dept"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, Dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "broken.yml"), []byte(tt.workflow), 0o644); err != nil {
				t.Fatal(err)
			}
			err := Lint(root)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "broken.yml") {
				t.Errorf("Lint of a workflow with %s = %v, want a finding naming %q in broken.yml", tt.name, err, tt.want)
			}
		})
	}
}

func TestNoWorkflowsIsAnError(t *testing.T) {
	if err := Lint(t.TempDir()); err == nil {
		t.Error("Lint of a repository without workflows succeeded")
	}
}

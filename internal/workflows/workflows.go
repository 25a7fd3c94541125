// Package workflows checks the repository's GitHub Actions workflows with actionlint, so that a
// workflow with a wrong key, a bad expression or an unknown action input fails `mage lint`
// instead of the first push that runs it.
package workflows

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rhysd/actionlint"
)

// Dir holds the workflows, relative to the repository root.
const Dir = ".github/workflows"

// Lint checks every workflow under repoRoot/.github/workflows and returns each finding as an
// error naming the file, line and rule. shellcheck runs on the run: scripts when it is on PATH.
func Lint(repoRoot string) error {
	files, err := filepath.Glob(filepath.Join(repoRoot, Dir, "*.y*ml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no workflows under %s", filepath.Join(repoRoot, Dir))
	}
	opts := &actionlint.LinterOptions{Color: actionlint.ColorOptionKindNever, Oneline: true}
	if p, err := exec("shellcheck"); err == nil {
		opts.Shellcheck = p
	}
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, opts)
	if err != nil {
		return err
	}
	var errs []error
	for _, file := range files {
		findings, err := l.LintFile(file, nil)
		if err != nil {
			return fmt.Errorf("actionlint %s: %w", file, err)
		}
		rel, _ := filepath.Rel(repoRoot, file)
		for _, f := range findings {
			errs = append(errs, fmt.Errorf("%s:%d:%d: %s [%s]", rel, f.Line, f.Column, f.Message, f.Kind))
		}
	}
	return errors.Join(errs...)
}

// exec finds a program on PATH.
func exec(name string) (string, error) {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not on PATH", strings.TrimSpace(name))
}

package inputs

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path"
	"strings"
	"time"

	"github.com/dtap-platform/monorepo/internal/procenv"
)

// Revision is the last commit that changed an image's inputs: its hash and time, and whether
// the work tree differs from it there. It is recorded beside the image (its provenance, deploy's
// output), never in its bytes: a rebase rewrites it without changing any input. It depends on
// the inputs' history only: a commit that touches nothing of the service's leaves it as it is.
type Revision struct {
	Commit string
	Time   time.Time
	Dirty  bool
}

// String is the commit, with "-dirty" when the work tree differs from it in the inputs.
func (r Revision) String() string {
	if r.Commit == "" {
		return "unknown"
	}
	if r.Dirty {
		return r.Commit + "-dirty"
	}
	return r.Commit
}

// RevisionOf finds the last commit that changed m's inputs in the repository at repoRoot. Without
// git history it returns the zero Revision ("unknown").
func RevisionOf(ctx context.Context, repoRoot string, m Manifest) Revision {
	specs := pathspecs(m)
	out, err := git(ctx, repoRoot, append([]string{"log", "-1", "--format=%H %cI", "--"}, specs...)...)
	if err != nil || out == "" {
		return Revision{}
	}
	commit, when, _ := strings.Cut(out, " ")
	rev := Revision{Commit: commit}
	rev.Time, _ = time.Parse(time.RFC3339, when)

	// A later commit that changed only go.mod/go.sum counts when it changed a module this
	// service links (its required version) or a go directive.
	later, _ := git(ctx, repoRoot, "log", "--format=%H %cI", commit+"..HEAD", "--", "go.mod", "go.sum")
	for _, line := range strings.Split(later, "\n") {
		c, t, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if relevantGoMod(ctx, repoRoot, c, m) != relevantGoMod(ctx, repoRoot, c+"^", m) {
			rev.Commit = c
			rev.Time, _ = time.Parse(time.RFC3339, t)
			break // newest first
		}
	}
	status, _ := git(ctx, repoRoot, append([]string{"status", "--porcelain", "--"}, append(specs, "go.mod", "go.sum")...)...)
	rev.Dirty = status != ""
	return rev
}

// pathspecs cover the inputs' files, including files since deleted from their packages: every
// non-test .go file of each package directory, and the other input files by name.
func pathspecs(m Manifest) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, f := range m.Files() {
		if strings.HasSuffix(f, ".go") {
			add(":(glob)" + path.Dir(f) + "/*.go")
		} else {
			add(f)
		}
	}
	add(":(exclude,glob)**/*_test.go")
	return out
}

// relevantGoMod is, at a commit, go.mod's directives and the required versions of the modules
// m links.
func relevantGoMod(ctx context.Context, repoRoot, commit string, m Manifest) string {
	gomod, err := git(ctx, repoRoot, "show", commit+":go.mod")
	if err != nil {
		return "missing"
	}
	want := map[string]bool{}
	for _, in := range m.Inputs {
		if in.Kind == KindModule {
			p, _, _ := strings.Cut(in.Name, "@")
			want[p] = true
		}
	}
	var b strings.Builder
	for _, line := range strings.Split(gomod, "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		switch {
		case len(f) >= 2 && (f[0] == "go" || f[0] == "toolchain" || f[0] == "godebug"):
			fmt.Fprintln(&b, strings.Join(f, " "))
		case len(f) >= 2 && want[f[0]]:
			fmt.Fprintln(&b, f[0], f[1])
		}
	}
	return b.String()
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = procenv.Clean()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

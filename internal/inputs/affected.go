package inputs

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/procenv"
	"github.com/dtap-platform/monorepo/internal/services"
)

// Reason is why a service is affected: the input and what happened to it.
type Reason struct {
	Input string `json:"input"` // a file path, module@version, or setting
	Why   string `json:"why"`
}

// Change is one affected service. Image means its content tag changed (it will be rebuilt);
// Release means only its deploy description or the chart changed (it will be upgraded, not
// rebuilt).
type Change struct {
	Service string   `json:"service"`
	Image   bool     `json:"image"`
	Release bool     `json:"release"`
	Reasons []Reason `json:"reasons"`
}

// Report is what `mage affected` prints.
type Report struct {
	Base     string   `json:"base"`             // the commit compared against
	BaseIs   string   `json:"baseIs,omitempty"` // what that commit is, when it was chosen by default
	Services []string `json:"services"`         // affected services, sorted: a CI matrix
	Changes  []Change `json:"changes"`
	Removed  []string `json:"removed,omitempty"` // services of base whose folder is gone
}

// DefaultBase is the commit to compare with when none is given, and what it is, for the report:
//   - on main: the commits not pushed yet (the merge-base with main's upstream); with none, or
//     no upstream, the last commit (HEAD~1);
//   - on any other branch (or a detached HEAD): the merge-base with main (or origin/main), so
//     the whole branch counts, not main's later commits; else HEAD~1.
//
// CI passes the event's base with -base.
func DefaultBase(ctx context.Context, repoRoot string) (base, what string, err error) {
	head, err := git(ctx, repoRoot, "rev-parse", "HEAD")
	if err != nil {
		return "", "", fmt.Errorf("no commit to compare with: %w", err)
	}
	if branch, _ := git(ctx, repoRoot, "rev-parse", "--abbrev-ref", "HEAD"); branch == "main" {
		if mb, err := git(ctx, repoRoot, "merge-base", "HEAD", "@{upstream}"); err == nil && mb != "" && mb != head {
			return mb, "main's upstream: the commits not pushed yet", nil
		}
	} else {
		for _, ref := range []string{"main", "origin/main"} {
			if mb, err := git(ctx, repoRoot, "merge-base", "HEAD", ref); err == nil && mb != "" && mb != head {
				return mb, "the merge-base with " + ref, nil
			}
		}
	}
	if prev, err := git(ctx, repoRoot, "rev-parse", "HEAD~1"); err == nil {
		return prev, "HEAD~1, the last commit", nil
	}
	return "", "", errors.New("no base to compare with: this checkout has a single commit; pass one with -base=<commit>")
}

// Affected compares the working tree (uncommitted and untracked files included) with the
// commit base and lists the services whose image inputs or deploy description changed, and
// why.
func Affected(ctx context.Context, repoRoot, base string, o Options) (Report, error) {
	if strings.HasPrefix(base, "-") {
		return Report{}, fmt.Errorf("base %q is not a commit", base)
	}
	commit, err := git(ctx, repoRoot, "rev-parse", "--verify", "--end-of-options", base+"^{commit}")
	if err != nil {
		return Report{}, fmt.Errorf("base %q is not a commit of this repository: %w", base, err)
	}
	baseDir, err := os.MkdirTemp("", "affected-")
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(baseDir)
	if err := Extract(ctx, repoRoot, commit, baseDir); err != nil {
		return Report{}, err
	}
	now, err := snapshot(ctx, repoRoot, o)
	if err != nil {
		return Report{}, err
	}
	then, err := snapshot(ctx, baseDir, o)
	if err != nil {
		return Report{}, fmt.Errorf("at base %s: %w", short(commit), err)
	}
	r := Report{Base: commit, Services: []string{}}
	for _, name := range slices.Sorted(maps.Keys(now.images)) {
		c := Change{Service: name}
		old, existed := then.images[name]
		if !existed {
			c.Image = true
			c.Reasons = append(c.Reasons, Reason{Input: "services/" + name, Why: "new service"})
		} else {
			for _, d := range diffInputs(old, now.images[name]) {
				c.Image = true
				c.Reasons = append(c.Reasons, d)
			}
		}
		if existed { // a new service's every file is new: "new service" says it
			for _, f := range diffFiles(then.deploy[name], now.deploy[name]) {
				c.Release = true
				c.Reasons = append(c.Reasons, f)
			}
		}
		if c.Image || c.Release {
			r.Changes = append(r.Changes, c)
			r.Services = append(r.Services, name)
		}
	}
	for name := range then.images {
		if _, ok := now.images[name]; !ok {
			r.Removed = append(r.Removed, name)
		}
	}
	slices.Sort(r.Removed)
	return r, nil
}

// state is one tree's image inputs and deploy files, per service.
type state struct {
	images map[string]Manifest
	deploy map[string]map[string]string // service -> deploy file -> digest
}

func snapshot(ctx context.Context, root string, o Options) (state, error) {
	s := state{images: map[string]Manifest{}, deploy: map[string]map[string]string{}}
	svcs, err := services.Discover(ctx, root)
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(root, services.Dir)); errors.Is(statErr, fs.ErrNotExist) {
			return s, nil // a tree from before the monorepo layout: no services
		}
		return s, err
	}
	if s.images, err = OfAll(ctx, root, svcs, o); err != nil {
		return s, err
	}
	chart, err := digestTree(root, environments.ChartDir)
	if err != nil {
		return s, err
	}
	for _, svc := range svcs {
		files := map[string]string{}
		for k, v := range chart {
			files[k] = v
		}
		matches, _ := filepath.Glob(filepath.Join(root, svc.Dir, "values*.yaml"))
		for _, m := range matches {
			rel, _ := filepath.Rel(root, m)
			if d, err := fileDigest(m); err == nil {
				files[filepath.ToSlash(rel)] = d
			}
		}
		s.deploy[svc.Name] = files
	}
	return s, nil
}

func digestTree(root, dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)], err = fileDigest(p)
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	return out, err
}

func diffInputs(old, now Manifest) []Reason {
	index := func(m Manifest) map[string]Input {
		out := map[string]Input{}
		for _, in := range m.Inputs {
			key := in.Kind + "\t" + in.Name
			if in.Kind == KindModule {
				p, _, _ := strings.Cut(in.Name, "@")
				key = in.Kind + "\t" + p
			}
			out[key] = in
		}
		return out
	}
	a, b := index(old), index(now)
	var out []Reason
	for _, key := range slices.Sorted(maps.Keys(b)) {
		in, was := b[key], a[key]
		switch {
		case was == (Input{}):
			out = append(out, Reason{Input: in.Name, Why: "added"})
		case was.Name != in.Name:
			out = append(out, Reason{Input: in.Name, Why: "was " + was.Name})
		case was.Digest != in.Digest:
			out = append(out, Reason{Input: in.Name, Why: "changed"})
		}
	}
	for _, key := range slices.Sorted(maps.Keys(a)) {
		if _, ok := b[key]; !ok {
			out = append(out, Reason{Input: a[key].Name, Why: "removed"})
		}
	}
	return out
}

func diffFiles(old, now map[string]string) []Reason {
	var out []Reason
	for _, f := range slices.Sorted(maps.Keys(now)) {
		switch was, ok := old[f]; {
		case !ok:
			out = append(out, Reason{Input: f, Why: "added (deploy description or chart)"})
		case was != now[f]:
			out = append(out, Reason{Input: f, Why: "changed (deploy description or chart)"})
		}
	}
	for _, f := range slices.Sorted(maps.Keys(old)) {
		if _, ok := now[f]; !ok {
			out = append(out, Reason{Input: f, Why: "removed (deploy description or chart)"})
		}
	}
	return out
}

// Extract writes the tree of commit into dir (git archive: no .git, no worktree bookkeeping).
func Extract(ctx context.Context, repoRoot, commit, dir string) error {
	if strings.HasPrefix(commit, "-") {
		return fmt.Errorf("%q is not a commit", commit)
	}
	sha, err := git(ctx, repoRoot, "rev-parse", "--verify", "--end-of-options", commit+"^{commit}")
	if err != nil {
		return fmt.Errorf("%q is not a commit of this repository: %w", commit, err)
	}
	cmd := exec.CommandContext(ctx, "git", "archive", "--format=tar", sha)
	cmd.Dir = repoRoot
	cmd.Env = procenv.Clean()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(os.PathSeparator)) {
			return fmt.Errorf("git archive: unexpected path %q", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	return cmd.Wait()
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// String is the report for people: each affected service and why.
func (r Report) String() string {
	var b strings.Builder
	if r.BaseIs != "" {
		fmt.Fprintf(&b, "compared with %s (%s):\n", short(r.Base), r.BaseIs)
	} else {
		fmt.Fprintf(&b, "compared with %s:\n", short(r.Base))
	}
	if len(r.Changes) == 0 {
		b.WriteString("  no service is affected\n")
	}
	for _, c := range r.Changes {
		what := "image and release"
		switch {
		case c.Image && !c.Release:
			what = "image (rebuilt)"
		case !c.Image:
			what = "release only (not rebuilt)"
		}
		fmt.Fprintf(&b, "%s: %s\n", c.Service, what)
		for _, why := range c.Reasons {
			fmt.Fprintf(&b, "  %s: %s\n", why.Input, why.Why)
		}
	}
	for _, name := range r.Removed {
		fmt.Fprintf(&b, "%s: removed (its folder is gone)\n", name)
	}
	return b.String()
}

// WriteJSON writes the report as JSON: .services is a CI matrix.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

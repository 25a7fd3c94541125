package inputs

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/internal/testfiles"
)

// The module the tests work on: service a links lib, service b does not.
var moduleFiles = map[string]string{
	"go.mod":               "module example.com/m\n\ngo 1.26\n",
	"go.sum":               "",
	"Dockerfile":           "FROM golang:1.26-bookworm\nARG SERVICE\n",
	"README.md":            "# m\n",
	"lib/lib.go":           "package lib\n\n// F is what a links.\nfunc F() int { return 1 }\n",
	"lib/lib_test.go":      "package lib\n\nimport \"testing\"\n\nfunc TestF(t *testing.T) {}\n",
	"services/a/main.go":   "package main\n\nimport \"example.com/m/lib\"\n\nfunc main() { _ = lib.F() }\n",
	"services/b/main.go":   "package main\n\nfunc main() {}\n",
	"services/b/values.go": "package main\n\nconst port = 8080\n",
}

var (
	svcA = services.Service{Name: "a", Dir: "services/a", Package: "example.com/m/services/a"}
	svcB = services.Service{Name: "b", Dir: "services/b", Package: "example.com/m/services/b"}
)

// tools skips the test when the go command or git is missing, and keeps the user's git
// configuration and any enclosing repository out of it.
func tools(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"go", "git"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not on PATH (%v): the inputs are read with go list and git", bin, err)
		}
	}
	t.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("GIT_AUTHOR_NAME", "Test Author")
	t.Setenv("GIT_AUTHOR_EMAIL", "author@example.com")
	t.Setenv("GIT_COMMITTER_NAME", "Test Committer")
	t.Setenv("GIT_COMMITTER_EMAIL", "committer@example.com")
}

func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commitAll commits the whole work tree at the given time and returns the commit.
func commitAll(t *testing.T, dir, msg string, at time.Time) string {
	t.Helper()
	t.Setenv("GIT_AUTHOR_DATE", at.Format(time.RFC3339))
	t.Setenv("GIT_COMMITTER_DATE", at.Format(time.RFC3339))
	runGit(t, dir, "add", "-A")
	runGit(t, dir, "commit", "-q", "--allow-empty", "-m", msg)
	return runGit(t, dir, "rev-parse", "HEAD")
}

var day = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

// repo is the module, committed once on branch, in a fresh repository.
func repo(t *testing.T, branch string) (root, first string) {
	t.Helper()
	tools(t)
	root = t.TempDir()
	t.Setenv("GIT_CEILING_DIRECTORIES", filepath.Dir(root))
	testfiles.Write(t, root, moduleFiles)
	runGit(t, root, "init", "-q", "-b", branch)
	return root, commitAll(t, root, "the module", day)
}

func tags(t *testing.T, root string) map[string]string {
	t.Helper()
	all, err := OfAll(t.Context(), root, []services.Service{svcA, svcB}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"a": all["a"].Tag(), "b": all["b"].Tag()}
}

func TestTagsAreStableAcrossRunsAndCheckouts(t *testing.T) {
	root, _ := repo(t, "main")
	first, second := tags(t, root), tags(t, root)
	if first["a"] != second["a"] || first["b"] != second["b"] {
		t.Errorf("two runs gave %v and %v", first, second)
	}
	if first["a"] == first["b"] {
		t.Errorf("services a and b have the same tag %s", first["a"])
	}
	for name, tag := range first {
		if !strings.HasPrefix(tag, "src-") || len(tag) != len("src-")+16 {
			t.Errorf("tag of %s = %q, want src- and 16 hex digits", name, tag)
		}
	}

	// A teammate's clone in another directory, with other file times, names the same images.
	clone := filepath.Join(t.TempDir(), "elsewhere", "m")
	if err := os.CopyFS(clone, os.DirFS(root)); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(clone, "lib", "lib.go"), later, later); err != nil {
		t.Fatal(err)
	}
	if got := tags(t, clone); got["a"] != first["a"] || got["b"] != first["b"] {
		t.Errorf("a copy in another directory gave %v, want %v", got, first)
	}

	// The builder image is an input.
	other, err := Of(t.Context(), root, svcA, Options{BuilderImage: "golang:1.27-bookworm"})
	if err != nil {
		t.Fatal(err)
	}
	if other.Tag() == first["a"] {
		t.Error("another GO_IMAGE gave the same tag")
	}
}

func TestATagChangesExactlyWhenTheServicesInputsDo(t *testing.T) {
	tests := []struct {
		name       string
		edit       map[string]string
		aChanges   bool
		bChanges   bool
		removeFile string
	}{
		{"a change to lib changes a's tag only", map[string]string{"lib/lib.go": "package lib\n\nfunc F() int { return 2 }\n"}, true, false, ""},
		{"a new file in lib changes a's tag only", map[string]string{"lib/more.go": "package lib\n"}, true, false, ""},
		{"a change to b changes b's tag only", map[string]string{"services/b/values.go": "package main\n\nconst port = 9090\n"}, false, true, ""},
		{"a README change changes no tag", map[string]string{"README.md": "# m, documented\n"}, false, false, ""},
		{"a test file change changes no tag", map[string]string{"lib/lib_test.go": "package lib\n\nimport \"testing\"\n\nfunc TestG(t *testing.T) {}\n"}, false, false, ""},
		{"a new test file in a service changes no tag", map[string]string{"services/a/main_test.go": "package main\n"}, false, false, ""},
		{"a new package nothing links changes no tag", map[string]string{"tools/x/x.go": "package x\n"}, false, false, ""},
		{"a Dockerfile change changes every tag", map[string]string{"Dockerfile": "FROM golang:1.26-bookworm\nARG SERVICE\nRUN true\n"}, true, true, ""},
		{"a go directive change changes every tag", map[string]string{"go.mod": "module example.com/m\n\ngo 1.26.0\n"}, true, true, ""},
		{"a removed lib file changes a's tag only", map[string]string{"lib/extra.go": "package lib\n"}, true, false, "lib/extra.go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, _ := repo(t, "main")
			if tt.removeFile != "" {
				// The file exists in the "before" tree and is removed for the "after" one.
				testfiles.Write(t, root, tt.edit)
			}
			before := tags(t, root)
			if tt.removeFile != "" {
				if err := os.Remove(filepath.Join(root, filepath.FromSlash(tt.removeFile))); err != nil {
					t.Fatal(err)
				}
			} else {
				testfiles.Write(t, root, tt.edit)
			}
			after := tags(t, root)
			if changed := before["a"] != after["a"]; changed != tt.aChanges {
				t.Errorf("a's tag changed = %v, want %v", changed, tt.aChanges)
			}
			if changed := before["b"] != after["b"]; changed != tt.bChanges {
				t.Errorf("b's tag changed = %v, want %v", changed, tt.bChanges)
			}
		})
	}
}

func TestInputsListTheFilesAServiceLinks(t *testing.T) {
	root, _ := repo(t, "main")
	a, err := Of(t.Context(), root, svcA, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Files(), []string{"Dockerfile", "lib/lib.go", "services/a/main.go"}; !slices.Equal(got, want) {
		t.Errorf("files of a = %v, want %v", got, want)
	}
	b, err := Of(t.Context(), root, svcB, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Files(), []string{"Dockerfile", "services/b/main.go", "services/b/values.go"}; !slices.Equal(got, want) {
		t.Errorf("files of b = %v, want %v", got, want)
	}
	want := []Input{
		{KindBuild, "GO_IMAGE", DefaultBuilderImage},
		{KindBuild, "service", "a"},
		{KindBuild, "tags", BuildTags},
		{KindGo, "go 1.26", ""},
	}
	for _, w := range want {
		if !slices.Contains(a.Inputs, w) {
			t.Errorf("inputs of a lack %+v: %+v", w, a.Inputs)
		}
	}
	if !slices.IsSortedFunc(a.Inputs, func(x, y Input) int { return strings.Compare(x.Kind+"\t"+x.Name, y.Kind+"\t"+y.Name) }) {
		t.Errorf("inputs are not sorted: %+v", a.Inputs)
	}
	for _, in := range a.Inputs {
		if in.Kind == KindFile && len(in.Digest) != 64 {
			t.Errorf("%s has digest %q, want a sha256", in.Name, in.Digest)
		}
	}
}

func TestRevisionIsTheLastCommitThatChangedTheInputs(t *testing.T) {
	root, first := repo(t, "main")

	testfiles.Write(t, root, map[string]string{"README.md": "# m, documented\n"})
	commitAll(t, root, "docs only", day.Add(time.Hour))
	testfiles.Write(t, root, map[string]string{"go.mod": "module example.com/m\n\n// a comment changes nothing compiled\ngo 1.26\n"})
	commitAll(t, root, "go.mod comment", day.Add(2*time.Hour))

	a, err := Of(t.Context(), root, svcA, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rev := RevisionOf(t.Context(), root, a)
	if rev.Commit != first || !rev.Time.Equal(day) || rev.Dirty {
		t.Errorf("revision of a = %+v, want %s at %s, clean (README and go.mod comment commits do not count)", rev, first, day)
	}
	if rev.String() != first {
		t.Errorf("String = %q, want %q", rev.String(), first)
	}

	testfiles.Write(t, root, map[string]string{"lib/lib.go": "package lib\n\nfunc F() int { return 2 }\n"})
	libCommit := commitAll(t, root, "lib", day.Add(3*time.Hour))
	a, err = Of(t.Context(), root, svcA, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Of(t.Context(), root, svcB, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := RevisionOf(t.Context(), root, a); rev.Commit != libCommit || !rev.Time.Equal(day.Add(3*time.Hour)) {
		t.Errorf("revision of a after the lib commit = %+v, want %s", rev, libCommit)
	}
	if rev := RevisionOf(t.Context(), root, b); rev.Commit != first {
		t.Errorf("revision of b after the lib commit = %+v, want %s: b does not link lib", rev, first)
	}

	testfiles.Write(t, root, map[string]string{"go.mod": "module example.com/m\n\n// a comment changes nothing compiled\ngo 1.26.0\n"})
	goCommit := commitAll(t, root, "go directive", day.Add(4*time.Hour))
	if rev := RevisionOf(t.Context(), root, b); rev.Commit != goCommit {
		t.Errorf("revision of b after a go directive commit = %+v, want %s", rev, goCommit)
	}

	testfiles.Write(t, root, map[string]string{"services/a/main.go": "package main\n\nimport \"example.com/m/lib\"\n\nfunc main() { _ = lib.F() + 1 }\n"})
	rev = RevisionOf(t.Context(), root, a)
	if !rev.Dirty || rev.String() != goCommit+"-dirty" {
		t.Errorf("revision of a with an edited file = %+v (%s), want %s-dirty", rev, rev, goCommit)
	}
	if rev := RevisionOf(t.Context(), root, b); rev.Dirty {
		t.Errorf("b is dirty after an edit to a: %+v", rev)
	}
	testfiles.Write(t, root, map[string]string{"services/a/new_test.go": "package main\n", "README.md": "# edited\n"})
	if rev := RevisionOf(t.Context(), root, b); rev.Dirty {
		t.Errorf("b is dirty after a README and test-file edit: %+v", rev)
	}
}

func TestRevisionWithoutHistoryIsUnknown(t *testing.T) {
	tools(t)
	root := t.TempDir()
	t.Setenv("GIT_CEILING_DIRECTORIES", filepath.Dir(root))
	testfiles.Write(t, root, moduleFiles)
	a, err := Of(t.Context(), root, svcA, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := RevisionOf(t.Context(), root, a); rev != (Revision{}) || rev.String() != "unknown" {
		t.Errorf("revision outside git = %+v (%s), want unknown", rev, rev)
	}
}

func reasons(c Change) []Reason { return c.Reasons }

func TestAffectedListsTheChangedServicesAndWhy(t *testing.T) {
	t.Run("an edited lib affects a only, naming lib's file", func(t *testing.T) {
		root, first := repo(t, "main")
		testfiles.Write(t, root, map[string]string{"lib/lib.go": "package lib\n\nfunc F() int { return 2 }\n", "README.md": "# x\n"})
		r, err := Affected(t.Context(), root, "HEAD", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Base != first || !slices.Equal(r.Services, []string{"a"}) || len(r.Changes) != 1 || len(r.Removed) != 0 {
			t.Fatalf("report = %+v, want a alone against %s", r, first)
		}
		c := r.Changes[0]
		if !c.Image || c.Release || !slices.Equal(reasons(c), []Reason{{Input: "lib/lib.go", Why: "changed"}}) {
			t.Errorf("change = %+v, want an image change because lib/lib.go changed", c)
		}
		if s := r.String(); !strings.Contains(s, "a: image (rebuilt)\n  lib/lib.go: changed\n") {
			t.Errorf("String = %q", s)
		}
	})
	t.Run("on main, a local commit counts with no -base", func(t *testing.T) {
		root, first := repo(t, "main")
		testfiles.Write(t, root, map[string]string{"lib/lib.go": "package lib\n\nfunc F() int { return 2 }\n"})
		commitAll(t, root, "change lib", day.Add(time.Hour))
		base, what, err := DefaultBase(t.Context(), root)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Affected(t.Context(), root, base, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r.BaseIs = what
		if r.Base != first || !slices.Equal(r.Services, []string{"a"}) || !strings.Contains(r.String(), "(HEAD~1, the last commit)") {
			t.Errorf("report = %+v\n%s\nwant a, against the last commit, saying so", r, r.String())
		}
	})
	t.Run("a new service folder is a new service", func(t *testing.T) {
		root, _ := repo(t, "main")
		testfiles.Write(t, root, map[string]string{"services/c/main.go": "package main\n\nfunc main() {}\n", "services/c/values.yaml": "replicaCount: 1\n"})
		r, err := Affected(t.Context(), root, "HEAD", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Services, []string{"c"}) || len(r.Changes) != 1 {
			t.Fatalf("report = %+v, want c alone", r)
		}
		c := r.Changes[0]
		if !c.Image || c.Release || !slices.Equal(c.Reasons, []Reason{{Input: "services/c", Why: "new service"}}) {
			t.Errorf("change = %+v, want a new service", c)
		}
	})
	t.Run("a removed service folder is listed as removed", func(t *testing.T) {
		root, _ := repo(t, "main")
		if err := os.RemoveAll(filepath.Join(root, "services", "b")); err != nil {
			t.Fatal(err)
		}
		r, err := Affected(t.Context(), root, "HEAD", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Services) != 0 || !slices.Equal(r.Removed, []string{"b"}) {
			t.Errorf("report = %+v, want b removed and nothing else", r)
		}
		if s := r.String(); !strings.Contains(s, "no service is affected") || !strings.Contains(s, "b: removed (its folder is gone)") {
			t.Errorf("String = %q", s)
		}
	})
	t.Run("a changed deploy description is a release change, not an image change", func(t *testing.T) {
		root, _ := repo(t, "main")
		testfiles.Write(t, root, map[string]string{"services/a/values.yaml": "replicaCount: 1\n"})
		commitAll(t, root, "values", day.Add(time.Hour))
		testfiles.Write(t, root, map[string]string{"services/a/values.yaml": "replicaCount: 2\n"})
		r, err := Affected(t.Context(), root, "HEAD", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Services, []string{"a"}) || len(r.Changes) != 1 {
			t.Fatalf("report = %+v, want a alone", r)
		}
		c := r.Changes[0]
		if c.Image || !c.Release || !slices.Equal(c.Reasons, []Reason{{Input: "services/a/values.yaml", Why: "changed (deploy description or chart)"}}) {
			t.Errorf("change = %+v, want a release change for services/a/values.yaml", c)
		}
		if s := r.String(); !strings.Contains(s, "a: release only (not rebuilt)") {
			t.Errorf("String = %q", s)
		}
	})
	t.Run("a chart change is a release change of every service", func(t *testing.T) {
		root, _ := repo(t, "main")
		testfiles.Write(t, root, map[string]string{".helm/values-dev.yaml": "environment: dev\n"})
		r, err := Affected(t.Context(), root, "HEAD", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Services, []string{"a", "b"}) {
			t.Fatalf("report = %+v, want a and b", r)
		}
		for _, c := range r.Changes {
			if c.Image || !c.Release {
				t.Errorf("change = %+v, want a release change", c)
			}
		}
	})
	t.Run("nothing changed affects nothing", func(t *testing.T) {
		root, _ := repo(t, "main")
		r, err := Affected(t.Context(), root, "HEAD", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Services) != 0 || len(r.Changes) != 0 || len(r.Removed) != 0 {
			t.Errorf("report = %+v, want nothing", r)
		}
		var buf bytes.Buffer
		if err := r.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), `"services": []`) {
			t.Errorf("JSON = %s, want an empty services matrix (not null)", buf.String())
		}
	})
	t.Run("a base that is no commit is refused", func(t *testing.T) {
		root, _ := repo(t, "main")
		if _, err := Affected(t.Context(), root, "no-such-ref", Options{}); err == nil || !strings.Contains(err.Error(), `base "no-such-ref" is not a commit of this repository`) {
			t.Errorf("Affected = %v", err)
		}
	})
}

func TestReportJSONHasTheServicesAsTheMatrix(t *testing.T) {
	root, _ := repo(t, "main")
	testfiles.Write(t, root, map[string]string{
		"Dockerfile":             "FROM golang:1.26-bookworm\nRUN true\n",
		"services/c/main.go":     "package main\n\nfunc main() {}\n",
		"services/b/values.yaml": "replicaCount: 3\n",
	})
	r, err := Affected(t.Context(), root, "HEAD", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Base     string   `json:"base"`
		Services []string `json:"services"`
		Changes  []struct {
			Service string `json:"service"`
			Image   bool   `json:"image"`
			Release bool   `json:"release"`
			Reasons []struct{ Input, Why string }
		} `json:"changes"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, buf.String())
	}
	if !slices.Equal(got.Services, []string{"a", "b", "c"}) || got.Base != r.Base || len(got.Changes) != 3 {
		t.Errorf("decoded %+v", got)
	}
	b := got.Changes[1]
	if b.Service != "b" || !b.Image || !b.Release || len(b.Reasons) != 2 ||
		b.Reasons[0].Input != "Dockerfile" || b.Reasons[1].Input != "services/b/values.yaml" {
		t.Errorf("b = %+v, want an image change (Dockerfile) and a release change (values.yaml)", b)
	}
}

func TestDefaultBase(t *testing.T) {
	t.Run("without a main branch it is HEAD~1", func(t *testing.T) {
		root, first := repo(t, "trunk")
		testfiles.Write(t, root, map[string]string{"README.md": "# 2\n"})
		commitAll(t, root, "second", day.Add(time.Hour))
		got, what, err := DefaultBase(t.Context(), root)
		if err != nil || got != first || !strings.Contains(what, "HEAD~1") {
			t.Errorf("DefaultBase = %s (%s), %v; want HEAD~1 %s", got, what, err, first)
		}
	})
	t.Run("on a branch it is the merge-base with main", func(t *testing.T) {
		root, first := repo(t, "main")
		runGit(t, root, "checkout", "-q", "-b", "feature")
		testfiles.Write(t, root, map[string]string{"README.md": "# 2\n"})
		commitAll(t, root, "second", day.Add(time.Hour))
		testfiles.Write(t, root, map[string]string{"README.md": "# 3\n"})
		commitAll(t, root, "third", day.Add(2*time.Hour))
		runGit(t, root, "checkout", "-q", "main")
		testfiles.Write(t, root, map[string]string{"lib/lib.go": "package lib\n\nfunc F() int { return 3 }\n"})
		commitAll(t, root, "main moved on", day.Add(3*time.Hour))
		runGit(t, root, "checkout", "-q", "feature")
		got, what, err := DefaultBase(t.Context(), root)
		if err != nil || got != first || what != "the merge-base with main" {
			t.Errorf("DefaultBase = %s (%s), %v; want the merge-base %s (not HEAD~1, not main's tip)", got, what, err, first)
		}
	})
	t.Run("on main without an upstream it is the last commit", func(t *testing.T) {
		root, first := repo(t, "main")
		testfiles.Write(t, root, map[string]string{"README.md": "# 2\n"})
		commitAll(t, root, "second", day.Add(time.Hour))
		got, what, err := DefaultBase(t.Context(), root)
		if err != nil || got != first || !strings.Contains(what, "HEAD~1") {
			t.Errorf("DefaultBase = %s (%s), %v; want HEAD~1 %s: a local commit on main counts", got, what, err, first)
		}
	})
	t.Run("on main with an upstream it is what is not pushed yet", func(t *testing.T) {
		origin, _ := repo(t, "main")
		testfiles.Write(t, origin, map[string]string{"README.md": "# 2\n"})
		pushed := commitAll(t, origin, "second", day.Add(time.Hour))
		clone := filepath.Join(t.TempDir(), "clone")
		runGit(t, filepath.Dir(clone), "clone", "-q", origin, clone)
		runGit(t, clone, "config", "user.email", "t@example.com")
		runGit(t, clone, "config", "user.name", "t")
		testfiles.Write(t, clone, map[string]string{"README.md": "# 3\n"})
		commitAll(t, clone, "local one", day.Add(2*time.Hour))
		testfiles.Write(t, clone, map[string]string{"README.md": "# 4\n"})
		commitAll(t, clone, "local two", day.Add(3*time.Hour))
		got, what, err := DefaultBase(t.Context(), clone)
		if err != nil || got != pushed || !strings.Contains(what, "upstream") {
			t.Errorf("DefaultBase = %s (%s), %v; want the upstream's %s: both local commits count", got, what, err, pushed)
		}
	})
	t.Run("a single commit without main has no base", func(t *testing.T) {
		root, _ := repo(t, "trunk")
		if got, _, err := DefaultBase(t.Context(), root); err == nil || !strings.Contains(err.Error(), "pass one with -base=<commit>") {
			t.Errorf("DefaultBase = %s, %v; want an error with the fix", got, err)
		}
	})
}

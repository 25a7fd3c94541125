package image

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/services"
)

// TestTwoClonesBuildApiToTheSameDigest is the proof that the host builder's bytes depend on
// the content tag's inputs only: api is built from two clones of this repository at different
// paths, at least two seconds apart, the second after a rewrite of its history that touches no
// input (HEAD amended with another committer time, as a rebase or cherry-pick does), and both
// images must have the same digest while their revisions differ.
func TestTwoClonesBuildApiToTheSameDigest(t *testing.T) {
	if why := func() string { g := hostGoOnce(); return hostGoUnfit(g.version, g.goLine, g.err) }(); why != "" {
		t.Skipf("no host builder here: %s", why)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not on PATH: install git to clone the repository")
	}
	keepGoCaches(t)
	root, _ := apiService(t)
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skipf("%s is no git checkout (%v): the test clones it", root, err)
	}
	t.Setenv("BUILDER", BuilderHost)
	host := testRegistry(t)
	svc := services.Service{Name: "api", Dir: "services/api", Package: "github.com/dtap-platform/monorepo/services/api"}
	base := t.TempDir()

	type built struct {
		tag, digest string
		rev         inputs.Revision
	}
	build := func(dir string) built {
		t.Helper()
		m, err := inputs.Of(t.Context(), dir, svc, InputOptions(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		spec := Spec{Service: "api", Inputs: m, Revision: inputs.RevisionOf(t.Context(), dir, m), Ref: Ref{Repository: "api", Tag: m.Tag()}}
		var out bytes.Buffer
		d, err := BuildAndPush(t.Context(), dir, spec, host+"/"+filepath.Base(dir), &out)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s %s, revision %s at %s: %s", dir, spec.Ref.Tag, d, spec.Revision, spec.Revision.Time, strings.TrimSpace(out.String()))
		return built{spec.Ref.Tag, d, spec.Revision}
	}

	first := filepath.Join(base, "clone-one")
	gitRun(t, base, "clone", "--quiet", root, first)
	start := time.Now()
	a := build(first)
	if a.rev.Commit == "" {
		t.Fatal("no revision found in the first clone: the test cannot rewrite it")
	}

	second := filepath.Join(base, "elsewhere", "clone-two")
	gitRun(t, base, "clone", "--quiet", root, second)
	// A rebase or cherry-pick rewrites the commit that last changed api's inputs without
	// changing them: that commit checked out and amended a day later, another hash and time.
	gitRun(t, second, "checkout", "--quiet", "--detach", a.rev.Commit)
	gitRun(t, second, "-c", "user.name=rebaser", "-c", "user.email=rebaser@example.com",
		"commit", "--amend", "--no-edit", "--quiet", "--allow-empty", "--date="+time.Now().Add(24*time.Hour).Format(time.RFC3339))
	if wait := 2*time.Second - time.Since(start); wait > 0 {
		time.Sleep(wait)
	}
	b := build(second)

	if a.tag != b.tag {
		t.Fatalf("the clones give api the content tags %s and %s: the inputs differ, the test proves nothing", a.tag, b.tag)
	}
	if a.digest != b.digest {
		t.Errorf("api from %s is %s, from %s %s: the same inputs gave other bytes", first, a.digest, second, b.digest)
	}
	if a.rev.Commit == "" || a.rev.Commit == b.rev.Commit || a.rev.Time.Equal(b.rev.Time) {
		t.Errorf("revisions %s at %s and %s at %s: the test wants two revisions of the same inputs", a.rev, a.rev.Time, b.rev, b.rev.Time)
	}
	t.Logf("revisions %s and %s, one digest %s", a.rev, b.rev, a.digest)
}

func gitRun(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE="+time.Now().Add(24*time.Hour).Format(time.RFC3339))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

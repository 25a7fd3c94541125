package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateTag(t *testing.T) {
	for tag, ok := range map[string]bool{
		"3f2c1ab9e0d4": true, "3f2c1ab9e0d4-dirty": true, "v1.2.3": true, "_x": true, strings.Repeat("a", 128): true,
		"": false, ".x": false, "-x": false, "v1 beta": false, "a/b": false, "a:b": false, strings.Repeat("a", 129): false,
	} {
		if err := ValidateTag(tag); (err == nil) != ok {
			t.Errorf("ValidateTag(%q) = %v, want ok=%v", tag, err, ok)
		}
	}
}

func TestValidateRepository(t *testing.T) {
	for repo, ok := range map[string]bool{
		"api": true, "localhost:5001/api": true, "registry.example.com/team/api": true, "ghcr.io/o/a_b": true,
		"API": false, "localhost:5001/": false, "/api": false, "a//b": false, "reg.example.com/API": false,
	} {
		if err := ValidateRepository(repo); (err == nil) != ok {
			t.Errorf("ValidateRepository(%q) = %v, want ok=%v", repo, err, ok)
		}
	}
}

func TestRefString(t *testing.T) {
	r := Ref{Repository: "localhost:5001/api", Tag: "abc"}
	if r.String() != "localhost:5001/api:abc" {
		t.Errorf("String() = %s", r)
	}
	r.Digest = "sha256:0123"
	if r.String() != "localhost:5001/api:abc@sha256:0123" {
		t.Errorf("String() = %s", r)
	}
}

func TestGitTagMarksADirtyTree(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t",
			"GIT_COMMITTER_DATE=2026-01-02T03:04:05Z", "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run("init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("add", "f")
	run("commit", "-q", "-m", "one")

	clean, err := GitTag(t.Context(), dir)
	if err != nil || len(clean) != 12 || strings.HasSuffix(clean, "-dirty") {
		t.Fatalf("GitTag of a clean tree = %q, %v", clean, err)
	}
	if got := created(t.Context(), dir); got != "2026-01-02T03:04:05Z" {
		t.Errorf("created = %s, want the commit time", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if dirty, err := GitTag(t.Context(), dir); err != nil || dirty != clean+"-dirty" {
		t.Errorf("GitTag of a dirty tree = %q, %v; want %s-dirty", dirty, err, clean)
	}
	if _, err := GitTag(t.Context(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "set IMAGE_TAG") {
		t.Errorf("GitTag outside git = %v, want a hint to set IMAGE_TAG", err)
	}
}

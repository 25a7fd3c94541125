package golist

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeModule(t *testing.T, dir, main string) {
	t.Helper()
	files := map[string]string{"go.mod": "module example.com/m\n\ngo 1.26\n", "a/main.go": main}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunAnswersFromTheCacheUntilAFileChanges(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, ".cache"))
	writeModule(t, dir, "package main\n\nfunc main() {}\n")
	first, err := Run(t.Context(), dir, nil, "-f", "{{.Imports}}", "./a")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(first)) != "[]" {
		t.Fatalf("go list = %q, want no imports", first)
	}
	cached, _ := filepath.Glob(filepath.Join(dir, ".cache", "dtap", "golist", "[0-9a-f]*.json"))
	if len(cached) != 1 {
		t.Fatalf("cache holds %v, want one answer by the tree's files", cached)
	}
	// The cached answer is what is returned: prove it by changing it behind the cache's back.
	if err := os.WriteFile(cached[0], []byte("from the cache\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := Run(t.Context(), dir, nil, "-f", "{{.Imports}}", "./a")
	if err != nil || string(again) != "from the cache\n" {
		t.Fatalf("second Run = %q, %v; want the cached answer", again, err)
	}
	// A changed file is a new tree: go list runs again.
	time.Sleep(10 * time.Millisecond)
	writeModule(t, dir, "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println() }\n")
	changed, err := Run(t.Context(), dir, nil, "-f", "{{.Imports}}", "./a")
	if err != nil || strings.TrimSpace(string(changed)) != "[fmt]" {
		t.Fatalf("Run after a change = %q, %v; want [fmt]", changed, err)
	}
}

func TestAnEditInsideAFunctionKeepsTheAnswerAndANewImportDoesNot(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, ".cache"))
	writeModule(t, dir, "//go:build !nothing\n\npackage main\n\nfunc main() {}\n")
	if _, err := Run(t.Context(), dir, nil, "-f", "{{.Imports}}", "./a"); err != nil {
		t.Fatal(err)
	}
	shapes, _ := filepath.Glob(filepath.Join(dir, ".cache", "dtap", "golist", "shape-*.json"))
	if len(shapes) != 1 {
		t.Fatalf("cache holds %v, want one answer by the tree's shape", shapes)
	}
	if err := os.WriteFile(shapes[0], []byte("from the shape\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	writeModule(t, dir, "//go:build !nothing\n\npackage main\n\nfunc main() { println(1) }\n")
	body, err := Run(t.Context(), dir, nil, "-f", "{{.Imports}}", "./a")
	if err != nil || string(body) != "from the shape\n" {
		t.Fatalf("Run after an edit inside main = %q, %v; want the answer kept for that shape", body, err)
	}
	for _, change := range []struct{ what, src string }{
		{"a new import", "//go:build !nothing\n\npackage main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println() }\n"},
		{"a new build constraint", "//go:build nothing\n\npackage main\n\nfunc main() {}\n"},
		{"a new //go:embed line", "//go:build !nothing\n\npackage main\n\nimport _ \"embed\"\n\n//go:embed main.go\nvar s string\n\nfunc main() {}\n"},
	} {
		time.Sleep(10 * time.Millisecond)
		writeModule(t, dir, change.src)
		got, err := Run(t.Context(), dir, nil, "-e", "-f", "{{.Imports}}", "./a")
		if err != nil || string(got) == "from the shape\n" {
			t.Fatalf("Run after %s = %q, %v; want go list to run again", change.what, got, err)
		}
	}
}

func TestRunReportsGoListsError(t *testing.T) {
	dir := t.TempDir()
	writeModule(t, dir, "package main\n\nfunc main() {\n")
	if _, err := Run(t.Context(), dir, nil, "-deps", "./nope"); err == nil || !strings.Contains(err.Error(), "go list -deps ./nope") {
		t.Fatalf("Run = %v, want go list's failure named", err)
	}
}

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
	cached, _ := filepath.Glob(filepath.Join(dir, ".cache", "dtap", "golist", "*.json"))
	if len(cached) != 1 {
		t.Fatalf("cache holds %v, want one answer", cached)
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

func TestRunReportsGoListsError(t *testing.T) {
	dir := t.TempDir()
	writeModule(t, dir, "package main\n\nfunc main() {\n")
	if _, err := Run(t.Context(), dir, nil, "-deps", "./nope"); err == nil || !strings.Contains(err.Error(), "go list -deps ./nope") {
		t.Fatalf("Run = %v, want go list's failure named", err)
	}
}

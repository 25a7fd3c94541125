// Package testfiles writes the file trees that the toolkit's tests build repositories from.
package testfiles

import (
	"os"
	"path/filepath"
	"testing"
)

// Write writes files (a slash-separated path relative to root -> content) under root, making
// the directories they need.
func Write(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

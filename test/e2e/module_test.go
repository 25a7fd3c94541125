//go:build integration

package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// moduleDir is where the Go module cache holds a dependency of this module.
func moduleDir(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}

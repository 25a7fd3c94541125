package procenv

import (
	"slices"
	"strings"
	"testing"
)

func TestCleanDropsSecretsAndKeepsTheRest(t *testing.T) {
	t.Setenv("SECRET_API_DB_PASSWORD", "hunter2")
	t.Setenv("SECRETARY", "kept")
	t.Setenv("SIGNING_KEY", "-----BEGIN PRIVATE KEY-----hunter2")
	t.Setenv("SIGNING_PASSWORD", "hunter2")
	t.Setenv("SIGNING_KEY_FILE", "/keys/cosign.key")
	got := Clean("GOOS=linux")
	for _, kv := range got {
		if strings.Contains(kv, "hunter2") {
			t.Errorf("a secret reached the environment: %s", kv)
		}
	}
	if !slices.Contains(got, "SECRETARY=kept") || !slices.Contains(got, "SIGNING_KEY_FILE=/keys/cosign.key") || got[len(got)-1] != "GOOS=linux" {
		t.Errorf("Clean = %v, want the rest kept and the extra last", got)
	}
}

package procenv

import (
	"slices"
	"strings"
	"testing"
)

func TestCleanDropsSecretsAndKeepsTheRest(t *testing.T) {
	t.Setenv("SECRET_API_DB_PASSWORD", "hunter2")
	t.Setenv("SECRETARY", "kept")
	got := Clean("GOOS=linux")
	for _, kv := range got {
		if strings.Contains(kv, "hunter2") {
			t.Errorf("a secret reached the environment: %s", kv)
		}
	}
	if !slices.Contains(got, "SECRETARY=kept") || got[len(got)-1] != "GOOS=linux" {
		t.Errorf("Clean = %v, want the rest kept and the extra last", got)
	}
}

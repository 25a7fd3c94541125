//go:build integration

package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestALargeConfigFileDeploysAndPassesTheSmokeCheck: a config file of 1,000,000 bytes (about
// as large as a ConfigMap can hold, 1 MiB), whose JSON is larger than 1 MiB, deploys and passes
// the smoke check (issue 22, attack 8); /config answers within its bound and says what it cut. A 2 MB file, which no ConfigMap can hold,
// is refused before any change, naming the limit and the fix.
func TestALargeConfigFileDeploysAndPassesTheSmokeCheck(t *testing.T) {
	p := newProject(t, "big")
	dir := t.TempDir()
	// valuesFile writes a values file whose config file big.conf holds size bytes: short lines,
	// whose newlines JSON escapes ("\n"), so /config is larger than the file.
	valuesFile := func(name string, size int) string {
		body := strings.Repeat("    a=1\n", size/4)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("config:\n  big.conf: |\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	res, _, err := p.deploy(repoRoot, "dev", map[string]string{"SERVICES": "api", "VALUES_FILES": valuesFile("big.yaml", 1_000_000)})
	if err != nil {
		t.Fatalf("deploy dev with a 1,000,000-byte config file: %v", err)
	}
	row, ok := res.Row("api")
	if !ok || row.URL == "" {
		t.Fatalf("no URL for api: %+v", res.Rows)
	}
	client := frontDoorClient(t, 30*time.Second)
	resp, err := client.Get(strings.TrimSuffix(row.URL, "/") + "/config")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	// The file's JSON is larger than 1 MiB: the service bounds /config (CONFIG_VIEW_MAX_BYTES)
	// and says what it truncated; the smoke check passed on that answer.
	if resp.StatusCode != http.StatusOK || len(body) > 1<<20 || !strings.Contains(string(body), `"truncated"`) || !strings.Contains(string(body), `"environment":"dev"`) {
		t.Errorf("GET /config = %d, %d bytes: %.300s\nwant 200, at most 1 MiB, for dev, saying what it truncated", resp.StatusCode, len(body), body)
	}
	t.Logf("/config is %d bytes, truncated as it says; the deploy's smoke check passed", len(body))

	before := snapshot(t, p, p.ns("dev"))
	_, _, err = p.deploy(repoRoot, "dev", map[string]string{"SERVICES": "api", "VALUES_FILES": valuesFile("huge.yaml", 2_000_000)})
	if err == nil || !strings.Contains(err.Error(), "a ConfigMap holds at most") || !strings.Contains(err.Error(), "keep large data out of config") {
		t.Errorf("deploy with a 2 MB config file = %v, want a refusal naming the ConfigMap limit and the fix", err)
	}
	if after := snapshot(t, p, p.ns("dev")); after != before {
		t.Errorf("the refused deploy changed dev:\nbefore %s\nafter  %s", before, after)
	}
}

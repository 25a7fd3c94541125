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
// as large as a ConfigMap can hold, 1 MiB) makes /config larger than 1 MiB; the deploy passes
// its smoke check all the same (issue 22, attack 8). A 2 MB file, which no ConfigMap can hold,
// is refused before any change, naming the limit and the fix.
func TestALargeConfigFileDeploysAndPassesTheSmokeCheck(t *testing.T) {
	p := newProject(t, "big")
	dir := t.TempDir()
	valuesFile := func(name string, size int) string {
		line := "    checkout.region.eu-west.feature-flag.rollout-percentage = 100\n"
		body := strings.Repeat(line, size/len(line)+1)
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
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(strings.TrimSuffix(row.URL, "/") + "/config")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || n <= 1<<20 {
		t.Errorf("GET /config = %d, %d bytes; want 200 and more than 1 MiB (the case the smoke check once failed)", resp.StatusCode, n)
	}
	t.Logf("/config is %d bytes; the deploy's smoke check passed", n)

	before := snapshot(t, p, p.ns("dev"))
	_, _, err = p.deploy(repoRoot, "dev", map[string]string{"SERVICES": "api", "VALUES_FILES": valuesFile("huge.yaml", 2_000_000)})
	if err == nil || !strings.Contains(err.Error(), "a ConfigMap holds at most") || !strings.Contains(err.Error(), "keep large data out of config") {
		t.Errorf("deploy with a 2 MB config file = %v, want a refusal naming the ConfigMap limit and the fix", err)
	}
	if after := snapshot(t, p, p.ns("dev")); after != before {
		t.Errorf("the refused deploy changed dev:\nbefore %s\nafter  %s", before, after)
	}
}

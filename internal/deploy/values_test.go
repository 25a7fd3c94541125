package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/chart"
)

// TestDeploysValuesDocumentIsTheSameWithOrWithoutTheCache: the document deploy sets is
// byte for byte yaml.Marshal's, made or read back (its bytes name the release's fingerprint),
// and a damaged kept copy is made again.
func TestDeploysValuesDocumentIsTheSameWithOrWithoutTheCache(t *testing.T) {
	dir := t.TempDir()
	old := chart.ValuesCacheDir
	chart.ValuesCacheDir = func() string { return dir }
	t.Cleanup(func() { chart.ValuesCacheDir = old })
	peers := map[string]any{}
	for _, p := range []string{"api", "status", "s01", "s02"} {
		peers[p] = 8080
	}
	set := map[string]any{"environment": "dev", "chartDigest": "abc", "peers": peers,
		"baseUrl": "http://api.dev.localhost:8080", "secret": map[string]any{"existingSecret": "api-secrets-3"},
		"config": map[string]any{"greeting": "yes", "multi": "a\nb"}, "replicaCount": 1.0}
	want, err := yaml.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"made", "read back"} {
		got, err := setYAML(set)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %v\n%s\nwant\n%s", run, err, got, want)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "set-*.yaml"))
	if len(files) != 1 {
		t.Fatalf("kept %v, want one document", files)
	}
	if err := os.WriteFile(files[0], []byte("0000\nenvironment: prod\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := setYAML(set); err != nil || !bytes.Equal(got, want) {
		t.Errorf("with a damaged kept copy: %v\n%s", err, got)
	}
}

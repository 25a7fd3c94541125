package deploy

import (
	"crypto/rand"
	"strings"
	"testing"
)

func TestConfigFilesKubernetesCannotStoreAreRefusedUpFront(t *testing.T) {
	line := "feature.checkout.region-eu-west.enabled = true # rolled out 2026-11\n"
	text := func(n int) string { return strings.Repeat(line, n/len(line)+1)[:n] }
	random := make([]byte, 600<<10)
	_, _ = rand.Read(random)
	for _, tc := range []struct {
		name  string
		files map[string]any
		want  string // "" passes
	}{
		{"no config", nil, ""},
		{"a small file", map[string]any{"app.conf": text(2 << 10)}, ""},
		{"1,000,000 bytes of text (compresses)", map[string]any{"big.conf": text(1_000_000)}, ""},
		{"2 MB of text: more than a ConfigMap holds", map[string]any{"big.conf": text(2_000_000)}, "a ConfigMap holds at most 1048576"},
		{"two files over 1 MiB together", map[string]any{"a.conf": text(600_000), "b.conf": text(600_000)}, "a ConfigMap holds at most"},
		{"600 KiB that does not compress", map[string]any{"blob.bin": string(random)}, "Helm's release record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkConfigSize("api", map[string]any{"config": tc.files})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "service api")):
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

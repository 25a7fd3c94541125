package chart_test

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// update rewrites the golden files: go test ./internal/chart -update. Review the diff: it is
// every manifest change the chart change makes.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the chart")

// golden is one golden file: a release rendered with some overrides.
type golden struct {
	env, svc  string
	overrides map[string]any
}

// goldens are the golden files by name (testdata/<name>.yaml): every service in every
// environment (<env>-<service>), and a few renderings with options on.
func goldens(t *testing.T) map[string]golden {
	t.Helper()
	cases := map[string]golden{
		"dev-api-with-every-option":  {"dev", "api", everything()},
		"prod-status-with-discovery": {"prod", "status", discoveredServices()},
		"dev-api-behind-a-node-port": {"dev", "api", map[string]any{"service": map[string]any{"nodePort": 30080}, "networkPolicy": map[string]any{"frontDoor": "cidrs", "sourceCIDRs": []any{"172.18.0.2/32", "10.244.0.1/32"}}}},
		"staging-api-with-a-secret":  {"staging", "api", map[string]any{"secret": map[string]any{"existingSecret": "api-secrets-3"}}},
	}
	for _, env := range envs(t) {
		for _, svc := range serviceNames(t) {
			cases[env+"-"+svc] = golden{env, svc, nil}
		}
	}
	return cases
}

func TestRenderedManifestsMatchTheGoldenFiles(t *testing.T) {
	cases := goldens(t)
	for name, g := range cases {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("testdata", name+".yaml")
			header := "# Golden file: the chart rendered for " + name + " (release " + g.svc + ", namespace " + namespace(g.env) + ").\n" +
				"# Regenerate with: go test ./internal/chart -update\n"
			manifest := header + render(t, g.env, g.svc, g.overrides).String()
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(manifest), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v: create it with go test ./internal/chart -update", err)
			}
			if string(want) != manifest {
				t.Errorf("the rendering of %s differs from %s; if the change is intended, run\n"+
					"go test ./internal/chart -update and review the diff.\n%s", name, file, firstDifference(string(want), manifest))
			}
		})
	}

	// A golden file no case writes any more is stale: -update removes it, else it fails.
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := cases[strings.TrimSuffix(filepath.Base(f), ".yaml")]; ok {
			continue
		}
		if *update {
			if err := os.Remove(f); err != nil {
				t.Error(err)
			}
			continue
		}
		t.Errorf("%s is no rendering's golden file any more: run go test ./internal/chart -update to remove it", f)
	}
}

// firstDifference shows the first line that differs, with its line number.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n  golden:   " + wl + "\n  rendered: " + gl
		}
	}
	return ""
}

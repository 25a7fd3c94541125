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

func TestRenderedManifestsMatchTheGoldenFiles(t *testing.T) {
	cases := map[string]func(*testing.T) string{
		"dev-with-every-option": func(t *testing.T) string { return render(t, "dev", everything()).String() },
	}
	for _, env := range envs(t) {
		cases[env] = func(t *testing.T) string { return render(t, env, nil).String() }
	}
	for name, got := range cases {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("testdata", name+".yaml")
			header := "# Golden file: the chart rendered for " + name + " (release api, namespace api-<env>).\n" +
				"# Regenerate with: go test ./internal/chart -update\n"
			manifest := header + got(t)
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

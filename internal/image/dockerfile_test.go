package image

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestTheDepsStageFollowsWhatTheServicesImport: the Dockerfile's deps stage compiles the
// services' third-party imports before the source is copied. The list is computed from
// services/ on every build (no hand-kept list to update when a service adds a dependency), and
// holds neither the standard library nor this module's own packages.
func TestTheDepsStageFollowsWhatTheServicesImport(t *testing.T) {
	root := filepath.Join("..", "..")
	deps, err := ThirdPartyImports(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"github.com/go-chi/chi/v5", "github.com/prometheus/client_golang/prometheus"} {
		if !slices.Contains(deps, want) {
			t.Errorf("ThirdPartyImports = %v, want %s (services/kit imports it)", deps, want)
		}
	}
	for _, dep := range deps {
		if !strings.Contains(strings.SplitN(dep, "/", 2)[0], ".") || strings.HasPrefix(dep, module+"/") {
			t.Errorf("ThirdPartyImports holds %s: not a third-party package", dep)
		}
	}
	if !slices.IsSorted(deps) || len(slices.Compact(slices.Clone(deps))) != len(deps) {
		t.Errorf("ThirdPartyImports = %v: not sorted and unique (the layer's cache key would move)", deps)
	}
	args := strings.Join(buildArgs(deps), " ")
	if !strings.Contains(args, "DEPS="+strings.Join(deps, " ")) {
		t.Errorf("the build arguments %q do not pass the list", args)
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^ARG DEPS=""$`).Match(dockerfile) || !strings.Contains(string(dockerfile), "go build ${DEPS}") {
		t.Error(`the Dockerfile's deps stage must take its list from ARG DEPS="" (empty for a plain docker build)`)
	}
}

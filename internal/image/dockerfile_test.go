package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDockerfileWarmsTheServicesThirdPartyImports keeps the Dockerfile's DEPS layer, which
// compiles the dependencies before the source is copied, equal to what services/ imports:
// a missing entry would not break the build, only make every build slow again.
func TestDockerfileWarmsTheServicesThirdPartyImports(t *testing.T) {
	root := filepath.Join("..", "..")
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ARG DEPS="([^"]*)"`).FindSubmatch(dockerfile)
	if m == nil {
		t.Fatal(`the Dockerfile has no ARG DEPS="..." line`)
	}
	warmed := strings.Fields(string(m[1]))
	slices.Sort(warmed)

	cmd := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "./services/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var imports []string
	for _, imp := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") && !strings.HasPrefix(imp, "github.com/dtap-platform/monorepo/") {
			imports = append(imports, imp)
		}
	}
	slices.Sort(imports)
	imports = slices.Compact(imports)
	if !slices.Equal(warmed, imports) {
		t.Errorf("Dockerfile DEPS = %v\nservices import %v\nupdate the ARG DEPS line", warmed, imports)
	}
}

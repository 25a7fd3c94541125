package argocd

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/services"
)

var repoRoot = filepath.Join("..", "..")

func TestTheManifestsDecodeStrictly(t *testing.T) {
	project, set, err := Load(filepath.Join(repoRoot, File))
	if err != nil {
		t.Fatal(err)
	}
	if project.Metadata.Name != "dtap" || set.Spec.Template.Spec.Project != project.Metadata.Name {
		t.Errorf("the Applications' project %q is not the AppProject %q", set.Spec.Template.Spec.Project, project.Metadata.Name)
	}
	if !set.Spec.GoTemplate || !slices.Contains(set.Spec.GoTemplateOptions, "missingkey=error") {
		t.Error("the ApplicationSet must use Go templates that fail on a missing key")
	}
}

func TestStrictDecodingRefusesAMisspelledField(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, File))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "appset.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(b), "ignoreMissingValueFiles", "ignoreMissingValuesFiles", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "ignoreMissingValuesFiles") {
		t.Errorf("Load of a misspelled field = %v, want it named", err)
	}
}

// TestEveryServiceInEveryEnvironmentGetsAnApplication expands the generators as Argo CD does:
// one Application per discovered service and environment, no more; each with the values files
// mage deploy layers, in the same order; each destination allowed by the project; prod alone
// waits for a manual sync.
func TestEveryServiceInEveryEnvironmentGetsAnApplication(t *testing.T) {
	project, set, err := Load(filepath.Join(repoRoot, File))
	if err != nil {
		t.Fatal(err)
	}
	apps, err := set.Expand(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := services.Discover(t.Context(), repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	envs, err := environments.List(filepath.Join(repoRoot, environments.ChartDir))
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, env := range envs {
		for _, s := range svcs {
			want = append(want, s.Name+"-"+env)
		}
	}
	byName := map[string]App{}
	for _, a := range apps {
		got = append(got, a.Name)
		byName[a.Name] = a
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Applications = %v\nwant one per service and environment: %v", got, want)
	}
	for _, env := range envs {
		for _, s := range svcs {
			a := byName[s.Name+"-"+env]
			wantFiles := []string{".helm/values-" + env + ".yaml"}
			for _, f := range []string{"values.yaml", "values-" + env + ".yaml"} {
				wantFiles = append(wantFiles, filepath.ToSlash(filepath.Join(s.Dir, f)))
			}
			wantFiles = append(wantFiles, fmt.Sprintf("deploy/gitops/%s/%s.yaml", env, s.Name))
			if !slices.Equal(a.ValueFiles, wantFiles) {
				t.Errorf("%s value files = %v, want %v", a.Name, a.ValueFiles, wantFiles)
			}
			for _, f := range s.ValuesFiles(repoRoot, env) {
				if !slices.Contains(a.ValueFiles, filepath.ToSlash(f)) {
					t.Errorf("%s leaves out %s", a.Name, f)
				}
			}
			allowed := false
			for _, d := range project.Spec.Destinations {
				allowed = allowed || d.Server == a.Server && d.Namespace == a.Namespace
			}
			if !allowed {
				t.Errorf("%s goes to %s %s, which the project does not allow", a.Name, a.Server, a.Namespace)
			}
			if a.Automated == (env == "prod") {
				t.Errorf("%s automated sync = %v, want it only outside prod", a.Name, a.Automated)
			}
		}
	}
}

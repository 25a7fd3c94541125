package tf

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var repoRoot = filepath.Join("..", "..")

// terraformPath finds the terraform binary the way deploy does, without installing one.
func terraformPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("terraform")
	if err != nil {
		t.Skipf("SKIPPED: terraform is not on PATH (%v); install Terraform %s to run this check", err, Constraint)
	}
	return p
}

func TestModulesAreFormatted(t *testing.T) {
	tfPath := terraformPath(t)
	for _, dir := range []string{"terraform", filepath.Join("modules", "helm-release")} {
		r, err := New(Options{Dir: filepath.Join(repoRoot, dir), ExecPath: tfPath})
		if err != nil {
			t.Fatal(err)
		}
		files, err := r.FormatCheck(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(files) > 0 {
			t.Errorf("%s: terraform fmt would change %s (run terraform fmt -recursive)", dir, strings.Join(files, ", "))
		}
	}
}

// TestModulesValidate runs terraform init and validate on a copy of both modules, so the
// work tree gets no .terraform directory or lock file from a local provider build.
func TestModulesValidate(t *testing.T) {
	tfPath := terraformPath(t)
	provider := RequireProvider(t)
	t.Logf("provider: %s", provider)
	cliConfig, err := CLIConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for _, dir := range []string{"terraform", "modules", ".helm"} {
		if err := os.CopyFS(filepath.Join(work, dir), os.DirFS(filepath.Join(repoRoot, dir))); err != nil {
			t.Fatal(err)
		}
	}
	os.RemoveAll(filepath.Join(work, "terraform", ".terraform"))
	for _, dir := range []string{"terraform", filepath.Join("modules", "helm-release")} {
		t.Run(dir, func(t *testing.T) {
			r, err := New(Options{Dir: filepath.Join(work, dir), ExecPath: tfPath, CLIConfig: cliConfig, Out: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.InitWithoutBackend(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(t.Context()); err != nil {
				t.Errorf("terraform validate %s:\n%v", dir, err)
			}
		})
	}
}

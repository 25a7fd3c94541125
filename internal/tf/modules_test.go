package tf

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-exec/tfexec"
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
		r, err := New(filepath.Join(repoRoot, dir), tfPath, io.Discard, "")
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
	provider := MirroredProvider()
	if provider == "" {
		t.Skip("SKIPPED: the hashicorp/helm provider v3 is not in any of Terraform's implied local mirror " +
			"directories (~/.terraform.d/plugins/registry.terraform.io/hashicorp/helm/<version>/<os_arch>/), and the " +
			"Terraform registry cannot be reached here; put the provider there to validate the modules")
	}
	t.Logf("provider: %s", provider)
	work := t.TempDir()
	for _, dir := range []string{"terraform", "modules", ".helm"} {
		if err := os.CopyFS(filepath.Join(work, dir), os.DirFS(filepath.Join(repoRoot, dir))); err != nil {
			t.Fatal(err)
		}
	}
	os.RemoveAll(filepath.Join(work, "terraform", ".terraform"))
	for _, dir := range []string{"terraform", filepath.Join("modules", "helm-release")} {
		t.Run(dir, func(t *testing.T) {
			r, err := New(filepath.Join(work, dir), tfPath, io.Discard, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := r.tf.Init(t.Context(), tfexec.Backend(false)); err != nil {
				t.Fatalf("terraform init: %v", err)
			}
			if err := r.Validate(t.Context()); err != nil {
				t.Errorf("terraform validate %s:\n%v", dir, err)
			}
		})
	}
}

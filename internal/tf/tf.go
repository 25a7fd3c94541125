// Package tf makes Terraform available (hc-install) and drives it (terraform-exec): init, one
// workspace per environment, plan, apply of the saved plan, destroy and outputs, with the
// output streamed under a step prefix.
package tf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-version"
	install "github.com/hashicorp/hc-install"
	"github.com/hashicorp/hc-install/fs"
	"github.com/hashicorp/hc-install/product"
	"github.com/hashicorp/hc-install/releases"
	"github.com/hashicorp/hc-install/src"
	"github.com/hashicorp/terraform-exec/tfexec"
	tfjson "github.com/hashicorp/terraform-json"

	"github.com/dtap-platform/monorepo/internal/lineprefix"
)

// Constraint is the Terraform versions the modules accept (versions.tf); Pinned is the
// release installed when no terraform on PATH satisfies it.
const (
	Constraint = ">= 1.9, < 2.0"
	Pinned     = "1.11.4"
)

// Ensure returns the path of a terraform binary: one on PATH (or TERRAFORM_PATH) that satisfies
// Constraint, else the pinned release, installed once into cacheDir and reused after. A cached
// install is never removed.
func Ensure(ctx context.Context, cacheDir string) (string, error) {
	if p := os.Getenv("TERRAFORM_PATH"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("TERRAFORM_PATH=%s: %w", p, err)
		}
		return p, nil
	}
	installDir := filepath.Join(cacheDir, "terraform", Pinned)
	if err := os.MkdirAll(installDir, 0o755); err != nil {
		return "", err
	}
	i := install.NewInstaller()
	path, err := i.Ensure(ctx, []src.Source{
		&fs.Version{Product: product.Terraform, Constraints: version.MustConstraints(version.NewConstraint(Constraint))},
		&fs.ExactVersion{Product: product.Terraform, Version: version.Must(version.NewVersion(Pinned)), ExtraPaths: []string{installDir}},
		&releases.ExactVersion{Product: product.Terraform, Version: version.Must(version.NewVersion(Pinned)), InstallDir: installDir},
	})
	if err != nil {
		return "", fmt.Errorf("no terraform %s on PATH, and Terraform %s cannot be installed into %s: %w; "+
			"install Terraform %s (or set TERRAFORM_PATH) and run again", Constraint, Pinned, installDir, err, Constraint)
	}
	return path, nil
}

// Runner runs terraform in one working directory.
type Runner struct {
	tf  *tfexec.Terraform
	out io.Writer
}

// New prepares terraform in dir. Output goes to out, each line under prefix. The process
// environment is passed on (terraform-exec's SetEnv replaces it otherwise), less what
// terraform-exec manages itself and a TF_CLI_CONFIG_FILE that points nowhere.
func New(dir, execPath string, out io.Writer, prefix string) (*Runner, error) {
	t, err := tfexec.NewTerraform(dir, execPath)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if p := env["TF_CLI_CONFIG_FILE"]; p != "" {
		if _, err := os.Stat(p); err != nil {
			delete(env, "TF_CLI_CONFIG_FILE")
		}
	}
	env["TF_IN_AUTOMATION"] = "" // set by terraform-exec itself
	if err := t.SetEnv(tfexec.CleanEnv(env)); err != nil {
		return nil, err
	}
	w := lineprefix.New(out, prefix)
	t.SetStdout(w)
	t.SetStderr(w)
	return &Runner{tf: t, out: w}, nil
}

// Init initialises the working directory; backendConfig, when set, is a -backend-config file.
func (r *Runner) Init(ctx context.Context, backendConfig string) error {
	// terraform-exec checks the version (and caches it) before init; keep its JSON quiet.
	quiet := r.quiet()
	_, _, err := r.tf.Version(ctx, false)
	quiet()
	if err != nil {
		return fmt.Errorf("terraform version: %w", err)
	}
	opts := []tfexec.InitOption{tfexec.Upgrade(false)}
	if backendConfig != "" {
		opts = append(opts, tfexec.BackendConfig(backendConfig), tfexec.Reconfigure(true))
	}
	if err := r.tf.Init(ctx, opts...); err != nil {
		return fmt.Errorf("terraform init: %w%s", err, providerHint(err))
	}
	return nil
}

func providerHint(err error) string {
	if strings.Contains(err.Error(), "hashicorp/helm") {
		return "\nhint: the hashicorp/helm provider could not be installed; with no access to the Terraform registry, put it in a local mirror directory (see README, \"Terraform provider\")"
	}
	return ""
}

// Workspace selects the workspace, creating it when it does not exist.
func (r *Runner) Workspace(ctx context.Context, name string) error {
	quiet := r.quiet()
	list, current, err := r.tf.WorkspaceList(ctx)
	quiet()
	if err != nil {
		return fmt.Errorf("terraform workspace list: %w", err)
	}
	switch {
	case current == name:
		return nil
	case slices.Contains(list, name):
		return r.tf.WorkspaceSelect(ctx, name)
	default:
		return r.tf.WorkspaceNew(ctx, name)
	}
}

// HasWorkspace reports whether the workspace exists, without creating it.
func (r *Runner) HasWorkspace(ctx context.Context, name string) (bool, error) {
	defer r.quiet()()
	list, _, err := r.tf.WorkspaceList(ctx)
	if err != nil {
		return false, fmt.Errorf("terraform workspace list: %w", err)
	}
	return slices.Contains(list, name), nil
}

// Plan writes a plan to planFile (of the destruction, with destroy) and reports whether it
// changes anything.
func (r *Runner) Plan(ctx context.Context, planFile string, destroy bool, varFiles ...string) (bool, error) {
	opts := []tfexec.PlanOption{tfexec.Out(planFile), tfexec.Destroy(destroy)}
	for _, f := range varFiles {
		opts = append(opts, tfexec.VarFile(f))
	}
	changes, err := r.tf.Plan(ctx, opts...)
	if err != nil {
		return false, fmt.Errorf("terraform plan: %w", err)
	}
	return changes, nil
}

// Apply applies a saved plan.
func (r *Runner) Apply(ctx context.Context, planFile string) error {
	if err := r.tf.Apply(ctx, tfexec.DirOrPlan(planFile)); err != nil {
		return fmt.Errorf("terraform apply: %w", err)
	}
	return nil
}

// Outputs returns the root module's outputs as strings.
func (r *Runner) Outputs(ctx context.Context) (map[string]string, error) {
	defer r.quiet()()
	metas, err := r.tf.Output(ctx)
	if err != nil {
		return nil, fmt.Errorf("terraform output: %w", err)
	}
	out := make(map[string]string, len(metas))
	for k, m := range metas {
		if m.Sensitive {
			continue
		}
		s := string(m.Value)
		if unq, ok := strings.CutPrefix(s, `"`); ok {
			s = strings.ReplaceAll(strings.TrimSuffix(unq, `"`), `\"`, `"`)
		}
		out[k] = s
	}
	return out, nil
}

// quiet stops terraform's stdout from reaching the user until the returned func is called:
// `show -json` and `output -json` print sensitive values in clear, for machines only.
func (r *Runner) quiet() func() {
	r.tf.SetStdout(io.Discard)
	return func() { r.tf.SetStdout(r.out) }
}

// Resources lists the resources in the current workspace's state.
func (r *Runner) Resources(ctx context.Context) ([]string, error) {
	defer r.quiet()()
	state, err := r.tf.Show(ctx)
	if err != nil {
		return nil, fmt.Errorf("terraform show: %w", err)
	}
	if state.Values == nil || state.Values.RootModule == nil {
		return nil, nil
	}
	var addrs []string
	queue := []*tfjson.StateModule{state.Values.RootModule}
	for len(queue) > 0 {
		m := queue[0]
		queue = append(queue[1:], m.ChildModules...)
		for _, res := range m.Resources {
			addrs = append(addrs, res.Address)
		}
	}
	return addrs, nil
}

// FormatCheck reports the files that terraform fmt would change.
func (r *Runner) FormatCheck(ctx context.Context) ([]string, error) {
	ok, files, err := r.tf.FormatCheck(ctx, tfexec.Recursive(true))
	if err != nil {
		return nil, err
	}
	if ok {
		return nil, nil
	}
	return files, nil
}

// Validate runs terraform validate and returns its diagnostics as one error.
func (r *Runner) Validate(ctx context.Context) error {
	defer r.quiet()()
	out, err := r.tf.Validate(ctx)
	if err != nil {
		return err
	}
	if out.Valid {
		return nil
	}
	var msgs []string
	for _, d := range out.Diagnostics {
		msgs = append(msgs, fmt.Sprintf("%s: %s: %s", d.Severity, d.Summary, d.Detail))
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// MirroredProvider returns the path of a hashicorp/helm v3 provider in one of Terraform's
// implied local mirror directories, or "" when there is none. Where the Terraform registry
// cannot be reached, that is the only place Terraform can find it.
func MirroredProvider() string {
	home, _ := os.UserHomeDir()
	for _, dir := range []string{
		filepath.Join(home, ".terraform.d", "plugins"),
		filepath.Join(home, ".local", "share", "terraform", "plugins"),
		"/usr/local/share/terraform/plugins",
		"/usr/share/terraform/plugins",
	} {
		matches, _ := filepath.Glob(filepath.Join(dir, "registry.terraform.io", "hashicorp", "helm", "3.*", "*", "terraform-provider-helm*"))
		if len(matches) > 0 {
			return matches[0]
		}
	}
	return ""
}

// Package tf makes Terraform available (hc-install) and drives it (terraform-exec): init
// against the environment's backend, workspaces and their data directories (set up from one
// initialised directory), plan, apply, destroy, import, state push, refresh and outputs, with the output
// streamed under a step prefix. An interrupt is passed on to Terraform as SIGINT, so it stops
// cleanly and saves its state, instead of the SIGKILL that a cancelled context would send.
package tf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
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
	// Checking a binary's version means running it (a few hundred ms); a binary that passed the
	// check before, unchanged since (same path, size and time), passes again.
	stampFile := filepath.Join(cacheDir, "terraform", "ensured")
	if p, err := exec.LookPath("terraform"); err == nil {
		if b, err := os.ReadFile(stampFile); err == nil && string(b) == binaryStamp(p) {
			return p, nil
		}
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
	if p, err := exec.LookPath("terraform"); err == nil && p == path {
		_ = os.WriteFile(stampFile, []byte(binaryStamp(path)), 0o600)
	}
	return path, nil
}

// binaryStamp identifies a binary by its path, size and modification time.
func binaryStamp(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s\t%s\t%d\t%d\n", Constraint, path, st.Size(), st.ModTime().UnixNano())
}

// Options say where and how terraform runs.
type Options struct {
	Dir       string    // the root module
	ExecPath  string    // the terraform binary (Ensure)
	DataDir   string    // TF_DATA_DIR: one per environment, so two environments never share .terraform
	CLIConfig string    // TF_CLI_CONFIG_FILE, for example the provider mirror's (ProviderMirror)
	Out       io.Writer // terraform's output, each line under Prefix
	Prefix    string
	// Force is closed on a second interrupt: terraform is then told to exit at once.
	Force <-chan struct{}
	// Reattach names a provider already running (StartProvider) for terraform to use.
	Reattach tfexec.ReattachInfo
}

// Runner runs terraform in one working directory.
type Runner struct {
	tf    *tfexec.Terraform
	out   io.Writer
	env   map[string]string
	force <-chan struct{}
	name  string // the terraform binary's file name, to find its processes
	opts  Options
}

// New prepares terraform. The process environment is passed on (terraform-exec's SetEnv
// replaces it otherwise), less what terraform-exec manages itself and a TF_CLI_CONFIG_FILE that
// points nowhere.
func New(o Options) (*Runner, error) {
	t, err := tfexec.NewTerraform(o.Dir, o.ExecPath)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for k := range env {
		// Secrets and the signing key are never Terraform's (deploy writes and signs itself), and the helm provider and
		// the kubernetes backend would let KUBE_* (KUBE_CTX, KUBE_HOST, ...) pick another
		// cluster than the one deploy checked: the target is passed explicitly instead.
		if strings.HasPrefix(k, "SECRET_") || strings.HasPrefix(k, "KUBE_") || strings.HasPrefix(k, "SIGNING_") {
			delete(env, k)
		}
	}
	if p := env["TF_CLI_CONFIG_FILE"]; p != "" {
		if _, err := os.Stat(p); err != nil {
			delete(env, "TF_CLI_CONFIG_FILE")
		}
	}
	if o.CLIConfig != "" {
		env["TF_CLI_CONFIG_FILE"] = o.CLIConfig
	}
	if o.DataDir != "" {
		env["TF_DATA_DIR"] = o.DataDir
	}
	// The helm provider would follow HELM_DRIVER to another release storage than the Secrets the
	// toolkit's Helm SDK reads (history, rollback, recovery, adoption): one storage, always.
	env["HELM_DRIVER"] = "secret"
	// No version check against checkpoint-api.hashicorp.com on every run: deploy pins its
	// terraform, and an offline machine would only log a failed lookup.
	if _, set := env["CHECKPOINT_DISABLE"]; !set {
		env["CHECKPOINT_DISABLE"] = "1"
	}
	env["TF_IN_AUTOMATION"] = "" // set by terraform-exec itself
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	r := &Runner{tf: t, out: lineprefix.New(out, o.Prefix), env: env, force: o.Force, name: filepath.Base(o.ExecPath), opts: o}
	if err := r.setEnv(); err != nil {
		return nil, err
	}
	t.SetStdout(r.out)
	t.SetStderr(r.out)
	return r, nil
}

func (r *Runner) setEnv() error { return r.tf.SetEnv(tfexec.CleanEnv(r.env)) }

// Backend configures init: Settings are -backend-config key=value pairs (the kubernetes
// backend's), File a -backend-config file (TF_BACKEND_CONFIG, for a backend_override.tf).
type Backend struct {
	Settings map[string]string
	File     string
}

// Init initialises the working directory against the backend. It always reconfigures: state is
// never migrated from one backend (one cluster) to another by accident.
func (r *Runner) Init(ctx context.Context, b Backend) error {
	return r.run(ctx, func(ctx context.Context) error {
		// terraform-exec checks the version (and caches it) before init; keep its JSON quiet.
		quiet := r.quiet()
		_, _, err := r.tf.Version(ctx, false)
		quiet()
		if err != nil {
			return fmt.Errorf("terraform version: %w", err)
		}
		opts := []tfexec.InitOption{tfexec.Upgrade(false), tfexec.Reconfigure(true)}
		for _, k := range slices.Sorted(maps.Keys(b.Settings)) {
			opts = append(opts, tfexec.BackendConfig(k+"="+b.Settings[k]))
		}
		if b.File != "" {
			opts = append(opts, tfexec.BackendConfig(b.File))
		}
		if err := r.tf.Init(ctx, opts...); err != nil {
			return fmt.Errorf("terraform init: %w%s", err, providerHint(err))
		}
		return nil
	})
}

func providerHint(err error) string {
	if strings.Contains(err.Error(), "hashicorp/helm") {
		return "\nhint: the hashicorp/helm provider could not be installed; with no access to the Terraform registry, point TF_PROVIDER_MIRROR at a filesystem mirror that holds it (see README, \"Terraform provider\")"
	}
	return ""
}

// ForWorkspace returns a runner of the same root module on workspace, in a data directory of
// its own (dataDir) set up from this runner's initialised one without another init: the backend
// settings copied, the modules and providers linked, the workspace selected. Runners of
// different workspaces can then run at once. The workspace must exist, or be created with
// UseWorkspace.
func (r *Runner) ForWorkspace(dataDir, workspace, prefix string) (*Runner, error) {
	base := r.opts.DataDir
	if base == "" {
		return nil, errors.New("tf: ForWorkspace needs a runner with a data directory")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	backend, err := os.ReadFile(filepath.Join(base, "terraform.tfstate"))
	if err != nil {
		return nil, fmt.Errorf("tf: the data directory %s is not initialised: %w", base, err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "terraform.tfstate"), backend, 0o600); err != nil {
		return nil, err
	}
	for _, sub := range []string{"modules", "providers"} {
		link := filepath.Join(dataDir, sub)
		if err := os.RemoveAll(link); err != nil {
			return nil, err
		}
		if err := os.Symlink(filepath.Join(base, sub), link); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dataDir, "environment"), []byte(workspace), 0o600); err != nil {
		return nil, err
	}
	o := r.opts
	o.DataDir, o.Prefix = dataDir, prefix
	return New(o)
}

// Workspaces lists the backend's workspaces, and the selected one.
func (r *Runner) Workspaces(ctx context.Context) ([]string, string, error) {
	var list []string
	var current string
	err := r.run(ctx, func(ctx context.Context) error {
		defer r.quiet()()
		var err error
		list, current, err = r.tf.WorkspaceList(ctx)
		if err != nil {
			return fmt.Errorf("terraform workspace list: %w", err)
		}
		return nil
	})
	return list, current, err
}

// UseWorkspace selects workspace name for every later command, creating it first when create
// is set, and reports whether it exists. The selection is written into the data directory,
// which is the environment's own (TF_WORKSPACE cannot be used: terraform-exec manages it).
func (r *Runner) UseWorkspace(ctx context.Context, name string, create bool) (bool, error) {
	list, current, err := r.Workspaces(ctx)
	if err != nil {
		return false, err
	}
	switch {
	case current == name:
		return true, nil
	case slices.Contains(list, name):
		if err := r.run(ctx, func(ctx context.Context) error { return r.tf.WorkspaceSelect(ctx, name) }); err != nil {
			return false, fmt.Errorf("terraform workspace select %s: %w", name, err)
		}
		return true, nil
	case !create:
		return false, nil
	}
	if err := r.run(ctx, func(ctx context.Context) error { return r.tf.WorkspaceNew(ctx, name) }); err != nil {
		return false, fmt.Errorf("terraform workspace new %s: %w", name, err)
	}
	return true, nil
}

// NewWorkspace creates workspace name and selects it; one that exists already is selected.
// One terraform run, where UseWorkspace lists the workspaces first.
func (r *Runner) NewWorkspace(ctx context.Context, name string) error {
	err := r.run(ctx, func(ctx context.Context) error {
		defer r.quiet()()
		return r.tf.WorkspaceNew(ctx, name)
	})
	if err == nil {
		return nil
	}
	if !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("terraform workspace new %s: %w", name, err)
	}
	if err := r.run(ctx, func(ctx context.Context) error { return r.tf.WorkspaceSelect(ctx, name) }); err != nil {
		return fmt.Errorf("terraform workspace select %s: %w", name, err)
	}
	return nil
}

// DeleteWorkspace deletes a workspace and its state; the default workspace is selected first
// (written into the data directory's selection, which is all `workspace select` does after
// checking that the workspace exists: default always does).
func (r *Runner) DeleteWorkspace(ctx context.Context, name string) error {
	return r.run(ctx, func(ctx context.Context) error {
		selected := false
		if r.opts.DataDir != "" {
			selected = os.WriteFile(filepath.Join(r.opts.DataDir, "environment"), []byte("default"), 0o600) == nil
		}
		if !selected {
			if err := r.tf.WorkspaceSelect(ctx, "default"); err != nil {
				return fmt.Errorf("terraform workspace select default: %w", err)
			}
		}
		if err := r.tf.WorkspaceDelete(ctx, name, tfexec.Force(true)); err != nil {
			return fmt.Errorf("terraform workspace delete %s: %w", name, err)
		}
		return nil
	})
}

// Plan writes a plan to planFile and reports whether it changes anything. Without refresh, Terraform plans from the state as it is, reading no
// resource back (one read per release, seconds for dozens): for a caller that has compared what
// runs with the state itself.
func (r *Runner) Plan(ctx context.Context, planFile string, refresh bool, varFiles ...string) (bool, error) {
	opts := []tfexec.PlanOption{tfexec.Out(planFile), tfexec.Refresh(refresh), tfexec.LockTimeout("60s")}
	if r.opts.Reattach != nil {
		opts = append(opts, tfexec.Reattach(r.opts.Reattach))
	}
	for _, f := range varFiles {
		opts = append(opts, tfexec.VarFile(f))
	}
	var changes bool
	err := r.run(ctx, func(ctx context.Context) error {
		var err error
		changes, err = r.tf.Plan(ctx, opts...)
		if err != nil {
			return fmt.Errorf("terraform plan: %w", err)
		}
		return nil
	})
	return changes, err
}

// Change is one resource the plan changes.
type Change struct {
	Address string   // for example module.service["api"].helm_release.this
	Module  string   // module.service["api"]
	Actions []string // create, update, delete, ...
}

// PlanChanges reads what a saved plan changes, no-ops left out.
func (r *Runner) PlanChanges(ctx context.Context, planFile string) ([]Change, error) {
	var plan *tfjson.Plan
	err := r.run(ctx, func(ctx context.Context) error {
		defer r.quiet()()
		var err error
		var opts []tfexec.ShowOption
		if r.opts.Reattach != nil {
			opts = append(opts, tfexec.Reattach(r.opts.Reattach))
		}
		plan, err = r.tf.ShowPlanFile(ctx, planFile, opts...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("terraform show %s: %w", filepath.Base(planFile), err)
	}
	var out []Change
	for _, rc := range plan.ResourceChanges {
		if rc.Change == nil || rc.Change.Actions.NoOp() || rc.Change.Actions.Read() {
			continue
		}
		var actions []string
		for _, a := range rc.Change.Actions {
			actions = append(actions, string(a))
		}
		out = append(out, Change{Address: rc.Address, Module: rc.ModuleAddress, Actions: actions})
	}
	return out, nil
}

// ApplyPlan applies a saved plan (deploy -plan): exactly what it says; Terraform refuses it
// when the workspace's state moved since.
func (r *Runner) ApplyPlan(ctx context.Context, planFile string) error {
	return r.run(ctx, func(ctx context.Context) error {
		opts := []tfexec.ApplyOption{tfexec.DirOrPlan(planFile), tfexec.LockTimeout("60s")}
		if r.opts.Reattach != nil {
			opts = append(opts, tfexec.Reattach(r.opts.Reattach))
		}
		if err := r.tf.Apply(ctx, opts...); err != nil {
			return fmt.Errorf("terraform apply %s: %w", filepath.Base(planFile), err)
		}
		return nil
	})
}

// ApplyVars plans and applies in one terraform run (apply -auto-approve), for a caller that has
// decided what must change itself: a second process, provider start and state read fewer than
// a plan then its apply. Without refresh, Terraform reads no resource back first.
func (r *Runner) ApplyVars(ctx context.Context, refresh bool, varFiles ...string) error {
	opts := []tfexec.ApplyOption{tfexec.Refresh(refresh), tfexec.LockTimeout("60s")}
	if r.opts.Reattach != nil {
		opts = append(opts, tfexec.Reattach(r.opts.Reattach))
	}
	for _, f := range varFiles {
		opts = append(opts, tfexec.VarFile(f))
	}
	return r.run(ctx, func(ctx context.Context) error {
		if err := r.tf.Apply(ctx, opts...); err != nil {
			return fmt.Errorf("terraform apply: %w", err)
		}
		return nil
	})
}

// Destroy destroys everything the current workspace's state holds, planned and applied in one
// run (destroy -auto-approve).
func (r *Runner) Destroy(ctx context.Context, varFiles ...string) error {
	opts := []tfexec.DestroyOption{tfexec.LockTimeout("60s")}
	if r.opts.Reattach != nil {
		opts = append(opts, tfexec.Reattach(r.opts.Reattach))
	}
	for _, f := range varFiles {
		opts = append(opts, tfexec.VarFile(f))
	}
	return r.run(ctx, func(ctx context.Context) error {
		if err := r.tf.Destroy(ctx, opts...); err != nil {
			return fmt.Errorf("terraform destroy: %w", err)
		}
		return nil
	})
}

// Refresh records in the state what really runs (apply -refresh-only), after deploy rolled a
// release back behind Terraform's back.
func (r *Runner) Refresh(ctx context.Context, varFiles ...string) error {
	opts := []tfexec.ApplyOption{tfexec.RefreshOnly(true), tfexec.LockTimeout("60s")}
	if r.opts.Reattach != nil {
		opts = append(opts, tfexec.Reattach(r.opts.Reattach))
	}
	for _, f := range varFiles {
		opts = append(opts, tfexec.VarFile(f))
	}
	return r.run(ctx, func(ctx context.Context) error {
		if err := r.tf.Apply(ctx, opts...); err != nil {
			return fmt.Errorf("terraform apply -refresh-only: %w", err)
		}
		return nil
	})
}

// Import adopts an existing object into the state at address.
func (r *Runner) Import(ctx context.Context, address, id string, varFiles ...string) error {
	opts := []tfexec.ImportOption{tfexec.LockTimeout("60s")}
	if r.opts.Reattach != nil {
		opts = append(opts, tfexec.Reattach(r.opts.Reattach))
	}
	for _, f := range varFiles {
		opts = append(opts, tfexec.VarFile(f))
	}
	return r.run(ctx, func(ctx context.Context) error {
		if err := r.tf.Import(ctx, address, id, opts...); err != nil {
			return fmt.Errorf("terraform import %s %s: %w", address, id, err)
		}
		return nil
	})
}

// PushState writes a state file into the current workspace of the backend, over the empty
// state a new workspace starts with (which has a lineage of its own: hence -force; the caller
// checks that the workspace holds nothing).
func (r *Runner) PushState(ctx context.Context, path string) error {
	return r.run(ctx, func(ctx context.Context) error {
		if err := r.tf.StatePush(ctx, path, tfexec.Force(true), tfexec.Lock(true), tfexec.LockTimeout("60s")); err != nil {
			return fmt.Errorf("terraform state push: %w", err)
		}
		return nil
	})
}

// PullState returns the current workspace's state as JSON ("" when it has none).
func (r *Runner) PullState(ctx context.Context) (string, error) {
	var s string
	err := r.run(ctx, func(ctx context.Context) error {
		defer r.quiet()()
		var err error
		s, err = r.tf.StatePull(ctx)
		return err
	})
	return s, err
}

// Outputs returns the root module's outputs as raw JSON. The caller never prints them.
func (r *Runner) Outputs(ctx context.Context) (map[string]json.RawMessage, error) {
	var metas map[string]tfexec.OutputMeta
	err := r.run(ctx, func(ctx context.Context) error {
		defer r.quiet()()
		var err error
		metas, err = r.tf.Output(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("terraform output: %w", err)
	}
	out := make(map[string]json.RawMessage, len(metas))
	for k, m := range metas {
		out[k] = m.Value
	}
	return out, nil
}

// quiet stops terraform's stdout from reaching the user until the returned func is called:
// `show -json` and `output -json` are for machines.
func (r *Runner) quiet() func() {
	r.tf.SetStdout(io.Discard)
	return func() { r.tf.SetStdout(r.out) }
}

// Resources lists the resources in the current workspace's state.
func (r *Runner) Resources(ctx context.Context) ([]string, error) {
	var state *tfjson.State
	err := r.run(ctx, func(ctx context.Context) error {
		defer r.quiet()()
		var err error
		state, err = r.tf.Show(ctx)
		return err
	})
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

// InitWithoutBackend initialises for validate only: providers, no backend.
func (r *Runner) InitWithoutBackend(ctx context.Context) error {
	if err := r.tf.Init(ctx, tfexec.Backend(false)); err != nil {
		return fmt.Errorf("terraform init: %w%s", err, providerHint(err))
	}
	return nil
}

// InitStamp is a digest of everything `terraform init` depends on for the root module in dir:
// the terraform binary, the .tf files of the root and of the modules beside it (../modules),
// the CLI configuration (the provider mirror) and the backend settings. A data directory
// initialised with the same stamp needs no second init.
func InitStamp(execPath, dir, cliConfig string, b Backend) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "terraform\t%s\n", execPath)
	if st, err := os.Stat(execPath); err == nil {
		fmt.Fprintf(h, "binary\t%d\t%d\n", st.Size(), st.ModTime().UnixNano())
	}
	var files []string
	for _, pattern := range []string{filepath.Join(dir, "*.tf"), filepath.Join(dir, "..", "modules", "*", "*.tf")} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			return "", err
		}
		files = append(files, m...)
	}
	if cliConfig != "" {
		files = append(files, cliConfig)
	}
	if b.File != "" {
		files = append(files, b.File)
	}
	slices.Sort(files)
	for _, f := range files {
		content, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "file\t%s\t%x\n", f, sha256.Sum256(content))
	}
	for _, k := range slices.Sorted(maps.Keys(b.Settings)) {
		fmt.Fprintf(h, "backend\t%s=%s\n", k, b.Settings[k])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

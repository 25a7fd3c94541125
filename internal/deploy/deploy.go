package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/dtap-platform/monorepo/internal/cluster"
	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/lineprefix"
	"github.com/dtap-platform/monorepo/internal/rollout"
	"github.com/dtap-platform/monorepo/internal/tf"
	"github.com/dtap-platform/monorepo/services/api/server"
)

// ManagedByLabel marks the namespaces deploy creates, so destroy removes only those.
const ManagedByLabel = "dtap.dev/managed-by"

// Result is the summary of a deploy.
type Result struct {
	URL       string
	Image     image.Ref
	Revision  string
	Namespace string
	Changed   bool // false when Terraform had nothing to change
	Config    map[string]any
	Steps     []Step
}

// Step is one timed step of a run.
type Step struct {
	Name string
	Took time.Duration
}

// Runner carries what the steps of one run share.
type Runner struct {
	S        Settings
	Out      io.Writer
	steps    []Step
	tfPath   string
	kube     *rest.Config
	clients  kubernetes.Interface
	tfRunner *tf.Runner
}

func (r *Runner) step(name string, fn func() error) error {
	fmt.Fprintf(r.Out, "==> %s\n", name)
	start := time.Now()
	err := fn()
	r.steps = append(r.steps, Step{Name: name, Took: time.Since(start)})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Preflight checks what the run needs from the machine before it changes anything: a Docker
// engine (when building), Terraform, and a reachable cluster (the local one may not exist yet:
// it is created on first use).
func (r *Runner) Preflight(ctx context.Context, needDocker bool) error {
	if needDocker || r.S.Local {
		if err := image.Ping(ctx); err != nil {
			return err
		}
	}
	path, err := tf.Ensure(ctx, filepath.Join(r.S.RepoRoot, ".cache"))
	if err != nil {
		return err
	}
	r.tfPath = path
	if r.S.Local {
		exists, err := cluster.Exists(r.S.Cluster)
		if err != nil || !exists {
			return err // created by the cluster step
		}
		if err := cluster.WriteKubeconfig(r.S.Cluster); err != nil {
			return err
		}
	}
	return r.connect(ctx)
}

// connect builds the Kubernetes clients and checks that the API server answers.
func (r *Runner) connect(ctx context.Context) error {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: r.S.Kubeconfig}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: r.S.KubeContext}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig %s (context %q): %w", r.S.Kubeconfig, r.S.KubeContext, err)
	}
	cfg.Timeout = 15 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if _, err := cs.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("the cluster at %s is unreachable: %w; check KUBECONFIG and KUBE_CONTEXT, or unset both to use the local kind cluster", cfg.Host, err)
	}
	cfg.Timeout = 0
	r.kube, r.clients = cfg, cs
	return nil
}

func (r *Runner) ensureLocalCluster(ctx context.Context) error {
	if !r.S.Local {
		return nil
	}
	return r.step("local cluster", func() error {
		if _, err := cluster.Up(ctx, r.S.Cluster); err != nil {
			return err
		}
		return r.connect(ctx)
	})
}

// Deploy takes the current source to a running, smoke-checked release in the environment.
func Deploy(ctx context.Context, s Settings, out io.Writer) (*Result, error) {
	r := &Runner{S: s, Out: out}
	if err := s.GuardProduction("deploy to"); err != nil {
		return nil, err
	}
	if err := r.step("preflight", func() error { return r.Preflight(ctx, true) }); err != nil {
		return nil, err
	}
	if err := r.ensureLocalCluster(ctx); err != nil {
		return nil, err
	}
	ref := image.Ref{Repository: s.ImageRepository(), Tag: s.ImageTag}
	if s.SkipBuild {
		// Promotion: the same image, already built (and tested), goes to the next environment.
		if _, err := image.DockerOutput(ctx, "image", "inspect", ref.Repository+":"+ref.Tag); err != nil {
			return nil, fmt.Errorf("SKIP_BUILD=true but %s is not a local image: build it first, or unset SKIP_BUILD", ref)
		}
	} else if err := r.step("build image "+ref.String(), func() error {
		return image.Build(ctx, image.BuildOptions{Dir: s.RepoRoot, Service: s.Service, Ref: ref,
			Version: s.ImageTag, Revision: image.Revision(ctx, s.RepoRoot), Output: lineprefix.New(out, "  [docker] ")})
	}); err != nil {
		return nil, err
	}
	if err := r.step("push image to "+s.Registry, func() error {
		digest, err := image.Push(ctx, ref, lineprefix.New(out, "  [docker] "))
		ref.Digest = digest
		return err
	}); err != nil {
		return nil, err
	}
	res := &Result{Image: ref, Namespace: s.Namespace}
	if err := r.step("namespace "+s.Namespace, func() error { return r.ensureNamespace(ctx) }); err != nil {
		return nil, err
	}
	changed, err := r.terraformApply(ctx, ref)
	res.Changed = changed
	if err != nil {
		return nil, err
	}
	outputs, err := r.tfRunner.Outputs(ctx)
	if err != nil {
		return nil, err
	}
	res.URL, res.Revision = outputs["url"], outputs["revision"]
	if err := r.step("rollout", func() error {
		d, err := r.deployment(ctx)
		if err != nil {
			return err
		}
		return rollout.Wait(ctx, r.clients, s.Namespace, d.Name, s.Timeout, out)
	}); err != nil {
		return nil, err
	}
	if err := r.step("smoke check /readyz and /config", func() error {
		cfg, err := r.smoke(ctx)
		res.Config = cfg
		return err
	}); err != nil {
		return nil, err
	}
	res.Steps = r.steps
	return res, nil
}

// terraformApply runs init, workspace, the tfvars files, plan and (when it changes anything)
// apply. While Terraform waits for the release, the rollout's progress is shown, and a pod
// that cannot start is diagnosed before the atomic rollback removes it.
func (r *Runner) terraformApply(ctx context.Context, ref image.Ref) (bool, error) {
	vars, cleanup, err := r.prepareTerraform(ctx, ref)
	if err != nil {
		return false, err
	}
	defer cleanup()
	planFile := filepath.Join(vars.tmp, "deploy.tfplan")
	var changed bool
	if err := r.step("terraform plan", func() error {
		var err error
		changed, err = r.tfRunner.Plan(ctx, planFile, false, vars.files...)
		return err
	}); err != nil {
		return false, err
	}
	if !changed {
		fmt.Fprintln(r.Out, "  no changes: the release is up to date, nothing to apply")
		return false, nil
	}
	err = r.step("terraform apply", func() error {
		watchCtx, stop := context.WithCancel(ctx)
		diagnosis := make(chan string, 1)
		go func() { diagnosis <- r.watch(watchCtx) }()
		err := r.tfRunner.Apply(ctx, planFile)
		stop()
		if d := <-diagnosis; err != nil && d != "" {
			return fmt.Errorf("%w\n\nthe release was rolled back; what the new pods showed before that:\n%s", err, d)
		}
		return err
	})
	return true, err
}

// watch prints rollout progress while Terraform applies, and returns the last diagnosis of
// pods that were failing, if any.
func (r *Runner) watch(ctx context.Context) string {
	var last, diagnosis string
	for {
		select {
		case <-ctx.Done():
			return diagnosis
		case <-time.After(2 * time.Second):
		}
		d, err := r.deployment(ctx)
		if err != nil {
			continue
		}
		progress, done := rollout.Progress(d)
		if progress != last {
			fmt.Fprintf(r.Out, "  %s\n", progress)
			last = progress
		}
		if !done {
			if text := rollout.Diagnose(ctx, r.clients, d); strings.Contains(text, "waiting:") || strings.Contains(text, "not scheduled") || strings.Contains(text, "last exit") {
				diagnosis = text
			}
		}
	}
}

type varFiles struct {
	files []string
	tmp   string
}

// prepareTerraform initialises Terraform, selects the environment's workspace, and writes the
// variables: the non-secret ones to terraform/environments/<env>.tfvars.json (gitignored, so a
// plain `terraform destroy -var-file=...` works too), the secret ones to a private temporary
// file that is removed afterwards.
func (r *Runner) prepareTerraform(ctx context.Context, ref image.Ref) (varFiles, func(), error) {
	var v varFiles
	tmp, err := os.MkdirTemp("", "deploy-"+r.S.Env+"-")
	if err != nil {
		return v, nil, err
	}
	v.tmp = tmp
	cleanup := func() { os.RemoveAll(tmp) }
	err = r.step("terraform init, workspace "+r.S.Env, func() error {
		if err := r.initTerraform(ctx); err != nil {
			return err
		}
		if err := r.tfRunner.Workspace(ctx, r.S.Env); err != nil {
			return err
		}
		path, err := WriteTFVars(r.S, ref)
		if err != nil {
			return err
		}
		v.files = append(v.files, path)
		if len(r.S.Secrets) > 0 {
			secretPath := filepath.Join(tmp, "secrets.tfvars.json")
			if err := writeSecretVars(secretPath, r.S.Secrets); err != nil {
				return err
			}
			v.files = append(v.files, secretPath)
			fmt.Fprintf(r.Out, "  secrets passed as sensitive values: %s\n", strings.Join(r.S.SecretKeys(), ", "))
		}
		return nil
	})
	if err != nil {
		cleanup()
		return v, nil, err
	}
	return v, cleanup, nil
}

func (r *Runner) initTerraform(ctx context.Context) error {
	runner, err := tf.New(filepath.Join(r.S.RepoRoot, "terraform"), r.tfPath, r.Out, "  [terraform] ")
	if err != nil {
		return err
	}
	r.tfRunner = runner
	return runner.Init(ctx, r.S.Backend)
}

// TFVarsPath is where deploy writes the environment's non-secret variables.
func TFVarsPath(repoRoot, env string) string {
	return filepath.Join(repoRoot, "terraform", "environments", env+".tfvars.json")
}

// WriteTFVars writes the non-secret variables of the environment. Secrets never go here.
func WriteTFVars(s Settings, ref image.Ref) (string, error) {
	path := TFVarsPath(s.RepoRoot, s.Env)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, writeTFVarsTo(path, s, ref)
}

func writeTFVarsTo(path string, s Settings, ref image.Ref) error {
	b, err := json.MarshalIndent(tfVars(s, ref), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// tfVars are the root module's non-secret variables.
func tfVars(s Settings, ref image.Ref) map[string]any {
	return map[string]any{
		"environment":      s.Env,
		"release_name":     s.ReleaseName,
		"namespace":        s.Namespace,
		"image_repository": ref.Repository,
		"image_tag":        ref.Tag,
		"image_digest":     ref.Digest,
		"base_url":         s.BaseURL,
		"kubeconfig_path":  s.Kubeconfig,
		"kube_context":     s.KubeContext,
		"values_files":     nonNil(s.ValuesFiles),
		"timeout":          int(s.Timeout.Seconds()),
		"values":           chartValues(s),
	}
}

// chartValues are the non-secret chart values deploy sets: with SECRET_* values given, the
// chart creates the Secret that holds them (their values go through set_sensitive only).
func chartValues(s Settings) map[string]any {
	if len(s.Secrets) == 0 {
		return map[string]any{}
	}
	return map[string]any{"secret": map[string]any{"create": true}}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeSecretVars writes the secrets as the chart's secret.data, for set_sensitive, to a
// private file.
func writeSecretVars(path string, secrets map[string]string) error {
	sensitive := map[string]string{}
	for k, v := range secrets {
		sensitive["secret.data."+k] = v
	}
	b, err := json.Marshal(map[string]any{"sensitive_values": sensitive})
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// ensureNamespace creates the namespace, labelled to enforce Pod Security "restricted" and as
// managed by deploy (so destroy may remove it), unless it exists.
func (r *Runner) ensureNamespace(ctx context.Context) error {
	_, err := r.clients.CoreV1().Namespaces().Get(ctx, r.S.Namespace, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.S.Namespace, Labels: map[string]string{
		ManagedByLabel:                       "deploy",
		"dtap.dev/environment":               r.S.Env,
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}}
	_, err = r.clients.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	return err
}

// deployment finds the release's Deployment by its instance label.
func (r *Runner) deployment(ctx context.Context) (*appsv1.Deployment, error) {
	list, err := r.clients.AppsV1().Deployments(r.S.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/instance=" + r.S.ReleaseName})
	if err != nil {
		return nil, err
	}
	if len(list.Items) != 1 {
		return nil, fmt.Errorf("found %d deployments of release %s in %s, want 1", len(list.Items), r.S.ReleaseName, r.S.Namespace)
	}
	return &list.Items[0], nil
}

// smoke checks /readyz and /config through a port-forward to the release's Service and
// returns /config, which must name the environment.
func (r *Runner) smoke(ctx context.Context) (map[string]any, error) {
	svcs, err := r.clients.CoreV1().Services(r.S.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/instance=" + r.S.ReleaseName})
	if err != nil || len(svcs.Items) == 0 {
		return nil, fmt.Errorf("no Service of release %s in %s: %v", r.S.ReleaseName, r.S.Namespace, err)
	}
	fwd, err := rollout.ForwardService(ctx, r.kube, r.clients, r.S.Namespace, svcs.Items[0].Name, server.PortName)
	if err != nil {
		return nil, err
	}
	defer fwd.Close()
	return Smoke(ctx, fwd.URL, r.S.Env)
}

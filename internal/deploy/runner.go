package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/dtap-platform/monorepo/internal/cluster"
	"github.com/dtap-platform/monorepo/internal/drift"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/lineprefix"
	"github.com/dtap-platform/monorepo/internal/lock"
	"github.com/dtap-platform/monorepo/internal/planfile"
	"github.com/dtap-platform/monorepo/internal/release"
	"github.com/dtap-platform/monorepo/internal/tf"
)

// Labels deploy puts on the namespaces it creates and checks before it changes anything.
const (
	ManagedByLabel   = "dtap.dev/managed-by"
	EnvironmentLabel = "dtap.dev/environment"
	ProjectLabel     = "dtap.dev/project"
	RoleLabel        = "dtap.dev/role" // "state" on the namespace of the state and the locks
	// StateAnnotation on an environment's namespace names the namespace of its state and lock:
	// a run with another STATE_NAMESPACE would take another lock and keep another state.
	StateAnnotation = "dtap.dev/state-namespace"
)

// Step is one timed step of a run.
type Step struct {
	Name string
	Took time.Duration
}

// Runner carries what the steps of one run share.
type Runner struct {
	S       Settings
	Out     io.Writer
	Command string          // what the user typed, for the lock holder and messages
	Force   <-chan struct{} // closed on a second interrupt
	// Saved is the plan deploy -plan applies (SavedName is how the user named it); PlanOut is
	// where plan -out saves one.
	Saved     *planfile.File
	SavedName string
	PlanOut   string

	steps       []Step
	tfPath      string
	kube        *rest.Config
	sources     *sources // what the desired state reads of the checkout, read beside the cluster's
	doors       *doors   // what the front door reads of the cluster, read beside the rest
	clients     kubernetes.Interface
	helm        *release.Releases
	tfr         *tf.Runner // on the environment's data directory, initialised once
	tfMu        sync.Mutex
	serviceTFs  map[string]*tf.Runner // on each service's workspace (serviceTF)
	provider    *tf.Provider          // the helm provider the run's terraform processes share
	providerSet bool                  // a start of provider was tried
	lock        *lock.Lock
	target      string // "context X, server Y", for messages
	server      string // the API server's URL
	clusterUID  string // the UID of kube-system: which cluster this is, whatever its address
	kubeContext string // the context the clients use, given to Terraform by name
	cacheDir    string
	built       []string          // the services whose image this run built
	wrote       map[string]string // service -> the secret version this run wrote
	checked     *checked          // destroy's checks, once made
	signing     *pending          // signing beside the deploy, where nothing waits for it
	drift       *drift.Checker    // made on first use (checker)
	driftMu     sync.Mutex
}

// NewRunner prepares a run of s; out hears its progress.
func NewRunner(s Settings, out io.Writer, command string) *Runner {
	return &Runner{S: s, Out: lineprefix.Locked(out), Command: command, cacheDir: filepath.Join(s.RepoRoot, ".cache"), wrote: map[string]string{},
		serviceTFs: map[string]*tf.Runner{}}
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

// pending is a step that runs beside the others; its output is held until it is waited for.
type pending struct {
	name string
	done chan struct{}
	out  bytes.Buffer
	took time.Duration
	err  error
}

// background starts fn beside the rest of the run.
func (r *Runner) background(name string, fn func(out io.Writer) error) *pending {
	p := &pending{name: name, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		start := time.Now()
		p.err = fn(&p.out)
		p.took = time.Since(start)
	}()
	return p
}

// wait waits for a background step, then prints and records it as a step of its own; nil waits
// for nothing.
func (r *Runner) wait(p *pending) error {
	if p == nil {
		return nil
	}
	<-p.done
	fmt.Fprintf(r.Out, "==> %s\n", p.name)
	_, _ = r.Out.Write(p.out.Bytes())
	r.steps = append(r.steps, Step{Name: p.name, Took: p.took})
	if p.err != nil {
		return fmt.Errorf("%s: %w", p.name, p.err)
	}
	return nil
}

// Preflight checks what the run needs before it changes anything: a Docker engine (when it
// builds, or for the local cluster), Terraform, and the cluster, whose context and server it
// prints. The local cluster may not exist yet (deploy creates it); then clients stay nil.
func (r *Runner) Preflight(ctx context.Context, needDocker bool) error {
	if needDocker {
		if err := image.Ping(ctx); err != nil {
			return err
		}
	}
	path, err := tf.Ensure(ctx, r.cacheDir)
	if err != nil {
		return err
	}
	r.tfPath = path
	if src, ok := tf.ProviderSource(); ok {
		fmt.Fprintf(r.Out, "  terraform %s, provider hashicorp/helm from %s\n", path, src)
	}
	if r.S.Local && r.S.IgnoredContext != "" {
		fmt.Fprintf(r.Out, "  the current context of ~/.kube/config (%q) is not used: the embedded cluster is the default; set KUBE_CONTEXT=%s to target it\n", r.S.IgnoredContext, r.S.IgnoredContext)
	}
	// The kubeconfig this checkout holds for the embedded cluster is checked first, without
	// Docker; kind is asked only when it is missing or stale (the cluster is new, or was made anew).
	if r.S.Local && !cluster.KubeconfigAnswers(ctx, r.S.Cluster) {
		exists, err := cluster.Exists(r.S.Cluster)
		if err != nil {
			if perr := image.Ping(ctx); perr != nil {
				return perr
			}
			return err
		}
		if !exists {
			fmt.Fprintf(r.Out, "  target: the local kind cluster %q, which does not exist yet\n", r.S.Cluster.Name)
			return nil
		}
		if err := cluster.WriteKubeconfig(r.S.Cluster); err != nil {
			return err
		}
	}
	return r.connect(ctx)
}

// connect builds the Kubernetes clients, checks that the API server answers, and says which
// cluster the run targets.
func (r *Runner) connect(ctx context.Context) error {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: r.S.Kubeconfig}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: r.S.KubeContext})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig %s (context %q): %w", r.S.Kubeconfig, r.S.KubeContext, err)
	}
	raw, _ := cc.RawConfig()
	context := r.S.KubeContext
	if context == "" {
		context = raw.CurrentContext
	}
	// Terraform is always given this context by name, so that it reaches the cluster these
	// checks read, whatever its own defaults (KUBE_CTX and the like) would pick.
	r.kubeContext = context
	// client-go's default of 5 requests a second (burst 10) would queue the checks of dozens of
	// services; the API server's own priority and fairness still protects it.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Timeout = 15 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if _, err := cs.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("the cluster at %s is unreachable: %w; check KUBECONFIG and KUBE_CONTEXT, or unset both to use the local kind cluster", cfg.Host, err)
	}
	// kube-system's UID names the cluster: a context can be renamed or repointed, a server
	// address reused, but that UID is the cluster's own. Without the right to read it the
	// identity is the server alone.
	if ks, err := cs.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err == nil {
		r.clusterUID = string(ks.UID)
	}
	r.server = cfg.Host
	cfg.Timeout = 0
	// The typed clients ask for protobuf: a list of fifty Deployments decodes several times
	// faster than as JSON. Helm, the metadata and the drift clients keep cfg's JSON.
	pb := rest.CopyConfig(cfg)
	pb.ContentType = runtime.ContentTypeProtobuf
	pb.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	if cs, err = kubernetes.NewForConfig(pb); err != nil {
		return err
	}
	r.kube, r.clients = cfg, cs
	r.target = fmt.Sprintf("context %q, server %s", context, cfg.Host)
	if r.S.Local {
		r.target = fmt.Sprintf("the local kind cluster %q (%s)", r.S.Cluster.Name, r.target)
	}
	fmt.Fprintf(r.Out, "  target: %s\n", r.target)
	r.helm, err = release.New(r.S.Kubeconfig, r.S.KubeContext, r.S.Namespace)
	return err
}

// ensureLocalCluster creates the local cluster when it is the target and does not exist.
func (r *Runner) ensureLocalCluster(ctx context.Context) error {
	if !r.S.Local || r.clients != nil {
		return nil
	}
	return r.step("local cluster", func() error {
		if _, err := cluster.Up(ctx, r.S.Cluster); err != nil {
			return err
		}
		return r.connect(ctx)
	})
}

// CheckNamespace refuses to touch a namespace that belongs to another environment, and a
// namespace labelled prod without CONFIRM_PROD=yes, whatever environment was typed. It returns
// the namespace, or nil when it does not exist.
func (r *Runner) CheckNamespace(ctx context.Context, action string) (*corev1.Namespace, error) {
	if r.clients == nil {
		return nil, nil
	}
	ns, err := r.clients.CoreV1().Namespaces().Get(ctx, r.S.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read namespace %s: %w", r.S.Namespace, err)
	}
	owner := ns.Labels[EnvironmentLabel]
	var errs []error
	if ns.Labels[RoleLabel] == "state" || (ns.Labels[ManagedByLabel] == "deploy" && owner == "") {
		return nil, fmt.Errorf("refusing to %s %s in namespace %s: it holds the Terraform state and locks of every environment (label %s=state); name the environment's own namespace with NAMESPACE", action, r.S.Env, r.S.Namespace, RoleLabel)
	}
	if p := ns.Labels[ProjectLabel]; p != "" && p != r.S.Project {
		errs = append(errs, fmt.Errorf("refusing to %s %s in namespace %s: it belongs to project %s (label %s=%s), not %s; set PROJECT=%s, or choose another NAMESPACE", action, r.S.Env, r.S.Namespace, p, ProjectLabel, p, r.S.Project, p))
	}
	if owner != "" && owner != r.S.Env {
		errs = append(errs, fmt.Errorf("refusing to %s %s in namespace %s: it belongs to environment %s (label %s=%s); use that environment's namespace, or name this one with NAMESPACE",
			action, r.S.Env, r.S.Namespace, owner, EnvironmentLabel, owner))
	}
	if held := ns.Annotations[StateAnnotation]; held != "" && held != r.S.StateNamespace {
		errs = append(errs, errStateElsewhere(action, r.S.Env, r.S.Namespace, held, r.S.StateNamespace))
	}
	if owner == environments.Production && !r.S.Confirmed && r.S.purpose.changes() {
		errs = append(errs, fmt.Errorf("namespace %s is labelled %s=%s: changing it needs CONFIRM_PROD=yes, whatever environment is named", r.S.Namespace, EnvironmentLabel, owner))
	}
	return ns, errors.Join(errs...)
}

// ensureNamespace creates the environment's namespace, labelled as deploy's and as the
// environment's, with Pod Security "restricted" enforced; a namespace that exists without an
// environment label (made by someone else) is labelled with the environment, and kept theirs.
func (r *Runner) ensureNamespace(ctx context.Context, existing *corev1.Namespace) error {
	if existing == nil {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.S.Namespace, Labels: map[string]string{
			ManagedByLabel:                       "deploy",
			EnvironmentLabel:                     r.S.Env,
			ProjectLabel:                         r.S.Project,
			"pod-security.kubernetes.io/enforce": "restricted",
			"pod-security.kubernetes.io/warn":    "restricted",
		}, Annotations: map[string]string{StateAnnotation: r.S.StateNamespace}}}
		_, err := r.clients.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		// Another run created it meanwhile (one holding another lock, if its STATE_NAMESPACE
		// differs): judge it as if it had been there.
		if existing, err = r.CheckNamespace(ctx, "deploy"); err != nil || existing == nil {
			return err
		}
	}
	if held := existing.Annotations[StateAnnotation]; held != "" && held != r.S.StateNamespace {
		return errStateElsewhere("deploy", r.S.Env, r.S.Namespace, held, r.S.StateNamespace)
	}
	if existing.Labels[EnvironmentLabel] == r.S.Env && existing.Annotations[StateAnnotation] == r.S.StateNamespace {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q},"annotations":{%q:%q}}}`, EnvironmentLabel, r.S.Env, StateAnnotation, r.S.StateNamespace)
	_, err := r.clients.CoreV1().Namespaces().Patch(ctx, r.S.Namespace, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{})
	return err
}

func errStateElsewhere(action, env, ns, held, asked string) error {
	return fmt.Errorf("refusing to %s %s: namespace %s keeps its state and lock in namespace %s, but this run's STATE_NAMESPACE is %s (a second state and a second lock); nothing was changed. Unset STATE_NAMESPACE, or set STATE_NAMESPACE=%s", action, env, ns, held, asked, held)
}

// ensureStateNamespace creates the namespace of Terraform's state, the locks and the front
// door's ports.
func (r *Runner) ensureStateNamespace(ctx context.Context) error {
	ns, err := r.clients.CoreV1().Namespaces().Get(ctx, r.S.StateNamespace, metav1.GetOptions{})
	if err == nil {
		if env := ns.Labels[EnvironmentLabel]; env != "" {
			return fmt.Errorf("STATE_NAMESPACE=%s is environment %s's namespace (label %s=%s): the state of every environment must live apart; choose another", r.S.StateNamespace, env, EnvironmentLabel, env)
		}
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	_, err = r.clients.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: r.S.StateNamespace, Labels: map[string]string{ManagedByLabel: "deploy", ProjectLabel: r.S.Project, RoleLabel: "state",
			"pod-security.kubernetes.io/enforce": "restricted"}}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create the state namespace %s: %w", r.S.StateNamespace, err)
	}
	return nil
}

// UnlockCommand is the command that breaks this environment's stale lock.
func (r *Runner) UnlockCommand() string {
	c := "go run mage.go unlock -env=" + r.S.Env
	if r.S.Env == environments.Production {
		c = "CONFIRM_PROD=yes " + c
	}
	return c
}

// acquireLock takes the environment's deploy lock for the rest of the run.
func (r *Runner) acquireLock(ctx context.Context) error {
	l, err := lock.Acquire(ctx, r.clients, r.S.StateNamespace, r.S.Env, lock.Me(r.S.RepoRoot, r.Command), r.S.LockWait, r.UnlockCommand(), r.Out)
	if err != nil {
		return err
	}
	r.lock = l
	return nil
}

// lockLost reports whether someone broke this run's lock.
func (r *Runner) lockLost() bool {
	if r.lock == nil {
		return false
	}
	select {
	case <-r.lock.Lost():
		return true
	default:
		return false
	}
}

func (r *Runner) releaseLock() {
	if r.lock != nil {
		r.lock.Release()
	}
}

// dataDir is the environment's Terraform data directory, so that runs of two environments in
// one checkout never share .terraform (nor its selected workspace).
func (r *Runner) dataDir(kind string) string {
	return filepath.Join(r.cacheDir, "terraform", kind+"-"+r.S.Env)
}

// initTerraform initialises Terraform against the environment's backend: the target cluster
// (kubernetes backend, state namespace) unless TF_BACKEND_CONFIG names another.
func (r *Runner) initTerraform(ctx context.Context, kind string) error {
	if err := r.stashLocalStates(); err != nil {
		return err
	}
	cliConfig, err := tf.CLIConfig(r.cacheDir)
	if err != nil {
		return err
	}
	dataDir := r.dataDir(kind)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	runner, err := tf.New(tf.Options{Dir: filepath.Join(r.S.RepoRoot, "terraform"), ExecPath: r.tfPath, DataDir: dataDir,
		CLIConfig: cliConfig, Out: r.Out, Prefix: "  [terraform] ", Force: r.Force})
	if err != nil {
		return err
	}
	r.tfr = runner
	b := tf.Backend{File: r.S.Backend}
	if b.File == "" {
		b.Settings = map[string]string{"config_path": r.S.Kubeconfig, "namespace": r.S.StateNamespace, "secret_suffix": r.S.Project}
		if r.kubeContext != "" {
			b.Settings["config_context"] = r.kubeContext
		}
	}
	// init costs seconds and its result depends only on these inputs: skip it when the data
	// directory was initialised with the same ones.
	stamp, err := tf.InitStamp(r.tfPath, filepath.Join(r.S.RepoRoot, "terraform"), cliConfig, b)
	if err != nil {
		return err
	}
	stampFile := filepath.Join(dataDir, "init.stamp")
	if old, err := os.ReadFile(stampFile); err == nil && string(old) == stamp {
		fmt.Fprintln(r.Out, "  terraform init: skipped, nothing it depends on changed since the last one")
		return nil
	}
	_ = os.Remove(stampFile)
	// Init on the default workspace: the one selected last time may be gone from the backend
	// (its state deleted by hand), and init would stop there. readState selects it again.
	if err := os.Remove(filepath.Join(dataDir, "environment")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := runner.Init(ctx, b); err != nil {
		return err
	}
	return os.WriteFile(stampFile, []byte(stamp), 0o600)
}

// ServiceInputs is what Terraform applies for one service (the root module's var.services).
type ServiceInputs struct {
	ImageRepository string   `json:"image_repository"`
	ImageTag        string   `json:"image_tag"`
	ImageDigest     string   `json:"image_digest"`
	Values          []string `json:"values"`
}

// Image is the reference the service runs.
func (i ServiceInputs) Image() image.Ref {
	return image.Ref{Repository: i.ImageRepository, Tag: i.ImageTag, Digest: i.ImageDigest}
}

// Serial is which version of a Terraform state: its lineage and serial.
type Serial struct {
	Lineage string
	Serial  int
}

// State is what the environment's Terraform states (one workspace per service) say runs.
type State struct {
	Exists    bool // a workspace of the environment exists
	Namespace string
	// Workspaces are the services whose workspace exists (it may hold no release any more).
	Workspaces map[string]bool
	// Legacy is set while the environment's one workspace from before (<env>) holds releases:
	// splitLegacy moves them into the services' workspaces.
	Legacy bool
	// Other are the services whose state holds more than their Helm release (a module grown
	// since): only Terraform destroys those.
	Other map[string]bool
	// Services are the inputs each service was last applied with (the services output), for
	// the services whose release the state holds.
	Services map[string]ServiceInputs
	// Serials are each service workspace's state lineage and serial, when read from the
	// cluster's backend (peekState): a saved plan's basis.
	Serials map[string]Serial
	// Managed are the services whose helm_release the state holds.
	Managed  map[string]bool
	Releases map[string]struct {
		Revision int    `json:"revision"`
		Status   string `json:"status"`
	}
}

// openState reads the environment's state as a writer does, under the lock: a legacy state is
// split into one per service first.
func (r *Runner) openState(ctx context.Context, kind string) (State, error) {
	var st State
	err := r.step("state of "+r.S.Env, func() error {
		var err error
		st, err = r.currentState(ctx)
		return err
	})
	if err != nil {
		return st, err
	}
	return r.splitLegacy(ctx, kind, st)
}

// stashLocalStates moves the states a checkout kept locally before state lived in the cluster
// (terraform/terraform.tfstate.d/<env>/) out of Terraform's sight, into .cache/terraform/
// local-states/<env>.tfstate: Terraform would otherwise stop every init to ask whether to copy
// them into the backend, and could copy a stale one over a teammate's. Each environment's is
// then migrated by migrateLocalState on its next deploy.
func (r *Runner) stashLocalStates() error {
	dir := filepath.Join(r.S.RepoRoot, "terraform", "terraform.tfstate.d")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	stash := filepath.Join(r.cacheDir, "terraform", "local-states")
	if err := os.MkdirAll(stash, 0o700); err != nil {
		return err
	}
	for _, e := range entries {
		src := filepath.Join(dir, e.Name(), "terraform.tfstate")
		if _, err := os.Stat(src); err != nil {
			continue
		}
		dst := filepath.Join(stash, e.Name()+".tfstate")
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("move the local state of %s out of Terraform's way: %w", e.Name(), err)
		}
		fmt.Fprintf(r.Out, "  found local state of %s from before state lived in the cluster: moved it to %s until it is migrated\n", e.Name(), dst)
	}
	return os.RemoveAll(dir)
}

// migrateLocalState moves the environment's stashed local state into the backend, once: when
// the backend holds nothing for the environment yet. The local file is removed after the push
// reads back; when the backend already has state (another checkout deployed), it is left.
func (r *Runner) migrateLocalState(ctx context.Context) error {
	local := filepath.Join(r.cacheDir, "terraform", "local-states", r.S.Env+".tfstate")
	b, err := os.ReadFile(local)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var localState struct {
		Serial    int    `json:"serial"`
		Lineage   string `json:"lineage"`
		Resources []any  `json:"resources"`
	}
	if err := json.Unmarshal(b, &localState); err != nil || len(localState.Resources) == 0 {
		return os.Remove(local) // empty or unreadable: nothing worth moving
	}
	if _, err := r.tfr.UseWorkspace(ctx, r.S.Env, true); err != nil {
		return err
	}
	remote, err := r.tfr.PullState(ctx)
	if err != nil {
		return err
	}
	var remoteState struct {
		Resources []any `json:"resources"`
	}
	_ = json.Unmarshal([]byte(remote), &remoteState)
	if len(remoteState.Resources) > 0 {
		fmt.Fprintf(r.Out, "  note: %s holds this checkout's local state from before state lived in the cluster, but the cluster already has state for %s: the local copy was not migrated; remove it once you no longer need it (it may hold old secret values)\n", local, r.S.Env)
		return nil
	}
	if err := r.tfr.PushState(ctx, local); err != nil {
		return err
	}
	back, err := r.tfr.PullState(ctx)
	if err != nil || !strings.Contains(back, localState.Lineage) {
		return fmt.Errorf("the local state of %s was pushed to the cluster but does not read back (%v): %s was kept", r.S.Env, err, local)
	}
	if err := os.Remove(local); err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "  migrated the local state of %s (serial %d, %d resources) into the cluster's backend (namespace %s), once; removed the local copy\n",
		r.S.Env, localState.Serial, len(localState.Resources), r.S.StateNamespace)
	return nil
}

// writeVarsIn writes Terraform's variables of a workspace into its data directory dir. They
// hold no secret value: secrets reach the pods through a Secret deploy writes itself.
func (r *Runner) writeVarsIn(dir string, svcs map[string]ServiceInputs) (string, error) {
	vars := map[string]any{
		"environment":     r.S.Env,
		"namespace":       r.S.Namespace,
		"kubeconfig_path": r.S.Kubeconfig,
		"kube_context":    r.kubeContext,
		"services":        svcs,
	}
	b, err := json.MarshalIndent(vars, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "services.tfvars.json")
	return path, os.WriteFile(path, append(b, '\n'), 0o600)
}

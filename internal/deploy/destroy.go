package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"

	"github.com/dtap-platform/monorepo/internal/lineprefix"
	"github.com/dtap-platform/monorepo/internal/lock"
	"github.com/dtap-platform/monorepo/internal/release"
	"github.com/dtap-platform/monorepo/internal/secrets"
)

// Destroy removes the environment: every release in its state (and any release of this
// project's that the state lost), every secret version, the front door's ports, the namespace
// when deploy created it, and the environment's Terraform state. It deletes nothing it did not
// create, and refuses a namespace that belongs to another environment.
func Destroy(ctx context.Context, r *Runner) error {
	s := r.S
	defer r.stopProvider()
	ns, err := CheckDestroy(ctx, r)
	if err != nil {
		return err
	}
	if r.clients == nil {
		fmt.Fprintf(r.Out, "nothing is deployed in %s: the local cluster %q does not exist\n", s.Env, s.Cluster.Name)
		return r.forget()
	}
	if err := r.step("lock "+s.Env, func() error {
		if err := r.ensureStateNamespace(ctx); err != nil {
			return err
		}
		return r.acquireLock(ctx)
	}); err != nil {
		return err
	}
	defer r.releaseLock()

	st, err := r.openState(ctx, "deploy")
	if err != nil {
		return err
	}
	if st.Namespace != "" && st.Namespace != s.Namespace {
		return fmt.Errorf("environment %s runs in namespace %s (its state says so), not %s: set NAMESPACE=%s to destroy it", s.Env, st.Namespace, s.Namespace, st.Namespace)
	}
	if names := slices.Sorted(maps.Keys(st.Workspaces)); len(names) > 0 {
		if err := r.step("terraform destroy ("+list(names)+")", func() error {
			return forEach(names, terraformAtOnce, func(name string) error { return r.destroyService(ctx, st, name) })
		}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(r.Out, "  the Terraform state of %s holds no release\n", s.Env)
	}
	if ns != nil {
		if err := r.step("what the state did not hold", func() error { return r.sweep(ctx) }); err != nil {
			return err
		}
	}
	if ns != nil {
		// Only a namespace deploy created for this environment of this project is deleted.
		ours := ns.Labels[ManagedByLabel] == "deploy" && ns.Labels[EnvironmentLabel] == s.Env && ns.Labels[ProjectLabel] == s.Project
		if err := r.step("namespace "+s.Namespace, func() error { return r.removeNamespace(ctx, ours) }); err != nil {
			return err
		}
	}
	return r.forget()
}

// destroyService removes one service's release, then its workspace. A workspace that holds
// nothing but the service's Helm release (what the module makes) has it uninstalled with the
// Helm SDK in this process, as Terraform's provider would: a terraform destroy starts Terraform
// and its provider for each service, a second or more of CPU each, minutes for dozens. Terraform
// still deletes the workspace; a state that holds more is destroyed by Terraform.
func (r *Runner) destroyService(ctx context.Context, st State, name string) error {
	t, err := r.serviceTF(ctx, "deploy", name, false)
	if err != nil {
		return err
	}
	if st.Managed[name] && st.Other[name] {
		vars, err := r.writeServiceVars("deploy", name, nil)
		if err != nil {
			return err
		}
		if err := t.Destroy(ctx, vars); err != nil {
			return err
		}
	} else if err := r.helm.Uninstall(name); err != nil {
		return err
	}
	return t.DeleteWorkspace(ctx, r.workspace(name))
}

// CheckDestroy runs every check of a destroy that needs no lock, changing nothing: the cluster
// answers and is the one this checkout recorded deploying the environment to, and the namespace
// is the environment's. A bare destroy runs it for every environment before destroying any.
// It returns the namespace (nil when absent); run twice, it checks once.
func CheckDestroy(ctx context.Context, r *Runner) (*corev1.Namespace, error) {
	if r.checked != nil {
		return r.checked.ns, r.checked.err
	}
	ns, err := r.checkDestroy(ctx)
	r.checked = &checked{ns, err}
	return ns, err
}

type checked struct {
	ns  *corev1.Namespace
	err error
}

func (r *Runner) checkDestroy(ctx context.Context) (*corev1.Namespace, error) {
	if err := r.step("preflight", func() error { return r.Preflight(ctx, false) }); err != nil {
		return nil, err
	}
	if r.clients == nil {
		return nil, nil
	}
	if rec, err := r.recorded(); err != nil {
		return nil, err
	} else if rec != nil {
		if err := rec.SameCluster(r.server, r.clusterUID); err != nil {
			return nil, err
		}
	}
	return r.CheckNamespace(ctx, "destroy")
}

// sweep uninstalls the releases of this project's environment that the state did not hold,
// and removes every secret version deploy wrote in the namespace.
func (r *Runner) sweep(ctx context.Context) error {
	rels, err := r.helm.List()
	if err != nil {
		return err
	}
	for _, rel := range rels {
		if err := release.Owned(rel, rel.Name, r.S.Env); err != nil {
			fmt.Fprintf(r.Out, "  kept release %s: %v\n", rel.Name, err)
			continue
		}
		if err := r.helm.Uninstall(rel.Name); err != nil {
			return err
		}
		fmt.Fprintf(r.Out, "  uninstalled release %s, which the state did not hold\n", rel.Name)
	}
	n, err := secrets.Store{Clients: r.clients, Namespace: r.S.Namespace, Env: r.S.Env}.DeleteAll(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "  removed %d secret versions\n", n)
	return nil
}

// removeNamespace deletes the namespace when deploy created it and nothing else lives there
// (deleting a namespace deletes everything in it: a teammate's ConfigMap or volume claim too),
// and waits until it is gone. A namespace that is kept no longer binds the environment's state.
func (r *Runner) removeNamespace(ctx context.Context, ours bool) error {
	if !ours {
		fmt.Fprintf(r.Out, "  namespace %s was not created by deploy for %s of project %s: kept\n", r.S.Namespace, r.S.Env, r.S.Project)
		return r.unbindNamespace(ctx)
	}
	others, err := r.othersIn(ctx)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		shown := others
		if len(shown) > 10 {
			shown = append(shown[:10:10], fmt.Sprintf("and %d more", len(others)-10))
		}
		fmt.Fprintf(r.Out, "  namespace %s kept: deploy did not make what else lives there, and deleting the namespace would delete it: %s\n", r.S.Namespace, strings.Join(shown, ", "))
		fmt.Fprintf(r.Out, "  (everything deploy made in it is gone; once those are moved or no longer needed: kubectl delete namespace %s)\n", r.S.Namespace)
		return r.unbindNamespace(ctx)
	}
	if err := r.clients.CoreV1().Namespaces().Delete(ctx, r.S.Namespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := r.clients.CoreV1().Namespaces().Get(ctx, r.S.Namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			fmt.Fprintf(r.Out, "  namespace %s deleted\n", r.S.Namespace)
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("namespace %s still terminating after 2m", r.S.Namespace)
}

// Unlock breaks the environment's stale deploy lock and Terraform's state lock; a live lock is
// refused.
func Unlock(ctx context.Context, r *Runner) error {
	if err := r.Preflight(ctx, false); err != nil {
		return err
	}
	if r.clients == nil {
		return fmt.Errorf("the local cluster %q does not exist: there is no lock to break", r.S.Cluster.Name)
	}
	if _, err := r.CheckNamespace(ctx, "unlock"); err != nil {
		return err
	}
	stateLeases, err := r.stateLeases(ctx)
	if err != nil {
		return err
	}
	info, err := lock.Inspect(ctx, r.clients, r.S.StateNamespace, r.S.Env, stateLeases)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "  %s\n", info.Describe(r.S.Env))
	if info.Deploy == nil && info.State == "" {
		fmt.Fprintf(r.Out, "nothing to unlock in %s\n", r.S.Env)
		return nil
	}
	if err := lock.Break(ctx, r.clients, r.S.StateNamespace, r.S.Env, stateLeases, r.Out); err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "unlocked %s: the next deploy recovers any release the interrupted run left pending\n", r.S.Env)
	return nil
}

// Deployed is what a checkout remembers of an environment it deployed, for a bare `mage destroy`.
type Deployed struct {
	Env        string    `json:"env"`
	Namespace  string    `json:"namespace"`
	Kubeconfig string    `json:"kubeconfig"`
	Context    string    `json:"context"`
	Target     string    `json:"target"`
	Local      bool      `json:"local"` // the embedded kind cluster
	Server     string    `json:"server,omitempty"`
	ClusterUID string    `json:"clusterUID,omitempty"` // kube-system's UID
	At         time.Time `json:"at"`
}

// SameCluster refuses a cluster other than the recorded one: the kubeconfig and context names
// may be the same while they point elsewhere (a switched or repointed context).
func (d Deployed) SameCluster(server, uid string) error {
	same := d.Server == "" || d.Server == server // a record older than the identity has none
	if d.ClusterUID != "" && uid != "" {
		same = d.ClusterUID == uid // the cluster's own UID decides: its address may change
	}
	if same {
		return nil
	}
	return fmt.Errorf("refusing to destroy %s: this checkout deployed it to the cluster at %s (kube-system %s), but this run reaches the cluster at %s (kube-system %s); nothing was changed. Point KUBECONFIG and KUBE_CONTEXT at the recorded cluster, or, if that cluster is gone, remove %s",
		d.Env, d.Server, orNone(d.ClusterUID), server, orNone(uid), markerPath(".", d.Env))
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// recorded is what this checkout recorded of deploying the environment, if anything.
func (r *Runner) recorded() (*Deployed, error) {
	return readRecord(r.S.RepoRoot, r.S.Env)
}

// readRecord reads what a checkout recorded of deploying env, nil when nothing.
func readRecord(repoRoot, env string) (*Deployed, error) {
	b, err := os.ReadFile(markerPath(repoRoot, env))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d Deployed
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", markerPath(repoRoot, env), err)
	}
	return &d, nil
}

// Matches refuses settings that target another place than the one recorded: a bare destroy
// run with another KUBECONFIG, NAMESPACE or TARGET must not remove what it never deployed.
func (d Deployed) Matches(s Settings) error {
	var diffs []string
	if s.Local != d.Local {
		diffs = append(diffs, fmt.Sprintf("target %s, not the recorded %s", where(s.Local), where(d.Local)))
	}
	if s.Namespace != d.Namespace {
		diffs = append(diffs, fmt.Sprintf("namespace %s, not the recorded %s", s.Namespace, d.Namespace))
	}
	if !d.Local && !s.Local {
		if s.Kubeconfig != d.Kubeconfig {
			diffs = append(diffs, fmt.Sprintf("kubeconfig %s, not the recorded %s", s.Kubeconfig, d.Kubeconfig))
		}
		if s.KubeContext != d.Context {
			diffs = append(diffs, fmt.Sprintf("context %q, not the recorded %q", s.KubeContext, d.Context))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("refusing a bare destroy of %s: this run would target %s; it destroys only where this checkout deployed (%s). Unset the variables that point elsewhere, or name the environment: go run mage.go destroy -env=%s",
		d.Env, strings.Join(diffs, "; "), markerPath(".", d.Env), d.Env)
}

func where(local bool) string {
	if local {
		return "the local kind cluster"
	}
	return "a kubeconfig cluster"
}

func markerPath(repoRoot, env string) string {
	return filepath.Join(repoRoot, ".cache", "deployed", env+".json")
}

// remember records that this checkout deployed the environment.
func (r *Runner) remember() error {
	b, err := json.MarshalIndent(Deployed{Env: r.S.Env, Namespace: r.S.Namespace, Kubeconfig: r.S.Kubeconfig,
		Context: r.S.KubeContext, Target: r.target, Local: r.S.Local, Server: r.server, ClusterUID: r.clusterUID,
		At: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	p := markerPath(r.S.RepoRoot, r.S.Env)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o644)
}

func (r *Runner) forget() error {
	err := os.Remove(markerPath(r.S.RepoRoot, r.S.Env))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// DeployedHere lists the environments this checkout deployed and has not destroyed, in DTAP order.
func DeployedHere(repoRoot string, order []string) ([]Deployed, error) {
	var out []Deployed
	for _, env := range order {
		d, err := readRecord(repoRoot, env)
		if err != nil {
			return nil, err
		}
		if d != nil {
			out = append(out, *d)
		}
	}
	return out, nil
}

// prefixed writes each line of one service's progress under its name.
func prefixed(out io.Writer, service string) io.Writer {
	return lineprefix.New(out, "  ["+service+"]")
}

// othersIn lists the objects in the environment's namespace that deploy did not make, as
// kind/name, once its releases and secrets are gone. Objects with an owner go with their owner,
// and Kubernetes' own (events, kube-root-ca.crt, the default service account) are not counted.
func (r *Runner) othersIn(ctx context.Context) ([]string, error) {
	lists, err := r.clients.Discovery().ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("list the kinds of objects a namespace can hold: %w", err)
	}
	meta, err := metadata.NewForConfig(r.kube)
	if err != nil {
		return nil, err
	}
	var others []string
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, res := range list.APIResources {
			if !slices.Contains(res.Verbs, "list") || generated[res.Name] {
				continue
			}
			objs, err := meta.Resource(gv.WithResource(res.Name)).Namespace(r.S.Namespace).List(ctx, metav1.ListOptions{})
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("list %s in %s: %w", res.Name, r.S.Namespace, err)
			}
			for _, o := range objs.Items {
				if len(o.OwnerReferences) > 0 || o.DeletionTimestamp != nil || kubernetesOwn(res.Kind, o.Name) {
					continue
				}
				others = append(others, strings.ToLower(res.Kind)+"/"+o.Name)
			}
		}
	}
	slices.Sort(others)
	return others, nil
}

// generated are the resources Kubernetes makes and removes on its own.
var generated = map[string]bool{"events": true, "endpoints": true, "endpointslices": true}

// kubernetesOwn are the objects Kubernetes puts into every namespace.
func kubernetesOwn(kind, name string) bool {
	return (kind == "ConfigMap" && name == "kube-root-ca.crt") || (kind == "ServiceAccount" && name == "default")
}

// unbindNamespace removes the environment's claim on a namespace that destroy keeps.
func (r *Runner) unbindNamespace(ctx context.Context) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, StateAnnotation)
	_, err := r.clients.CoreV1().Namespaces().Patch(ctx, r.S.Namespace, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

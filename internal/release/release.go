// Package release reads and repairs the Helm releases of an environment with the Helm SDK:
// what each release runs, its history, a release left pending by a killed run, a rollback
// to a known revision, and whether a release is this project's before it is adopted.
package release

import (
	"context"
	"strconv"

	"errors"
	"fmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"slices"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// ChartNames are the names this project's chart has had: "service" (one chart for every
// service), and "api" before the monorepo layout.
var ChartNames = []string{"service", "api"}

// Releases is the Helm SDK in one namespace of one cluster.
type Releases struct {
	cfg       *action.Configuration
	Namespace string
}

// New connects to the namespace of the cluster in kubeconfig (context: "" for its current).
func New(kubeconfig, kubeContext, namespace string) (*Releases, error) {
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &kubeconfig, &namespace
	if kubeContext != "" {
		flags.Context = &kubeContext
	}
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, namespace, "secret", func(string, ...any) {}); err != nil {
		return nil, fmt.Errorf("helm in namespace %s: %w", namespace, err)
	}
	return &Releases{cfg: cfg, Namespace: namespace}, nil
}

// Last is the latest revision of a release, whatever its status; nil when there is none.
func (r *Releases) Last(name string) (*release.Release, error) {
	rel, err := r.cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("release %s/%s: %w", r.Namespace, name, err)
	}
	return rel, nil
}

// History is every revision of a release, oldest first.
func (r *Releases) History(name string) ([]*release.Release, error) {
	hist, err := r.cfg.Releases.History(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history of %s/%s: %w", r.Namespace, name, err)
	}
	slices.SortFunc(hist, func(a, b *release.Release) int { return a.Version - b.Version })
	return hist, nil
}

// List is the latest revision of every release in the namespace, by name.
func (r *Releases) List() ([]*release.Release, error) {
	l := action.NewList(r.cfg)
	l.All = true
	l.StateMask = action.ListAll
	rels, err := l.Run()
	if err != nil {
		return nil, fmt.Errorf("helm list in %s: %w", r.Namespace, err)
	}
	slices.SortFunc(rels, func(a, b *release.Release) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return rels, nil
}

// Current is the newest revision of every release in the namespace that is not superseded or
// uninstalled, by name. It asks with one label-selected list per status that a newest revision
// can have, so its cost follows the number of releases, not the length of their histories
// (action.List decodes every revision of every release).
func (r *Releases) Current() (map[string]*release.Release, error) {
	out := map[string]*release.Release{}
	for _, st := range []release.Status{release.StatusDeployed, release.StatusFailed, release.StatusPendingInstall,
		release.StatusPendingUpgrade, release.StatusPendingRollback, release.StatusUninstalling} {
		rels, err := r.cfg.Releases.Driver.Query(map[string]string{"owner": "helm", "status": string(st)})
		if errors.Is(err, driver.ErrReleaseNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list the %s releases in %s: %w", st, r.Namespace, err)
		}
		for _, rel := range rels {
			if cur, ok := out[rel.Name]; !ok || rel.Version > cur.Version {
				out[rel.Name] = rel
			}
		}
	}
	return out, nil
}

// Meta is what the labels of a release's newest revision say: its number and status.
type Meta struct {
	Version int
	Status  release.Status
}

// Newest reads, for every release in the namespace, its newest revision's number and status
// from the labels of Helm's storage Secrets (name, owner, status, version): one list of
// metadata only, nothing decoded, whatever the number of releases and revisions. A release
// whose newest revision is uninstalled is left out.
func Newest(ctx context.Context, cfg *rest.Config, namespace string) (map[string]Meta, error) {
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	list, err := mc.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(namespace).
		List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		return nil, fmt.Errorf("list the Helm releases in %s: %w", namespace, err)
	}
	out := map[string]Meta{}
	for _, item := range list.Items {
		name := item.Labels["name"]
		v, err := strconv.Atoi(item.Labels["version"])
		if name == "" || err != nil {
			continue
		}
		if cur, ok := out[name]; !ok || v > cur.Version {
			out[name] = Meta{Version: v, Status: release.Status(item.Labels["status"])}
		}
	}
	for name, m := range out {
		if m.Status == release.StatusUninstalled {
			delete(out, name)
		}
	}
	return out, nil
}

// Rollback puts the release back at revision (0: the last deployed one before the latest)
// without waiting for its pods, and returns the revision it went back to.
func (r *Releases) Rollback(name string, revision int) (int, error) {
	if revision == 0 {
		prev, err := r.lastDeployedBefore(name)
		if err != nil {
			return 0, err
		}
		revision = prev
	}
	rb := action.NewRollback(r.cfg)
	rb.Version = revision
	rb.MaxHistory = 10
	rb.Timeout = 2 * time.Minute
	if err := rb.Run(name); err != nil {
		return 0, fmt.Errorf("roll %s back to revision %d: %w", name, revision, err)
	}
	return revision, nil
}

// lastDeployedBefore is the newest revision, older than the latest, that was deployed (or
// superseded after being deployed), to roll back to.
func (r *Releases) lastDeployedBefore(name string) (int, error) {
	hist, err := r.History(name)
	if err != nil {
		return 0, err
	}
	if len(hist) < 2 {
		return 0, fmt.Errorf("release %s has no earlier revision to roll back to", name)
	}
	for i := len(hist) - 2; i >= 0; i-- {
		switch hist[i].Info.Status {
		case release.StatusDeployed, release.StatusSuperseded:
			return hist[i].Version, nil
		}
	}
	return 0, fmt.Errorf("release %s has no earlier deployed revision to roll back to", name)
}

// Uninstall removes a release and what it created.
func (r *Releases) Uninstall(name string) error {
	u := action.NewUninstall(r.cfg)
	u.Timeout = 2 * time.Minute
	if _, err := u.Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstall %s: %w", name, err)
	}
	return nil
}

// Recover repairs a release that a killed run left pending (helm/helm#11863): a pending
// upgrade or rollback is rolled back to the last deployed revision, a pending first install
// is removed. It returns what it did, or "" when the release was not pending.
func (r *Releases) Recover(name string) (string, error) {
	last, err := r.Last(name)
	if err != nil || last == nil || !last.Info.Status.IsPending() {
		return "", err
	}
	status := last.Info.Status
	if status == release.StatusPendingInstall {
		if err := r.Uninstall(name); err != nil {
			return "", err
		}
		return fmt.Sprintf("release %s was left pending-install at revision %d by an interrupted run: removed it, so it installs anew", name, last.Version), nil
	}
	to, err := r.lastDeployedBefore(name)
	if err != nil {
		return "", fmt.Errorf("release %s is %s at revision %d and cannot be recovered: %w", name, status, last.Version, err)
	}
	// Helm refuses to roll back over a pending record; mark it failed first, as it did fail.
	last.SetStatus(release.StatusFailed, "interrupted while "+string(status)+"; recovered by mage deploy")
	if err := r.cfg.Releases.Update(last); err != nil {
		return "", fmt.Errorf("mark the pending revision %d of %s failed: %w", last.Version, name, err)
	}
	if _, err := r.Rollback(name, to); err != nil {
		return "", err
	}
	return fmt.Sprintf("release %s was left %s at revision %d by an interrupted run: rolled it back to revision %d", name, status, last.Version, to), nil
}

// SecretName is the Secret a revision mounts (its secret.existingSecret value), or "".
func SecretName(rel *release.Release) string {
	if rel == nil {
		return ""
	}
	if s, ok := rel.Config["secret"].(map[string]any); ok {
		name, _ := s["existingSecret"].(string)
		return name
	}
	return ""
}

// Owned explains why a release is not this project's release of service in env, or returns
// nil when it is: the release of that name, made from this project's chart, with the
// environment in its values.
func Owned(rel *release.Release, service, env string) error {
	if rel.Name != service {
		return fmt.Errorf("release %s is not service %s's", rel.Name, service)
	}
	chart := ""
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		chart = rel.Chart.Metadata.Name
	}
	if !slices.Contains(ChartNames, chart) {
		return fmt.Errorf("release %s/%s is made from chart %q, not this project's (%v): it is someone else's; rename the service or remove that release", rel.Namespace, rel.Name, chart, ChartNames)
	}
	if got, _ := rel.Config["environment"].(string); got != env {
		return fmt.Errorf("release %s/%s belongs to environment %q, not %s", rel.Namespace, rel.Name, got, env)
	}
	return nil
}

// Describe records what made the latest revision of a release, and who (its description,
// which `helm history` and `mage history` show).
func (r *Releases) Describe(name, text string) error {
	last, err := r.Last(name)
	if err != nil || last == nil {
		return err
	}
	last.Info.Description = text
	return r.cfg.Releases.Update(last)
}

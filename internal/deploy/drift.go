package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	helmrelease "helm.sh/helm/v3/pkg/release"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dtap-platform/monorepo/internal/drift"
)

// Drift is what drifted in each service: the objects of its deployed release that are missing
// or differ from the release's manifest.
type Drift map[string][]drift.Object

// Lines says each drifted object of a service, one a line.
func (d Drift) Lines(service string) []string {
	var out []string
	for _, o := range d[service] {
		out = append(out, o.String())
	}
	return out
}

// checker is the drift checker of the run's namespace, made on first use.
func (r *Runner) checker() (*drift.Checker, error) {
	r.driftMu.Lock()
	defer r.driftMu.Unlock()
	if r.drift == nil {
		c, err := drift.New(r.kube, r.S.Namespace)
		if err != nil {
			return nil, err
		}
		r.drift = c
	}
	return r.drift, nil
}

// CheckDrift compares the deployed release of each named service with what runs, several
// services at once: the full comparison (a dry-run apply per object). A service with no
// deployed release is left out.
func (r *Runner) CheckDrift(ctx context.Context, names []string) (Drift, error) {
	c, err := r.checker()
	if err != nil {
		return nil, err
	}
	out := Drift{}
	var mu sync.Mutex
	err = forEach(names, 8, func(name string) error {
		rel, err := r.helm.Last(name)
		if err != nil || rel == nil || rel.Info.Status != helmrelease.StatusDeployed {
			return err
		}
		objs, err := c.Check(ctx, rel.Manifest)
		if err != nil {
			return err
		}
		if len(objs) > 0 {
			mu.Lock()
			out[name] = objs
			mu.Unlock()
		}
		return nil
	})
	return out, err
}

// ourManagers are the field managers whose writes are the release's own: Terraform's Helm
// provider, Helm, deploy's repairs, and the cluster's controllers (whose fields are not drift).
func ourManager(m string) bool {
	return strings.HasPrefix(m, "terraform-provider-helm") || m == "helm" || m == drift.RepairManager ||
		m == "kube-controller-manager" || m == "kube-scheduler"
}

// driftHints are the services, of names, that may have drifted, by a cheap look at what deploy
// has read anyway (observe lists the Services too): a Deployment or Service that a manager other
// than the release's own has written (kubectl set env, edit, patch), a Deployment whose
// replicas are not its values' replicaCount (kubectl scale, which leaves no manager behind),
// or a missing Service. Only these get the full comparison on deploy, so a no-change deploy
// stays a few list calls.
func driftHints(live Live, d *Desired, names []string) []string {
	svcs := live.ServiceFields
	foreign := func(entries []metav1.ManagedFieldsEntry) bool {
		return slices.ContainsFunc(entries, func(e metav1.ManagedFieldsEntry) bool {
			return e.Subresource != "status" && !ourManager(e.Manager)
		})
	}
	var out []string
	for _, name := range names {
		rel, ok := live.Releases[name]
		if !ok || rel.Status != helmrelease.StatusDeployed {
			continue
		}
		dep, hasDep := live.Deployments[name]
		svcFields, hasSvc := svcs[name]
		scaled := false
		if w := d.want(name); w != nil && dig(w.Merged, "autoscaling", "enabled") != true && dep.Spec.Replicas != nil {
			scaled = fmt.Sprint(*dep.Spec.Replicas) != fmt.Sprint(dig(w.Merged, "replicaCount"))
		}
		if !hasDep || !hasSvc || scaled || foreign(dep.ManagedFields) || foreign(svcFields) {
			out = append(out, name)
		}
	}
	return out
}

// want is a service's desired state; nil without one (status reads no desired state, so its
// cheap look cannot see a replica count changed by kubectl scale alone).
func (d *Desired) want(name string) *Want {
	if d == nil {
		return nil
	}
	return d.Want[name]
}

// repairDrift checks the services deploy does not apply that show a hint of drift, and repairs
// what drifted (server-side apply of the release's manifest objects as drift.RepairManager: the
// release record and Terraform's state stay true, as the objects match the manifest again), or
// with DRIFT=warn only reports it. It returns what it found and whether it repaired it.
func (r *Runner) repairDrift(ctx context.Context, live Live, d *Desired, names []string) (Drift, bool, error) {
	hints := driftHints(live, d, names)
	if len(hints) == 0 {
		return nil, false, nil
	}
	var found Drift
	if err := r.step("drift check "+list(hints), func() error {
		var err error
		found, err = r.CheckDrift(ctx, hints)
		return err
	}); err != nil {
		return nil, false, err
	}
	if len(found) == 0 {
		return nil, false, nil
	}
	for _, name := range slices.Sorted(maps.Keys(found)) {
		for _, line := range found.Lines(name) {
			fmt.Fprintf(r.Out, "  %-10s drift: %s\n", name, line)
		}
	}
	if r.S.DriftWarn {
		fmt.Fprintln(r.Out, "  DRIFT=warn: the drift is reported, not repaired")
		return found, false, nil
	}
	c, err := r.checker()
	if err != nil {
		return nil, false, err
	}
	err = r.step("repair drift of "+list(slices.Sorted(maps.Keys(found))), func() error {
		return forEach(slices.Sorted(maps.Keys(found)), 8, func(name string) error {
			return c.Repair(ctx, found[name])
		})
	})
	return found, err == nil, err
}

// driftNotes are the summary's notes on drift: repaired, or reported only.
func driftNotes(found Drift, repaired bool) []string {
	verb := "drift repaired"
	if !repaired {
		verb = "drift (DRIFT=warn: not repaired)"
	}
	var out []string
	for _, name := range slices.Sorted(maps.Keys(found)) {
		for _, o := range found[name] {
			if o.Missing {
				out = append(out, fmt.Sprintf("%s: %s %s/%s missing%s", verb, name, o.Kind, o.Name, map[bool]string{true: " -> recreated"}[repaired]))
				continue
			}
			for _, f := range o.Fields {
				out = append(out, fmt.Sprintf("%s: %s %s/%s %s %s -> %s%s", verb, name, o.Kind, o.Name, fieldName(f.Path), f.Live, f.Want, by(f.Manager)))
			}
		}
	}
	return out
}

// fieldName is a field path without the spec.template.spec. of a pod template, as people say it.
func fieldName(path string) string {
	path = strings.TrimPrefix(path, "spec.template.spec.")
	return strings.TrimPrefix(path, "spec.")
}

func by(manager string) string {
	if manager == "" {
		return ""
	}
	return " (changed by " + manager + ")"
}

// asRepaired maps each service with repaired drift to the summary's change for it.
func asRepaired(found Drift) map[string]string {
	out := map[string]string{}
	for name := range found {
		out[name] = "drift repaired"
	}
	return out
}

// mergeActions is applied with the repaired services added (a service is one or the other).
func mergeActions(applied, repaired map[string]string) map[string]string {
	out := map[string]string{}
	maps.Copy(out, repaired)
	maps.Copy(out, applied)
	return out
}

// DriftOf checks every release of the environment for drift; it changes nothing.
func DriftOf(ctx context.Context, r *Runner) (Drift, []string, error) {
	if err := r.Preflight(ctx, false); err != nil {
		return nil, nil, err
	}
	if r.clients == nil {
		return nil, nil, fmt.Errorf("nothing runs in %s: the local cluster %q does not exist", r.S.Env, r.S.Cluster.Name)
	}
	live, err := r.observe(ctx)
	if err != nil {
		return nil, nil, err
	}
	names := slices.Sorted(maps.Keys(live.Releases))
	found, err := r.CheckDrift(ctx, names)
	return found, names, err
}

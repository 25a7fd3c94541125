package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/planfile"
)

// basis is what a saved plan of the environment is computed against, per service: its
// workspace's state version and its release's newest revision.
func (r *Runner) basis(st State, live Live, names []string) map[string]planfile.Basis {
	out := map[string]planfile.Basis{}
	for _, name := range names {
		v := st.Serials[name]
		out[name] = planfile.Basis{Workspace: r.workspace(name), Lineage: v.Lineage, Serial: v.Serial, Revision: live.Releases[name].Version}
	}
	return out
}

// savePlan writes the plan of res to path: per service of the run (and each one it removes)
// what deploy -plan applies, and the basis it was computed against.
func (r *Runner) savePlan(path string, st State, live Live, d *Desired, res *PlanResult, tfPlans map[string][]byte) error {
	if st.Legacy {
		return fmt.Errorf("plan -out: the state of %s is one workspace from before states were kept per service; deploy once first (it splits it), then plan", r.S.Env)
	}
	names := append(d.Names(), slices.Collect(maps.Keys(res.Changes))...)
	slices.Sort(names)
	names = slices.Compact(names)
	for _, name := range names {
		if st.Workspaces[name] && st.Serials[name].Lineage == "" {
			return fmt.Errorf("plan -out: the state of workspace %s could not be read from the cluster's backend, so the plan would have no basis; saved plans need the default backend (unset TF_BACKEND_CONFIG)", r.workspace(name))
		}
	}
	f := &planfile.File{Env: r.S.Env, Namespace: r.S.Namespace, Project: r.S.Project, Made: time.Now().UTC(), Services: map[string]planfile.Service{}}
	basis := r.basis(st, live, names)
	var missing []string
	for _, name := range names {
		ps := planfile.Service{Action: res.Changes[name], Basis: basis[name], Terraform: tfPlans[name], Repair: res.Drift.Lines(name)}
		if ps.Action != "" {
			ps.Repair = nil // its upgrade puts it back
		}
		if w, ok := d.Want[name]; ok {
			ps.Fingerprint, ps.Image, ps.Secret = w.Fingerprint, w.Ref.Repository+":"+w.Ref.Tag, w.Secret
			if ps.Action != "" && ps.Action != "removed" {
				if ps.Digest = w.Ref.Digest; ps.Digest == "" {
					missing = append(missing, fmt.Sprintf("%s (%s:%s)", name, w.Ref.Repository, w.Tag))
				}
			}
		}
		f.Services[name] = ps
	}
	if len(missing) > 0 {
		return fmt.Errorf("plan -out: not in the registry, so the plan cannot name their digests: %s; publish them first (a deploy to another environment, or image:build and push), then plan again", strings.Join(missing, ", "))
	}
	if err := planfile.Write(path, f); err != nil {
		return fmt.Errorf("plan -out: %w", err)
	}
	fmt.Fprintf(r.Out, "  saved the plan to %s: apply exactly it with go run mage.go deploy %s -plan=%s\n", path, r.S.Env, path)
	return nil
}

// checkBasis refuses a saved plan whose basis moved: another deploy, apply or state change since
// it was made. Nothing has been changed when it runs.
func (r *Runner) checkBasis(st State, live Live) error {
	p := r.Saved
	if p.Env != r.S.Env || p.Namespace != r.S.Namespace || p.Project != r.S.Project {
		return fmt.Errorf("plan %s is of %s in namespace %s (project %s), not of %s in %s (project %s): nothing was done; apply it to its own environment, or make a new plan",
			r.SavedName, p.Env, p.Namespace, p.Project, r.S.Env, r.S.Namespace, r.S.Project)
	}
	names := slices.Sorted(maps.Keys(p.Services))
	if moved := p.Moved(r.SavedName, r.basis(st, live, names)); len(moved) > 0 {
		return fmt.Errorf("nothing was done: %s", strings.Join(moved, "; "))
	}
	return nil
}

// followPlan checks that this run computes what the saved plan says (the same services, actions,
// fingerprints and secret versions: the same source and settings), that each image digest it
// names is still what its tag names in the registry, and pins the digests; nothing has been
// changed when it runs.
func (r *Runner) followPlan(ctx context.Context, d *Desired, changes map[string]string) error {
	p := r.Saved
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		ps := p.Services[name]
		w, runs := d.Want[name]
		switch {
		case changes[name] != ps.Action:
			errs = append(errs, fmt.Errorf("%s: the plan says %q, this run would do %q", name, or(ps.Action, "unchanged"), or(changes[name], "unchanged")))
		case !runs:
			continue
		case w.Fingerprint != ps.Fingerprint:
			errs = append(errs, fmt.Errorf("%s: its source or settings differ from the plan's (fingerprint %s, the plan's %s)", name, w.Fingerprint, ps.Fingerprint))
		case w.Secret != ps.Secret:
			errs = append(errs, fmt.Errorf("%s: the secrets given now make secret version %q, the plan names %q (give the same SECRET_* values)", name, w.Secret, ps.Secret))
		case ps.Digest != "":
			now, err := image.Lookup(ctx, w.Ref.Repository, w.Tag)
			if err != nil {
				errs = append(errs, err)
			} else if now != ps.Digest {
				errs = append(errs, fmt.Errorf("%s: %s:%s is now %s in the registry, the plan names %s", name, w.Ref.Repository, w.Tag, or(now, "missing"), ps.Digest))
			}
			w.Ref.Digest = ps.Digest
		}
	}
	for name := range d.Want {
		if _, ok := p.Services[name]; !ok {
			errs = append(errs, fmt.Errorf("%s: not in the plan (SERVICES differs?)", name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("plan %s is not what this run computes: nothing was done; run deploy -plan from the commit and with the settings the plan was made with, or make a new plan:\n%w", r.SavedName, errors.Join(errs...))
	}
	return nil
}

// savedRepairs are the services whose drift the saved plan repairs.
func (r *Runner) savedRepairs() []string {
	var out []string
	for name, ps := range r.Saved.Services {
		if len(ps.Repair) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// applySaved applies the saved Terraform plan of a service, when the plan holds one; ok is false
// when it does not (a new workspace: the service's inputs, checked against the plan, are applied).
func (r *Runner) applySaved(ctx context.Context, name string, apply func(planFile string) error) (bool, error) {
	if r.Saved == nil || len(r.Saved.Services[name].Terraform) == 0 {
		return false, nil
	}
	path := filepath.Join(r.serviceDataDir("deploy", name), "saved.tfplan")
	if err := os.WriteFile(path, r.Saved.Services[name].Terraform, 0o600); err != nil {
		return true, err
	}
	defer os.Remove(path)
	return true, apply(path)
}

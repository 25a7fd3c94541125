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
	"sync"

	"github.com/dtap-platform/monorepo/internal/services"
)

// PlanResult is what a deploy of the current source would change, per service.
type PlanResult struct {
	Exists  bool              // the environment has state
	Changes map[string]string // service -> installed, upgraded, removed; the others are unchanged
	Builds  []string          // services whose image is not in the registry: deploy builds them
	Secrets map[string]string // service -> the new secret version deploy would write
	// Terraform is what Terraform's own plan changes, per service, when it ran: the same
	// services as Changes, unless something changed behind deploy's back.
	Terraform map[string]string
	// Drift is, per service that runs, each object of its release that is missing or differs
	// from the release's manifest: deploy repairs it (unless DRIFT=warn).
	Drift Drift
}

// Plan shows what a deploy of the current settings would change, and changes nothing: no image
// is built or pushed, no secret, state or workspace is written. It computes the same desired
// state as deploy and compares it the same way, so what it says is what deploy does; where
// something changes it also asks Terraform.
func Plan(ctx context.Context, r *Runner) (*PlanResult, error) {
	s := r.S
	res := &PlanResult{Changes: map[string]string{}, Secrets: map[string]string{}}
	r.readSources(ctx) // the checkout's part of the desired state, while the cluster is asked
	defer r.stopProvider()
	if err := r.step("preflight", func() error { return r.Preflight(ctx, false) }); err != nil {
		return nil, err
	}
	if r.clients == nil && r.PlanOut != "" {
		return nil, fmt.Errorf("plan -out: the local cluster %q does not exist, so there is nothing to plan against: deploy %s first", s.Cluster.Name, s.Env)
	}
	if r.clients == nil {
		fmt.Fprintf(r.Out, "  nothing is deployed in %s: the local cluster %q does not exist yet; `go run mage.go deploy %s` creates it and installs %s\n",
			s.Env, s.Cluster.Name, s.Env, strings.Join(namesOf(s.Run), ", "))
		for _, svc := range s.Run {
			res.Changes[svc.Name] = "installed"
		}
		return res, nil
	}
	if _, err := r.CheckNamespace(ctx, "plan"); err != nil {
		return nil, err
	}
	r.readDoors(ctx) // the front door's lists, beside the state
	var (
		st   State
		live Live
	)
	if err := r.step("state of "+s.Env+" and what runs in "+s.Namespace, func() error {
		// The state and what runs, at once, as deploy reads them.
		var observeErr error
		observed := make(chan struct{})
		go func() {
			defer close(observed)
			live, observeErr = r.observe(ctx)
		}()
		var err error
		ok := false
		if !r.hasLocalState() {
			st, ok, err = r.peekState(ctx)
		}
		if err == nil && !ok {
			st, err = r.readStates(ctx, "plan")
		}
		<-observed
		return errors.Join(err, observeErr)
	}); err != nil {
		return nil, err
	}
	res.Exists = st.Exists
	d, err := r.desire(ctx, st, live)
	if err != nil {
		return nil, err
	}
	res.Changes = d.Changes(st, live, s.ConfirmRemove)
	// The cheap look first, as deploy does, then the full comparison of the services it points
	// at: a full comparison of every object costs two requests per object (drift <env> does it).
	if err := r.step("drift of "+list(slices.Sorted(maps.Keys(live.Releases))), func() error {
		var err error
		res.Drift, err = r.CheckDrift(ctx, driftHints(live, d, slices.Sorted(maps.Keys(live.Releases))))
		return err
	}); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(res.Drift)) {
		for _, line := range res.Drift.Lines(name) {
			fmt.Fprintf(r.Out, "  %-10s drift: %s\n", name, line)
		}
	}
	names := changed(res.Changes)
	if err := r.resolve(ctx, d, names); err != nil {
		return nil, err
	}
	for _, name := range names {
		w := d.Want[name]
		if w.Build {
			res.Builds = append(res.Builds, name)
			fmt.Fprintf(r.Out, "  %-10s %s:%s is not in the registry: deploy would build it\n", name, w.Ref.Repository, w.Tag)
		}
		switch {
		case w.NewSecret:
			res.Secrets[name] = w.Secret
			fmt.Fprintf(r.Out, "  %-10s its secrets changed (keys %s): deploy would write version %s\n", name, w.SecretKeys, w.Secret)
		case s.secretsTouched(name) && w.Secret == "":
			fmt.Fprintf(r.Out, "  %-10s its secrets changed (keys %s): no key left, deploy would mount no secret version\n", name, w.SecretKeys)
		}
	}
	// Terraform's own plan, for each changed service whose workspace exists (a new one is an
	// install, and making its workspace would be a write). Terraform prints the values documents
	// of what changes. No SECRET_* value is in them, and no value under a key that reads as a
	// credential: Resolve refused such a values file before this ran (checkPlaintext), unless
	// ALLOW_PLAINTEXT_VALUES named the key. A credential under an innocent key, or inside a
	// config file's text, is not recognised and would be printed.
	var planned []string
	for _, name := range slices.Sorted(maps.Keys(res.Changes)) {
		if st.Workspaces[name] {
			planned = append(planned, name)
		}
	}
	tfPlans := map[string][]byte{}
	save := func() (*PlanResult, error) {
		if r.PlanOut == "" {
			return res, nil
		}
		return res, r.savePlan(r.PlanOut, st, live, d, res, tfPlans)
	}
	if len(planned) == 0 {
		return save()
	}
	if st.Legacy {
		fmt.Fprintf(r.Out, "  the state of %s is one workspace from before states were kept per service: the next deploy splits it; Terraform's own plan waits until then\n", s.Env)
		return save()
	}
	res.Terraform = map[string]string{}
	var mu sync.Mutex
	err = r.step("terraform plan ("+list(planned)+")", func() error {
		return forEach(planned, terraformAtOnce, func(name string) error {
			t, err := r.serviceTF(ctx, "plan", name, false)
			if err != nil {
				return err
			}
			vars, err := r.writeServiceVars("plan", name, d.terraformInputs(name, res.Changes[name]))
			if err != nil {
				return err
			}
			planFile := filepath.Join(r.serviceDataDir("plan", name), "plan.tfplan")
			defer os.Remove(planFile)
			changed, err := t.Plan(ctx, planFile, d.needsRefresh(name, st, live), vars)
			if err != nil {
				return err
			}
			if r.PlanOut != "" {
				saved, err := os.ReadFile(planFile)
				if err != nil {
					return err
				}
				mu.Lock()
				tfPlans[name] = saved
				mu.Unlock()
			}
			if !changed {
				return nil
			}
			changes, err := t.PlanChanges(ctx, planFile)
			mu.Lock()
			defer mu.Unlock()
			maps.Copy(res.Terraform, changedServices(changes))
			return err
		})
	})
	if err != nil {
		return res, err
	}
	return save()
}

func namesOf(svcs []services.Service) []string {
	var out []string
	for _, s := range svcs {
		out = append(out, s.Name)
	}
	return out
}

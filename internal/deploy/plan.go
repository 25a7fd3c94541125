package deploy

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/release"
	"github.com/dtap-platform/monorepo/internal/secrets"
	"github.com/dtap-platform/monorepo/internal/services"
)

// PlanResult is what a deploy of the current source would change, per service.
type PlanResult struct {
	Exists  bool              // the environment has state
	Changes map[string]string // service -> installed, upgraded, removed
	Builds  []string          // services whose image is not in the registry: deploy builds them
}

// Plan shows what a deploy of the current settings would change, and changes nothing: no image
// is built or pushed, no secret, state or workspace is written. It reads the same state as
// deploy (the cluster's), so a teammate's plan shows only real differences.
func Plan(ctx context.Context, r *Runner) (*PlanResult, error) {
	s := r.S
	res := &PlanResult{Changes: map[string]string{}}
	if err := r.step("preflight", func() error { return r.Preflight(ctx, false) }); err != nil {
		return nil, err
	}
	if r.clients == nil {
		fmt.Fprintf(r.Out, "  nothing is deployed in %s: the local cluster %q does not exist yet; `go run mage.go deploy %s` creates it and installs %s\n",
			s.Env, s.Cluster.Name, s.Env, strings.Join(namesOf(s.Run), ", "))
		return res, nil
	}
	if _, err := r.CheckNamespace(ctx, "plan"); err != nil {
		return nil, err
	}
	st, err := r.openState(ctx, "plan")
	if err != nil {
		return nil, err
	}
	res.Exists = st.Exists
	keep, err := r.kept(st)
	if err != nil {
		return nil, err
	}
	manifests, err := inputs.OfAll(ctx, s.RepoRoot, s.Run, image.InputOptions(ctx))
	if err != nil {
		return nil, err
	}
	digest, err := chart.Digest(filepath.Join(s.RepoRoot, environments.ChartDir))
	if err != nil {
		return nil, err
	}
	svcs := maps.Clone(keep)
	peers := map[string]int{}
	merged := map[string]map[string]any{}
	for _, svc := range s.All {
		if m, err := s.merged(svc); err == nil {
			merged[svc.Name] = m
			if _, inState := st.Services[svc.Name]; inState || slices.ContainsFunc(s.Run, func(x services.Service) bool { return x.Name == svc.Name }) {
				peers[svc.Name] = port(m)
			}
		}
	}
	store := secrets.Store{Clients: r.clients, Namespace: s.Namespace, Env: s.Env}
	var notes []string
	for _, svc := range s.Run {
		tag := or(s.ImageTag, manifests[svc.Name].Tag())
		repo := s.ImageRepository(svc.Name)
		ref := image.Ref{Repository: repo, Tag: tag}
		if d, err := image.Lookup(ctx, repo, tag); err == nil && d != "" {
			ref.Digest = d
		} else {
			res.Builds = append(res.Builds, svc.Name)
			fmt.Fprintf(r.Out, "  %-10s %s:%s is not in the registry: deploy would build it\n", svc.Name, repo, tag)
		}
		last, _ := r.helm.Last(svc.Name)
		secretName := release.SecretName(last)
		if data, given := s.Secrets[svc.Name]; given {
			if versions, err := store.Versions(ctx, svc.Name); err == nil && !holds(versions, secretName, data) {
				secretName = secrets.Name(svc.Name, len(versions)+1)
				fmt.Fprintf(r.Out, "  %-10s its secrets changed: deploy would write a new version\n", svc.Name)
			}
		}
		set := s.overrides(svc, merged[svc.Name], deploySet{chartDigest: digest, secret: secretName, peers: peers}, &notes)
		if s.Local {
			// The front door's port is allocated by deploy; plan keeps the one that runs.
			if in, ok := st.Services[svc.Name]; ok {
				for k, v := range frontDoorOf(in) {
					set[k] = v
				}
			}
		}
		docs, err := s.serviceValues(svc, set)
		if err != nil {
			return nil, err
		}
		svcs[svc.Name] = ServiceInputs{ImageRepository: ref.Repository, ImageTag: ref.Tag, ImageDigest: ref.Digest, Values: docs}
	}
	if !st.Exists {
		fmt.Fprintf(r.Out, "  %s has no Terraform state in the cluster yet (nothing deployed); deploy would install %s\n", s.Env, strings.Join(slices.Sorted(maps.Keys(svcs)), ", "))
		for name := range svcs {
			res.Changes[name] = "installed"
		}
		return res, nil
	}
	varsPath, err := r.writeVars("plan", svcs)
	if err != nil {
		return nil, err
	}
	planFile := filepath.Join(r.dataDir("plan"), "plan.tfplan")
	defer os.Remove(planFile)
	err = r.step("terraform plan", func() error {
		changed, err := r.tfr.Plan(ctx, planFile, false, varsPath)
		if err != nil || !changed {
			return err
		}
		changes, err := r.tfr.PlanChanges(ctx, planFile)
		res.Changes = changedServices(changes)
		return err
	})
	return res, err
}

// holds reports whether the version named current holds exactly data.
func holds(versions []corev1.Secret, current string, data map[string][]byte) bool {
	for _, v := range versions {
		if v.Name == current {
			return maps.EqualFunc(v.Data, data, bytes.Equal)
		}
	}
	return false
}

// frontDoorOf reads back the front door deploy set on a service, from the values it applied.
func frontDoorOf(in ServiceInputs) map[string]any {
	if len(in.Values) == 0 {
		return nil
	}
	var set map[string]any
	if err := yaml.Unmarshal([]byte(in.Values[len(in.Values)-1]), &set); err != nil {
		return nil
	}
	out := map[string]any{}
	if p := dig(set, "service", "nodePort"); p != nil {
		out["service"] = map[string]any{"nodePort": p}
	}
	if np, ok := dig(set, "networkPolicy").(map[string]any); ok {
		out["networkPolicy"] = np
	}
	return out
}

func namesOf(svcs []services.Service) []string {
	var out []string
	for _, s := range svcs {
		out = append(out, s.Name)
	}
	return out
}

package deploy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/dtap-platform/monorepo/internal/tf"
)

// Each service of an environment has a Terraform workspace of its own, <env>.<service>, in the
// environment's backend (by default Secrets in the state namespace of the target cluster). A
// deploy plans and applies only the services whose fingerprint changed, each in its workspace,
// several at once: what it costs follows the change, not the number of services the
// environment holds (one state for all would make Terraform load and plan every release on
// every change). One state per service also bounds a state's size, and a failed apply of one
// service leaves the others' states alone.
//
// An environment deployed before kept one workspace, <env>, for all its services; the next
// deploy, destroy or rollback splits it (splitLegacy). The environment stays locked as a whole
// by deploy's own lock; each workspace keeps Terraform's lock too.

// The labels Terraform's kubernetes backend puts on the Secret and the Lease of a workspace.
const (
	workspaceLabel = "tfstateWorkspace"
	suffixLabel    = "tfstateSecretSuffix"
)

// workspace is the Terraform workspace of one service of the environment.
func (r *Runner) workspace(svc string) string { return r.S.Env + "." + svc }

// serviceOfWorkspace is the service whose workspace ws is in environment env ("" for another).
func serviceOfWorkspace(env, ws string) string {
	svc, ok := strings.CutPrefix(ws, env+".")
	if !ok || svc == "" || strings.Contains(svc, ".") {
		return ""
	}
	return svc
}

// serviceTF is a terraform runner on the service's workspace, for kind ("deploy" or "plan"):
// the environment's data directory is initialised once (skipped when nothing it depends on
// changed), and each service's is set up from it without another init. With create, the
// workspace is made when the state does not have it yet.
func (r *Runner) serviceTF(ctx context.Context, kind, svc string, create bool) (*tf.Runner, error) {
	r.tfMu.Lock()
	if r.tfr == nil {
		if err := r.initTerraform(ctx, kind); err != nil {
			r.tfMu.Unlock()
			return nil, err
		}
	}
	if !r.providerSet {
		r.providerSet = true
		p, err := r.tfr.StartProvider(ctx)
		if err != nil {
			fmt.Fprintf(r.Out, "  note: no helm provider shared by this run's terraform processes (%v): each starts its own\n", err)
		}
		r.provider = p
		r.tfr.Share(p)
	}
	t, ok := r.serviceTFs[svc]
	if !ok {
		var err error
		t, err = r.tfr.ForWorkspace(r.serviceDataDir(kind, svc), r.workspace(svc), "  [terraform "+svc+"] ")
		if err != nil {
			r.tfMu.Unlock()
			return nil, err
		}
		r.serviceTFs[svc] = t
	}
	r.tfMu.Unlock()
	if create {
		if err := t.NewWorkspace(ctx, r.workspace(svc)); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// stopProvider ends the helm provider the run's terraform processes shared, if any: once
// they have all exited.
func (r *Runner) stopProvider() {
	r.tfMu.Lock()
	defer r.tfMu.Unlock()
	if err := r.provider.Stop(); err != nil {
		fmt.Fprintf(r.Out, "  note: %v\n", err)
	}
	r.provider, r.providerSet = nil, false
}

// serviceDataDir is the Terraform data directory of one service's workspace.
func (r *Runner) serviceDataDir(kind, svc string) string {
	return filepath.Join(r.cacheDir, "terraform", kind+"-"+r.workspace(svc))
}

// writeServiceVars writes Terraform's variables for one service's workspace: the service with
// its inputs, or no service at all (in removes the release). They hold no secret value.
func (r *Runner) writeServiceVars(kind, svc string, in *ServiceInputs) (string, error) {
	svcs := map[string]ServiceInputs{}
	if in != nil {
		svcs[svc] = *in
	}
	return r.writeVarsIn(r.serviceDataDir(kind, svc), svcs)
}

// terraformAtOnce is how many terraform processes run at once: each is a second or so of CPU.
const terraformAtOnce = 4

// forEach runs fn for every name, at most limit at once, and joins their errors, each under
// its name.
func forEach(names []string, limit int, fn func(name string) error) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, limit)
	)
	for _, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := fn(name); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return joinSorted(errs)
}

// mergeStates makes one State of the environment out of its workspaces' (by workspace name):
// the legacy <env> workspace and one per service.
func mergeStates(env string, byWorkspace map[string]State) (State, error) {
	st := State{Managed: map[string]bool{}, Services: map[string]ServiceInputs{}, Workspaces: map[string]bool{}, Other: map[string]bool{}, Serials: map[string]Serial{}}
	st.Releases = map[string]struct {
		Revision int    `json:"revision"`
		Status   string `json:"status"`
	}{}
	for _, ws := range slices.Sorted(maps.Keys(byWorkspace)) {
		one := byWorkspace[ws]
		svc := serviceOfWorkspace(env, ws)
		if ws != env && svc == "" {
			continue
		}
		st.Exists = true
		if one.Namespace != "" {
			if st.Namespace != "" && st.Namespace != one.Namespace {
				return State{}, fmt.Errorf("the Terraform states of %s disagree on its namespace: %s and %s (workspace %s); destroy the environment from the namespace it runs in", env, st.Namespace, one.Namespace, ws)
			}
			st.Namespace = one.Namespace
		}
		if svc != "" {
			st.Workspaces[svc] = true
			if v, ok := one.Serials[""]; ok {
				st.Serials[svc] = v // parseState keeps its document's under ""
			}
		} else if len(one.Managed) > 0 {
			st.Legacy = true
		}
		for name := range one.Managed {
			if svc != "" && name != svc {
				continue // a workspace holds its own service only
			}
			st.Managed[name] = true
			st.Other[name] = st.Other[name] || one.Other[name]
			if in, ok := one.Services[name]; ok {
				st.Services[name] = in
			}
			if rel, ok := one.Releases[name]; ok {
				st.Releases[name] = rel
			}
		}
	}
	return st, nil
}

// readStates reads every workspace of the environment with terraform (another backend than
// the cluster's, or a local state to migrate first): a terraform call or three per workspace.
func (r *Runner) readStates(ctx context.Context, kind string) (State, error) {
	if r.tfr == nil {
		if err := r.initTerraform(ctx, kind); err != nil {
			return State{}, err
		}
	}
	list, _, err := r.tfr.Workspaces(ctx)
	if err != nil {
		return State{}, err
	}
	byWorkspace := map[string]State{}
	for _, ws := range list {
		if ws != r.S.Env && serviceOfWorkspace(r.S.Env, ws) == "" {
			continue
		}
		if _, err := r.tfr.UseWorkspace(ctx, ws, false); err != nil {
			return State{}, err
		}
		outs, err := r.tfr.Outputs(ctx)
		if err != nil {
			return State{}, err
		}
		addrs, err := r.tfr.Resources(ctx)
		if err != nil {
			return State{}, err
		}
		var one State
		if err := one.fill(outs, addrs); err != nil {
			return State{}, err
		}
		byWorkspace[ws] = one
	}
	return mergeStates(r.S.Env, byWorkspace)
}

// splitLegacy moves an environment's one state from before (workspace <env>) into one
// workspace per service, and deletes it: each service's resources and outputs are pushed into
// its workspace as they were, so nothing is planned or applied, and no release changes. It runs
// under the environment's lock. Interrupted, it runs again from the start on the next run (the
// old workspace is deleted last, and each push overwrites what an earlier try pushed).
func (r *Runner) splitLegacy(ctx context.Context, kind string, st State) (State, error) {
	if !st.Legacy {
		return st, nil
	}
	err := r.step("split the state of "+r.S.Env+" into one per service", func() error {
		if r.tfr == nil {
			if err := r.initTerraform(ctx, kind); err != nil {
				return err
			}
		}
		if _, err := r.tfr.UseWorkspace(ctx, r.S.Env, false); err != nil {
			return err
		}
		doc, err := r.tfr.PullState(ctx)
		if err != nil {
			return err
		}
		parts, err := splitState([]byte(doc))
		if err != nil {
			return fmt.Errorf("the state of %s (workspace %s): %w", r.S.Env, r.S.Env, err)
		}
		names := slices.Sorted(maps.Keys(parts))
		if err := forEach(names, terraformAtOnce, func(svc string) error {
			t, err := r.serviceTF(ctx, kind, svc, true)
			if err != nil {
				return err
			}
			path := filepath.Join(r.serviceDataDir(kind, svc), "split.tfstate")
			if err := os.WriteFile(path, parts[svc], 0o600); err != nil {
				return err
			}
			defer os.Remove(path)
			return t.PushState(ctx, path)
		}); err != nil {
			return err
		}
		if err := r.tfr.DeleteWorkspace(ctx, r.S.Env); err != nil {
			return err
		}
		fmt.Fprintf(r.Out, "  %s now has one Terraform state per service (%s): a deploy plans only what it changes\n", r.S.Env, list(names))
		return nil
	})
	if err != nil {
		return st, err
	}
	return r.currentState(ctx)
}

// splitState cuts a Terraform state document (format 4) of the environment's one workspace
// into one per service: its resources (module.service["<svc>"], and module.app, api's from
// before the monorepo layout), and the outputs narrowed to it. Each part has a lineage of its
// own; its serial starts at 1.
func splitState(doc []byte) (map[string][]byte, error) {
	var whole struct {
		Version          int                        `json:"version"`
		TerraformVersion string                     `json:"terraform_version"`
		Outputs          map[string]json.RawMessage `json:"outputs"`
		Resources        []json.RawMessage          `json:"resources"`
	}
	if err := json.Unmarshal(doc, &whole); err != nil {
		return nil, err
	}
	if whole.Version != 4 {
		return nil, fmt.Errorf("state format version %d, not 4", whole.Version)
	}
	bySvc := map[string][]json.RawMessage{}
	for _, raw := range whole.Resources {
		var res struct {
			Module string `json:"module"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return nil, err
		}
		svc := ""
		if rest, ok := strings.CutPrefix(res.Module, `module.service["`); ok {
			svc, _, _ = strings.Cut(rest, `"]`)
		} else if res.Module == "module.app" || strings.HasPrefix(res.Module, "module.app.") {
			svc = "api"
		}
		if svc == "" {
			return nil, fmt.Errorf("resource of module %q belongs to no service: split it by hand", res.Module)
		}
		bySvc[svc] = append(bySvc[svc], raw)
	}
	out := map[string][]byte{}
	for svc, resources := range bySvc {
		outputs := map[string]json.RawMessage{}
		for name, raw := range whole.Outputs {
			switch name {
			case "services", "releases":
				narrowed, err := narrowOutput(raw, svc)
				if err != nil {
					return nil, fmt.Errorf("output %s: %w", name, err)
				}
				outputs[name] = narrowed
			default:
				outputs[name] = raw
			}
		}
		part, err := json.MarshalIndent(map[string]any{
			"version": 4, "terraform_version": whole.TerraformVersion, "serial": 1, "lineage": newLineage(),
			"outputs": outputs, "resources": resources, "check_results": nil,
		}, "", "  ")
		if err != nil {
			return nil, err
		}
		out[svc] = part
	}
	return out, nil
}

// narrowOutput keeps one key of an output whose value is a map or an object keyed by service
// (its type says which: ["map", T] keeps, ["object", {svc: T, ...}] narrows).
func narrowOutput(raw json.RawMessage, svc string) (json.RawMessage, error) {
	var o struct {
		Value     map[string]json.RawMessage `json:"value"`
		Type      []json.RawMessage          `json:"type"`
		Sensitive bool                       `json:"sensitive"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, err
	}
	value := map[string]json.RawMessage{}
	if v, ok := o.Value[svc]; ok {
		value[svc] = v
	}
	typ := o.Type
	if len(typ) == 2 && string(typ[0]) == `"object"` {
		var attrs map[string]json.RawMessage
		if err := json.Unmarshal(typ[1], &attrs); err != nil {
			return nil, err
		}
		kept := map[string]json.RawMessage{}
		if t, ok := attrs[svc]; ok {
			kept[svc] = t
		}
		b, err := json.Marshal(kept)
		if err != nil {
			return nil, err
		}
		typ = []json.RawMessage{typ[0], b}
	}
	return json.Marshal(map[string]any{"value": value, "type": typ, "sensitive": o.Sensitive})
}

// newLineage is a random UUID, as Terraform gives each new state.
func newLineage() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// stateLeases are the Leases of Terraform's lock on each workspace of the environment.
func (r *Runner) stateLeases(ctx context.Context) ([]string, error) {
	list, err := r.clients.CoordinationV1().Leases(r.S.StateNamespace).List(ctx, listBySuffix(r.S.Project))
	if err != nil {
		return nil, fmt.Errorf("list Terraform's state locks in %s: %w", r.S.StateNamespace, err)
	}
	var out []string
	for _, l := range list.Items {
		if ws := l.Labels[workspaceLabel]; ws == r.S.Env || serviceOfWorkspace(r.S.Env, ws) != "" {
			out = append(out, l.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

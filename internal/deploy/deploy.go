package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/cluster"
	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/release"
	"github.com/dtap-platform/monorepo/internal/rollout"
	"github.com/dtap-platform/monorepo/internal/secrets"
	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/internal/tf"
	"github.com/dtap-platform/monorepo/services/kit/server"
)

// Row is one service's line of the summary.
type Row struct {
	Service  string
	Change   string // installed, rolled, upgraded (no new pods), unchanged, rolled back, removed
	Image    image.Ref
	Revision int // the Helm release revision that runs
	Ready    time.Duration
	URL      string
	Config   map[string]any // its /config, from the smoke check
}

// Untouched reports whether the run left the service as it was: "unchanged", or "unchanged
// (0/1 pods ready)" when its pods were not all ready at the time.
func (r Row) Untouched() bool { return strings.HasPrefix(r.Change, "unchanged") }

// Result is the summary of a deploy.
type Result struct {
	Env       string
	Namespace string
	Changed   bool // false when Terraform had nothing to change
	Rows      []Row
	Notes     []string
	Steps     []Step
	Built     []string          // the services whose image this run built
	Secrets   map[string]string // service -> the secret version this run wrote
}

// Row returns the summary row of a service.
func (r *Result) Row(service string) (Row, bool) {
	i := slices.IndexFunc(r.Rows, func(x Row) bool { return x.Service == service })
	if i < 0 {
		return Row{}, false
	}
	return r.Rows[i], true
}

// Deploy takes the current source of the run's services to running, smoke-checked releases
// in the environment. Everything is validated by Resolve before this runs; the first side
// effect is the local cluster (when it is the target and missing).
//
// Its cost follows the change: the environment's desired state is computed once, and each
// service's fingerprint is compared with what runs (a few list calls); a service that matches
// is not built, planned, applied, waited for or smoke-checked, and with nothing changed
// Terraform does not run at all. A rollout that fails rolls back that service alone (or every
// changed one, with ROLLBACK_SCOPE=environment); the result then comes with the error.
func Deploy(ctx context.Context, r *Runner) (*Result, error) {
	s := r.S
	res := &Result{Env: s.Env, Namespace: s.Namespace}
	needDocker := !s.SkipBuild && s.Builder == image.BuilderDocker && len(s.Pins) < len(s.Run)
	r.readSources(ctx) // the checkout's part of the desired state, while the cluster is asked
	if err := r.step("preflight", func() error { return r.Preflight(ctx, needDocker) }); err != nil {
		return nil, err
	}
	existing, err := r.CheckNamespace(ctx, "deploy")
	if err != nil {
		return nil, err
	}
	if err := r.ensureLocalCluster(ctx); err != nil {
		return nil, err
	}
	r.readDoors(ctx) // the front door's lists, beside the lock and the state
	if err := r.step("lock "+s.Env, func() error {
		if err := r.ensureStateNamespace(ctx); err != nil {
			return err
		}
		return r.acquireLock(ctx)
	}); err != nil {
		return nil, err
	}
	defer r.releaseLock()
	defer r.stopProvider() // after every terraform run, before the lock is released
	// A run that fails early still waits for its signatures (held by the lock, like the rest).
	defer func() { _ = r.wait(r.signing) }()

	var (
		st   State
		live Live
	)
	if err := r.step("state of "+s.Env+" and what runs in "+s.Namespace, func() error {
		// Two independent reads: the state's one list call and what runs (three lists), at once.
		var stateErr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			st, stateErr = r.currentState(ctx)
		}()
		var err error
		live, err = r.observe(ctx)
		<-done
		if err = errors.Join(stateErr, err); err != nil {
			return err
		}
		if r.Saved != nil {
			return r.checkBasis(st, live) // a pending release moved the basis: nothing is recovered
		}
		if recovered, err := r.recoverPending(live, res); err != nil || !recovered {
			return err
		}
		live, err = r.observe(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	if st.Namespace != "" && st.Namespace != s.Namespace {
		return nil, fmt.Errorf("environment %s runs in namespace %s (its state says so), not %s: set NAMESPACE=%s to deploy there, or destroy it first to move it",
			s.Env, st.Namespace, s.Namespace, st.Namespace)
	}
	if st, err = r.splitLegacy(ctx, "deploy", st); err != nil {
		return nil, err
	}
	var d *Desired
	if err := r.step("desired state of "+list(services.Names(s.Run)), func() error {
		var err error
		d, err = r.desire(ctx, st, live)
		return err
	}); err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, d.Notes...)
	adoptees, err := r.adoptable(st, live, d)
	if err != nil {
		return nil, err
	}
	changes := d.Changes(st, live, s.ConfirmRemove)
	// Drift in the services Terraform leaves alone: a changed one is upgraded by Helm, whose
	// three-way merge puts its objects back as its manifest says. A saved plan repairs the drift
	// it lists, and nothing else.
	checkDrift := slices.DeleteFunc(d.Names(), func(n string) bool { return changes[n] != "" })
	if r.Saved != nil {
		if err := r.followPlan(ctx, d, changes); err != nil {
			return nil, err
		}
		checkDrift = r.savedRepairs()
		fmt.Fprintf(r.Out, "  applying plan %s (made %s): its basis has not moved\n", r.SavedName, r.Saved.Made.Format(time.RFC3339))
	}
	found, repaired, err := r.repairDrift(ctx, live, d, checkDrift)
	if err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, driftNotes(found, repaired)...)
	var (
		repairedIn map[string]time.Duration
		fixed      map[string]string // service -> "drift repaired"
	)
	if repaired {
		res.Changed, fixed = true, asRepaired(found)
		var failures map[string]error
		if repairedIn, failures = r.waitAll(ctx, fixed); len(failures) > 0 {
			return nil, fmt.Errorf("the drift of %s was repaired, but: %w", list(slices.Sorted(maps.Keys(failures))), joinFailures(failures))
		}
	}
	if len(changes) == 0 {
		fmt.Fprintf(r.Out, "  no changes: every service's fingerprint matches what runs in %s\n", s.Namespace)
		if err := r.ensureNamespace(ctx, existing); err != nil {
			return nil, err
		}
		res.Rows = r.rows(d, live, fixed, repairedIn, nil)
		if err := r.remember(); err != nil {
			fmt.Fprintf(r.Out, "  note: could not record this deploy for a bare `mage destroy`: %v\n", err)
		}
		res.Steps = r.steps
		return res, nil
	}
	fmt.Fprintf(r.Out, "  changed: %s; unchanged: %d\n", describe(changes), len(d.Want)-len(changes)+countRemoved(changes))

	if err := r.images(ctx, d, changed(changes)); err != nil {
		return nil, err
	}
	if err := r.step("namespace "+s.Namespace, func() error { return r.ensureNamespace(ctx, existing) }); err != nil {
		return nil, err
	}
	// Recorded before anything is written into the namespace: a deploy that fails from here on
	// still leaves a record, so that a bare `mage destroy` sees and removes what it left.
	if err := r.remember(); err != nil {
		fmt.Fprintf(r.Out, "  note: could not record this deploy for a bare `mage destroy`: %v\n", err)
	}
	if err := r.writeSecrets(ctx, d, changes); err != nil {
		return nil, err
	}
	before := map[string]int{}
	for name := range changes {
		if rel, ok := live.Releases[name]; ok {
			before[name] = rel.Version
		}
	}
	// Each changed service is planned and applied in its own workspace, several at once; the
	// others are not read, planned or applied.
	applied, failures := map[string]string{}, map[string]error{}
	var mu sync.Mutex
	_ = r.step("terraform plan and apply ("+describe(changes)+")", func() error {
		return forEach(slices.Sorted(maps.Keys(changes)), terraformAtOnce, func(name string) error {
			did, note, err := r.applyService(ctx, d, st, live, name, changes[name], slices.Contains(adoptees, name))
			mu.Lock()
			defer mu.Unlock()
			if note != "" {
				res.Notes = append(res.Notes, note)
			}
			if did || err != nil {
				applied[name] = changes[name]
			}
			if err != nil {
				failures[name] = err
			}
			return err
		})
	})
	res.Changed = len(applied) > 0
	if !res.Changed {
		fmt.Fprintln(r.Out, "  terraform has nothing to apply: every release already runs these inputs")
	}
	readyIn, rolloutFailures := r.waitAll(ctx, withoutKeys(applied, failures))
	maps.Copy(failures, rolloutFailures)
	var rollbackErr error
	if len(failures) > 0 {
		undo := map[string]string{}
		for name := range failures {
			undo[name] = applied[name]
		}
		if s.RollbackScope == RollbackEnvironment || ctx.Err() != nil {
			undo = applied
		}
		rollbackErr = r.failed(ctx, joinFailures(failures), undo, before, "the deploy failed")
		if len(undo) == len(applied) {
			return nil, rollbackErr
		}
		for name := range undo {
			delete(applied, name)
		}
	}
	r.describe(applied, func(name string) string {
		if w, ok := d.Want[name]; ok {
			return fmt.Sprintf("deployed %s:%s", name, w.Ref.Tag)
		}
		return fmt.Sprintf("%s passed back as it ran (not in this run's SERVICES)", name)
	})
	signErr := r.wait(r.signing)
	r.signing = nil
	smokeErr := r.smokeAll(ctx, d, applied)
	if live, err = r.observe(ctx); err != nil {
		return nil, err
	}
	maps.Copy(readyIn, repairedIn)
	res.Rows = r.rows(d, live, mergeActions(applied, fixed), readyIn, failures)
	for name, action := range applied {
		if action == "removed" {
			res.Rows = append(res.Rows, Row{Service: name, Change: "removed"})
		}
	}
	slices.SortFunc(res.Rows, func(a, b Row) int { return strings.Compare(a.Service, b.Service) })
	r.pruneSecrets(ctx, applied, live)
	if err := r.remember(); err != nil {
		fmt.Fprintf(r.Out, "  note: could not record this deploy for a bare `mage destroy`: %v\n", err)
	}
	res.Steps, res.Built, res.Secrets = r.steps, r.built, r.wrote
	return res, errors.Join(rollbackErr, signErr, smokeErr)
}

// currentState reads the environment's state: straight from its Secrets when it can, else with
// terraform (after migrating a local state from before the cluster backend into it).
func (r *Runner) currentState(ctx context.Context) (State, error) {
	if !r.hasLocalState() {
		st, ok, err := r.peekState(ctx)
		if err != nil || ok {
			return st, err
		}
	}
	if r.tfr == nil {
		if err := r.initTerraform(ctx, "deploy"); err != nil {
			return State{}, err
		}
	}
	if err := r.migrateLocalState(ctx); err != nil {
		return State{}, err
	}
	return r.readStates(ctx, "deploy")
}

// changed are the names of the services in changes that run after the deploy.
func changed(changes map[string]string) []string {
	var out []string
	for name, action := range changes {
		if action != "removed" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// list names services for a step's title: all of them when few, else the first few and the count.
func list(names []string) string {
	if len(names) <= 6 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, ... (%d services)", strings.Join(names[:3], ", "), len(names))
}

func countRemoved(changes map[string]string) int {
	n := 0
	for _, action := range changes {
		if action == "removed" {
			n++
		}
	}
	return n
}

// rows are the summary's rows of the run's services: applied ones as this run left them,
// failed ones as rolled back, the others as unchanged, read from what runs.
func (r *Runner) rows(d *Desired, live Live, applied map[string]string, readyIn map[string]time.Duration, failures map[string]error) []Row {
	var rows []Row
	for _, name := range d.Names() {
		w := d.Want[name]
		row := Row{Service: name, Change: "unchanged", Image: w.Ref, URL: r.publicURL(w), Config: w.smoked}
		row.Revision = live.Releases[name].Version
		if row.Image.Digest == "" {
			row.Image = live.runningImage(name)
		}
		switch action := applied[name]; {
		case failures[name] != nil && live.Releases[name].Version == 0:
			row.Change = "failed, first install removed"
		case failures[name] != nil:
			row.Change = fmt.Sprintf("failed, rolled back to %d", row.Revision)
		case action == "upgraded":
			row.Change, row.Ready = "rolled", readyIn[name]
		case action != "":
			row.Change, row.Ready = action, readyIn[name]
		}
		if dep, ok := live.Deployments[name]; ok && row.Change == "unchanged" {
			if progress, done := rollout.Progress(&dep); !done {
				row.Change = "unchanged (" + progress + ")"
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func joinFailures(failures map[string]error) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(failures)) {
		errs = append(errs, fmt.Errorf("%s: %w", name, failures[name]))
	}
	return errors.Join(errs...)
}

// kept are the services the state holds and this run does not deploy: passed back with the
// inputs they were last applied with, so they stay exactly as they run (a release the state
// holds without its inputs, as after a migration, is passed back as the release runs it). A
// service whose folder is gone is removed only when CONFIRM_REMOVE names it.
func (r *Runner) kept(st State, live Live) (map[string]ServiceInputs, error) {
	keep := map[string]ServiceInputs{}
	var gone []string
	for _, name := range slices.Sorted(maps.Keys(st.Managed)) {
		if slices.ContainsFunc(r.S.Run, func(s services.Service) bool { return s.Name == name }) {
			continue
		}
		if _, exists := r.S.Service(name); !exists {
			if slices.Contains(r.S.ConfirmRemove, name) {
				fmt.Fprintf(r.Out, "  removing service %s from %s (CONFIRM_REMOVE)\n", name, r.S.Env)
				continue
			}
			gone = append(gone, name)
		}
		in, ok := st.Services[name]
		if !ok {
			rel, err := r.helm.Last(name) // rare: a state without inputs, as after a migration
			if err != nil {
				return nil, err
			}
			if in, err = r.runningInputs(name, rel); err != nil {
				return nil, err
			}
		}
		keep[name] = in
	}
	if len(gone) > 0 {
		return nil, fmt.Errorf("service %s is deployed in %s, but its folder services/%s is gone: this deploy would remove release %s from namespace %s. "+
			"Set CONFIRM_REMOVE=%s to remove it, or restore the folder", strings.Join(gone, ", "), r.S.Env, gone[0],
			strings.Join(gone, ", "), r.S.Namespace, strings.Join(gone, ","))
	}
	return keep, nil
}

// runningInputs are the inputs of what a release runs now: its image and its values as one
// document.
func (r *Runner) runningInputs(name string, rel *helmrelease.Release) (ServiceInputs, error) {
	if rel == nil {
		return ServiceInputs{}, fmt.Errorf("the state holds release %s, but it does not run in %s: run `go run mage.go deploy %s` with SERVICES including it", name, r.S.Namespace, r.S.Env)
	}
	img := imageOf(rel)
	values := maps.Clone(rel.Config)
	delete(values, "image")
	doc, err := yaml.Marshal(values)
	if err != nil {
		return ServiceInputs{}, err
	}
	return ServiceInputs{ImageRepository: img.Repository, ImageTag: img.Tag, ImageDigest: img.Digest,
		Values: []string{fmt.Sprintf("# the values of revision %d, as it runs\n%s", rel.Version, doc)}}, nil
}

// recoverPending repairs the releases a killed run left pending, before anything else runs,
// and reports whether it repaired any.
func (r *Runner) recoverPending(live Live, res *Result) (bool, error) {
	recovered := false
	for _, name := range slices.Sorted(maps.Keys(live.Releases)) {
		if !live.Releases[name].Status.IsPending() {
			continue
		}
		rel, err := r.helm.Last(name)
		if err != nil {
			return recovered, err
		}
		if rel == nil || release.Owned(rel, rel.Name, r.S.Env) != nil {
			continue // not ours: never touched
		}
		msg, err := r.helm.Recover(rel.Name)
		if err != nil {
			return recovered, err
		}
		if msg != "" {
			recovered = true
			fmt.Fprintf(r.Out, "  recovered: %s\n", msg)
			res.Notes = append(res.Notes, "recovered: "+msg)
		}
	}
	return recovered, nil
}

// images makes the images of the changed services available: looked up in the registry, all
// at once; what is missing is built and published with reproducible bytes; IMAGE_TAG is added
// beside each content tag.
func (r *Runner) images(ctx context.Context, d *Desired, names []string) error {
	s := r.S
	if err := r.step("images: look up "+list(names)+" in "+s.Registry, func() error {
		if err := r.resolve(ctx, d, names); err != nil {
			return err
		}
		for _, name := range names {
			w := d.Want[name]
			switch {
			case w.Pinned:
				ref, err := image.Copy(ctx, s.Pins[name], w.Ref.Repository)
				if err != nil {
					return err
				}
				w.Ref = ref
				fmt.Fprintf(r.Out, "  %-10s %s (promoted, not rebuilt)\n", name, ref)
			case w.Ref.Digest != "":
				fmt.Fprintf(r.Out, "  %-10s %s:%s is in the registry (%s): not rebuilt\n", name, w.Ref.Repository, w.Tag, short(w.Ref.Digest))
			}
		}
		return nil
	}); err != nil {
		return err
	}
	var specs []image.Spec
	for _, name := range names {
		if w := d.Want[name]; w.Build {
			specs = append(specs, image.Spec{Service: name, Inputs: w.Inputs, Revision: inputs.RevisionOf(ctx, s.RepoRoot, w.Inputs),
				Ref: image.Ref{Repository: w.Ref.Repository, Tag: w.Tag}})
		}
	}
	if len(specs) > 0 {
		var built []string
		for _, sp := range specs {
			built = append(built, sp.Service)
		}
		r.built = built
		if s.Builder == image.BuilderHost {
			if err := r.step("build and publish "+list(built)+" (host go build) to "+s.Registry, func() error {
				digests, err := image.BuildAndPushAll(ctx, s.RepoRoot, specs, func(svc string) string { return d.Want[svc].Ref.Repository }, r.Out)
				for svc, digest := range digests {
					d.Want[svc].Ref.Digest = digest
				}
				return err
			}); err != nil {
				return err
			}
			return r.trustImages(ctx, d, names)
		}
		if err := r.step("build "+list(built), func() error { return image.BuildAll(ctx, s.RepoRoot, specs, r.Out) }); err != nil {
			return err
		}
		if err := r.step("publish "+list(built)+" to "+s.Registry, func() error {
			for _, sp := range specs {
				digest, err := image.Publish(ctx, sp, sp.Ref.Repository)
				if err != nil {
					return err
				}
				d.Want[sp.Service].Ref.Digest = digest
				fmt.Fprintf(r.Out, "  %-10s %s:%s@%s (revision %s)\n", sp.Service, sp.Ref.Repository, sp.Ref.Tag, short(digest), sp.Revision)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return r.trustImages(ctx, d, names)
}

// addPipelineTag tags each image, in its registry, with IMAGE_TAG too (beside its content tag,
// which stays the image's name); the release runs it under that tag.
func (r *Runner) addPipelineTag(ctx context.Context, d *Desired, names []string) error {
	if r.S.ImageTag == "" || r.S.SkipBuild {
		return nil
	}
	for _, name := range names {
		w := d.Want[name]
		if w.Ref.Digest == "" || w.Pinned {
			continue
		}
		if err := image.Tag(ctx, image.Ref{Repository: w.Ref.Repository, Tag: w.Tag, Digest: w.Ref.Digest}, r.S.ImageTag); err != nil {
			return err
		}
	}
	return nil
}

// writeSecrets writes the new secret versions that the desired state of the changed services
// names (the versions plan named too), holding the data the desired state merged: the keys
// given, and the others carried over from the current version unless removed. Nothing is
// written for the other services. It prints each service's keys by what happens to them,
// never a value.
func (r *Runner) writeSecrets(ctx context.Context, d *Desired, changes map[string]string) error {
	store := secrets.Store{Clients: r.clients, Namespace: r.S.Namespace, Env: r.S.Env}
	var names []string
	for _, name := range d.Names() {
		if r.S.secretsTouched(name) && changes[name] != "" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return r.step("secrets of "+list(names), func() error {
		for _, name := range names {
			w := d.Want[name]
			verb := "unchanged, keeps " + w.Secret
			switch {
			case w.NewSecret:
				if err := store.Create(ctx, name, w.Secret, w.secretData); err != nil {
					return err
				}
				r.wrote[name] = w.Secret
				verb = "new version " + w.Secret
			case w.Secret == "":
				verb = "no key left: mounts no secret version"
			}
			fmt.Fprintf(r.Out, "  %-10s secret keys %s: %s\n", name, w.SecretKeys, verb)
		}
		return nil
	})
}

// adoptable lists the services this run applies (its own and those it keeps) whose release runs
// in the namespace while the state does not hold it (state lost, or installed by hand), once
// each proves to be this project's release of that service in this environment. A foreign
// release of the same name is refused, before anything is built or written.
func (r *Runner) adoptable(st State, live Live, d *Desired) ([]string, error) {
	names := append(d.Names(), slices.Collect(maps.Keys(d.Kept))...)
	slices.Sort(names)
	var out []string
	for _, name := range slices.Compact(names) {
		if _, runs := live.Releases[name]; st.Managed[name] || !runs {
			continue
		}
		rel, err := r.helm.Last(name)
		if err != nil {
			return nil, err
		}
		if rel == nil {
			continue
		}
		if err := release.Owned(rel, name, r.S.Env); err != nil {
			return nil, fmt.Errorf("a release named %s already runs in namespace %s, and it is not this project's release of service %s in %s: %w",
				name, r.S.Namespace, name, r.S.Env, err)
		}
		out = append(out, name)
	}
	return out, nil
}

// applyService plans and applies one changed service in its workspace (made first for a new
// service; a release that runs without a state is imported into it first), and reports whether
// Terraform changed it, and what was adopted. A removed service's workspace is deleted after.
func (r *Runner) applyService(ctx context.Context, d *Desired, st State, live Live, name, action string, adopt bool) (bool, string, error) {
	t, err := r.serviceTF(ctx, "deploy", name, !st.Workspaces[name])
	if err != nil {
		return false, "", err
	}
	vars, err := r.writeServiceVars("deploy", name, d.terraformInputs(name, action))
	if err != nil {
		return false, "", err
	}
	note := ""
	if adopt {
		if note, err = r.adopt(ctx, t, name, vars); err != nil {
			return false, "", err
		}
	}
	if r.lockLost() {
		return false, note, fmt.Errorf("the deploy lock of %s was broken while this run held it (go run mage.go unlock by someone else?): %s was not applied; run deploy again", r.S.Env, name)
	}
	// The fingerprints decided that the service changes: plan and apply are one terraform run.
	// Whether Terraform changed the release is read from the release's revision after.
	saved, err := r.applySaved(ctx, name, func(planFile string) error { return t.ApplyPlan(ctx, planFile) })
	if !saved && err == nil {
		err = t.ApplyVars(ctx, d.needsRefresh(name, st, live), vars)
	}
	if err != nil {
		return true, note, err
	}
	after, err := r.helm.Last(name)
	if err != nil {
		return true, note, err
	}
	if rel, ran := live.Releases[name]; ran && after != nil && after.Version == rel.Version {
		return false, note, nil
	}
	if action == "removed" {
		if err := t.DeleteWorkspace(ctx, r.workspace(name)); err != nil {
			fmt.Fprintf(r.Out, "  note: the empty workspace %s was left: %v\n", r.workspace(name), err)
		}
	}
	return true, note, nil
}

// adopt imports a release that runs without a state into the service's workspace, and says so.
func (r *Runner) adopt(ctx context.Context, t *tf.Runner, name, varsPath string) (string, error) {
	rel, err := r.helm.Last(name)
	if err != nil || rel == nil {
		return "", fmt.Errorf("release %s to adopt: %v", name, err)
	}
	addr := fmt.Sprintf("module.service[%q].helm_release.this", name)
	if err := t.Import(ctx, addr, r.S.Namespace+"/"+name, varsPath); err != nil {
		return "", err
	}
	msg := fmt.Sprintf("adopted release %s (revision %d, %s) into the state of %s: it ran in %s, but the state did not know it",
		name, rel.Version, rel.Info.Status, r.S.Env, r.S.Namespace)
	fmt.Fprintf(r.Out, "  %s\n", msg)
	return msg, nil
}

// withoutKeys is m less the keys of drop.
func withoutKeys[V any](m map[string]string, drop map[string]V) map[string]string {
	out := maps.Clone(m)
	for k := range drop {
		delete(out, k)
	}
	return out
}

// changedServices maps each service the plan changes to what happens to it.
func changedServices(changes []tf.Change) map[string]string {
	out := map[string]string{}
	for _, c := range changes {
		rest, ok := strings.CutPrefix(c.Module, `module.service["`)
		name, tail, found := strings.Cut(rest, `"]`)
		if !ok || !found || tail != "" || name == "" {
			continue // not a service's module
		}
		switch {
		case slices.Contains(c.Actions, "delete") && !slices.Contains(c.Actions, "create"):
			out[name] = "removed"
		case slices.Contains(c.Actions, "create") && !slices.Contains(c.Actions, "delete"):
			out[name] = "installed"
		default:
			out[name] = "upgraded"
		}
	}
	return out
}

// describe says what happens to each changed service; past a few, it counts them by action.
func describe(changed map[string]string) string {
	var parts []string
	if len(changed) <= 6 {
		for _, name := range slices.Sorted(maps.Keys(changed)) {
			parts = append(parts, name+" "+changed[name])
		}
		return strings.Join(parts, ", ")
	}
	count := map[string]int{}
	for _, action := range changed {
		count[action]++
	}
	for _, action := range slices.Sorted(maps.Keys(count)) {
		parts = append(parts, fmt.Sprintf("%d %s", count[action], action))
	}
	return strings.Join(parts, ", ")
}

// waitAll follows the rollouts of the applied services at once, failing fast, and returns how
// long each took to be ready, and why each that failed did.
func (r *Runner) waitAll(ctx context.Context, applied map[string]string) (map[string]time.Duration, map[string]error) {
	took := map[string]time.Duration{}
	failures := map[string]error{}
	names := changed(applied)
	if len(names) == 0 {
		return took, failures
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	_ = r.step("rollout "+list(names), func() error {
		start := time.Now()
		w, err := rollout.NewWatch(ctx, r.clients, r.S.Namespace, names...)
		if err != nil {
			for _, name := range names {
				failures[name] = err
			}
			return err
		}
		defer w.Stop()
		for _, name := range names {
			wg.Go(func() {
				err := rollout.Wait(ctx, w, name, r.S.Rules, prefixed(r.Out, name))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failures[name] = err
					return
				}
				took[name] = time.Since(start)
			})
		}
		wg.Wait()
		return joinFailures(failures)
	})
	return took, failures
}

// failed puts every service this run changed back where it was, when the apply or a rollout
// failed or was interrupted: a release that was upgraded is rolled back to its previous
// revision (its secret version with it), a release this run installed is removed, and the
// Terraform state is refreshed, so that it records what runs. It returns the error to report,
// naming what was left in what state.
func (r *Runner) failed(ctx context.Context, cause error, changed map[string]string, before map[string]int, what string) error {
	ctx = context.WithoutCancel(ctx)
	var report []string
	for _, name := range slices.Sorted(maps.Keys(changed)) {
		last, err := r.helm.Last(name)
		if err != nil || last == nil {
			continue
		}
		prev, existed := before[name]
		switch {
		case last.Version == prev && !last.Info.Status.IsPending():
			report = append(report, fmt.Sprintf("%s: unchanged at revision %d", name, prev))
		case !existed && changed[name] == "installed":
			if err := r.helm.Uninstall(name); err != nil {
				report = append(report, fmt.Sprintf("%s: could not be removed (%v); the next deploy recovers it", name, err))
				continue
			}
			report = append(report, fmt.Sprintf("%s: its first install was removed", name))
		default:
			if last.Info.Status.IsPending() {
				if _, err := r.helm.Recover(name); err != nil {
					report = append(report, fmt.Sprintf("%s: left %s (%v); the next deploy recovers it", name, last.Info.Status, err))
					continue
				}
			} else if _, err := r.helm.Rollback(name, prev); err != nil {
				report = append(report, fmt.Sprintf("%s: could not be rolled back (%v)", name, err))
				continue
			}
			report = append(report, fmt.Sprintf("%s: rolled back to revision %d (its previous values and secret version)", name, prev))
		}
	}
	state := "the Terraform states were refreshed to record what runs"
	if err := forEach(slices.Sorted(maps.Keys(changed)), terraformAtOnce, func(name string) error {
		t, ok := r.serviceTFs[name]
		if !ok {
			return nil
		}
		return t.Refresh(ctx, filepath.Join(r.serviceDataDir("deploy", name), "services.tfvars.json"))
	}); err != nil {
		state = fmt.Sprintf("a Terraform state could not be refreshed (%v); the next deploy or plan refreshes it", err)
	}
	return fmt.Errorf("%s in %s: %w\n\nwhat was left:\n  %s\n  %s", what, r.S.Env, cause, strings.Join(report, "\n  "), state)
}

// smokeAll checks the applied services, several at once, and keeps each one's /config for
// the summary.
func (r *Runner) smokeAll(ctx context.Context, d *Desired, applied map[string]string) error {
	// The run's own services: one it keeps, passed back as it ran, is re-applied at most.
	names := slices.DeleteFunc(changed(applied), func(name string) bool { return d.Want[name] == nil })
	if len(names) == 0 {
		return nil
	}
	return r.step("smoke check "+list(names), func() error {
		ca, err := r.frontDoorCA(ctx)
		if err != nil {
			return err
		}
		// One client for every check through the front door: its connections are reused.
		front, err := cluster.LoopbackClient(ca, 2*time.Second)
		if err != nil {
			return err
		}
		defer front.CloseIdleConnections()
		return forEach(names, 8, func(name string) error {
			cfg, err := r.smoke(ctx, d.Want[name], front)
			d.Want[name].smoked = cfg // each its own Want: no two goroutines write one
			return err
		})
	})
}

// smoke checks one service through a port-forward: /readyz answers and /config names the
// environment; on the embedded cluster its front door answers too. It returns its /config.
func (r *Runner) smoke(ctx context.Context, w *Want, front *http.Client) (map[string]any, error) {
	name := w.Service.Name
	svc, err := r.clients.CoreV1().Services(r.S.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("no Service %s in %s", name, r.S.Namespace)
	}
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	err = retrySmoke(ctx, smokeRetryFor, func() error {
		fwd, err := rollout.ForwardService(ctx, r.kube, r.clients, r.S.Namespace, svc.Name, server.PortName)
		if err != nil {
			return err
		}
		defer fwd.Close()
		cfg, err = Smoke(ctx, fwd.URL, r.S.Env)
		return err
	}, func(err error) { fmt.Fprintf(r.Out, "  %s: asking again (%v)\n", name, err) })
	if err != nil {
		return cfg, err
	}
	if w.FrontURL != "" {
		// The URL the summary prints must answer: the controller loads a new route within a
		// second.
		if err := answers(ctx, front, w.FrontURL, 30*time.Second); err != nil {
			return cfg, fmt.Errorf("the front door %s: %w", w.FrontURL, err)
		}
	}
	return cfg, nil
}

// publicURL is where a person reaches the service: the front door on 127.0.0.1 on the
// embedded cluster, else its public URL, else how to port-forward to it.
func (r *Runner) publicURL(w *Want) string {
	name, merged := w.Service.Name, w.Merged
	if w.FrontURL != "" {
		return w.FrontURL
	}
	if r.S.Local && r.S.Cluster.Gateway == cluster.GatewayNone {
		return fmt.Sprintf("none (LOCAL_GATEWAY=none): kubectl -n %s port-forward svc/%s 8080:%d", r.S.Namespace, name, port(merged))
	}
	if dig(w.FrontDoor, "httpRoute", "enabled") == true {
		if addr, err := cluster.GatewayAddress(context.Background(), r.S.Cluster); err == nil && addr != "" {
			host := fmt.Sprintf("%s.%s", name, dig(merged, "domain"))
			return fmt.Sprintf("http://%s (resolve %s to the Gateway's %s)", host, host, addr)
		}
	}
	if u, ok := r.S.BaseURLs[name]; ok {
		return u
	}
	if exposed(merged) {
		if u, _ := dig(merged, "baseUrl").(string); u != "" {
			return u
		}
		if d, _ := dig(merged, "domain").(string); d != "" {
			scheme := "http"
			if tls, _ := dig(merged, "ingress", "tls", "enabled").(bool); tls {
				scheme = "https"
			}
			return fmt.Sprintf("%s://%s.%s", scheme, name, d)
		}
	}
	return fmt.Sprintf("none: kubectl -n %s port-forward svc/%s 8080:%d", r.S.Namespace, name, port(merged))
}

// pruneSecrets removes secret versions no revision of the applied releases still mounts; the
// version the pods mount now (live, read after the rollouts) is always kept.
func (r *Runner) pruneSecrets(ctx context.Context, applied map[string]string, live Live) {
	store := secrets.Store{Clients: r.clients, Namespace: r.S.Namespace, Env: r.S.Env}
	for _, name := range changed(applied) {
		if !r.S.secretsTouched(name) {
			continue
		}
		hist, err := r.helm.History(name)
		if err != nil {
			continue
		}
		var inUse []string
		for _, rel := range hist {
			if n := release.SecretName(rel); n != "" {
				inUse = append(inUse, n)
			}
		}
		if removed, err := store.Prune(ctx, name, inUse, live.runningSecret(name)); err == nil && len(removed) > 0 {
			fmt.Fprintf(r.Out, "  removed old secret versions of %s: %s\n", name, strings.Join(removed, ", "))
		}
	}
}

func short(digest string) string {
	if d, ok := strings.CutPrefix(digest, "sha256:"); ok && len(d) > 12 {
		return "sha256:" + d[:12]
	}
	return digest
}

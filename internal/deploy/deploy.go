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
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/cluster"
	"github.com/dtap-platform/monorepo/internal/environments"
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

// Result is the summary of a deploy.
type Result struct {
	Env       string
	Namespace string
	Changed   bool // false when Terraform had nothing to change
	Rows      []Row
	Notes     []string
	Steps     []Step
}

// Row returns the summary row of a service.
func (r *Result) Row(service string) (Row, bool) {
	i := slices.IndexFunc(r.Rows, func(x Row) bool { return x.Service == service })
	if i < 0 {
		return Row{}, false
	}
	return r.Rows[i], true
}

// built is one service's image: its inputs, whether this run built it, and its digest.
type built struct {
	svc    services.Service
	ref    image.Ref // repository:tag@digest in the registry
	built  bool
	merged map[string]any
}

// Deploy takes the current source of the run's services to running, smoke-checked releases
// in the environment. Everything is validated by Resolve before this runs; the first side
// effect is the local cluster (when it is the target and missing).
func Deploy(ctx context.Context, r *Runner) (*Result, error) {
	s := r.S
	res := &Result{Env: s.Env, Namespace: s.Namespace}
	if err := r.step("preflight", func() error { return r.Preflight(ctx, !s.SkipBuild) }); err != nil {
		return nil, err
	}
	existing, err := r.CheckNamespace(ctx, "deploy")
	if err != nil {
		return nil, err
	}
	if err := r.ensureLocalCluster(ctx); err != nil {
		return nil, err
	}
	if err := r.step("lock "+s.Env, func() error {
		if err := r.ensureStateNamespace(ctx); err != nil {
			return err
		}
		return r.acquireLock(ctx)
	}); err != nil {
		return nil, err
	}
	defer r.releaseLock()

	var st State
	if err := r.step("terraform init, state of "+s.Env, func() error {
		if err := r.initTerraform(ctx, "deploy"); err != nil {
			return err
		}
		var err error
		if st, err = r.readState(ctx, true); err != nil {
			return err
		}
		if err := r.migrateLocalState(ctx); err != nil {
			return err
		}
		st, err = r.readState(ctx, true)
		return err
	}); err != nil {
		return nil, err
	}
	if st.Namespace != "" && st.Namespace != s.Namespace {
		return nil, fmt.Errorf("environment %s runs in namespace %s (its state says so), not %s: set NAMESPACE=%s to deploy there, or destroy it first to move it",
			s.Env, st.Namespace, s.Namespace, st.Namespace)
	}
	keep, err := r.kept(st)
	if err != nil {
		return nil, err
	}
	if err := r.step("recover releases left pending", func() error { return r.recoverPending(res) }); err != nil {
		return nil, err
	}
	adoptees, err := r.adoptable(st, keep)
	if err != nil {
		return nil, err
	}

	images, err := r.images(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.step("namespace "+s.Namespace, func() error { return r.ensureNamespace(ctx, existing) }); err != nil {
		return nil, err
	}
	secretNames, err := r.writeSecrets(ctx, res)
	if err != nil {
		return nil, err
	}
	frontDoors, err := r.frontDoors(ctx, images, res)
	if err != nil {
		return nil, err
	}

	// What Terraform applies: the run's services from the source, the others as they run.
	svcs := maps.Clone(keep)
	digest, err := chart.Digest(filepath.Join(s.RepoRoot, environments.ChartDir))
	if err != nil {
		return nil, err
	}
	peers := map[string]int{}
	for name := range svcs {
		if svc, ok := s.Service(name); ok {
			if m, err := s.merged(svc); err == nil {
				peers[name] = port(m)
			}
		}
	}
	for _, b := range images {
		peers[b.svc.Name] = port(b.merged)
	}
	for _, b := range images {
		set := s.overrides(b.svc, b.merged, deploySet{chartDigest: digest, secret: secretNames[b.svc.Name], peers: peers, frontDoor: frontDoors[b.svc.Name]}, &res.Notes)
		docs, err := s.serviceValues(b.svc, set)
		if err != nil {
			return nil, err
		}
		svcs[b.svc.Name] = ServiceInputs{ImageRepository: b.ref.Repository, ImageTag: b.ref.Tag, ImageDigest: b.ref.Digest, Values: docs}
	}
	varsPath, err := r.writeVars("deploy", svcs)
	if err != nil {
		return nil, err
	}
	if len(adoptees) > 0 {
		if err := r.step("adopt "+strings.Join(adoptees, ", "), func() error { return r.adopt(ctx, adoptees, varsPath, res) }); err != nil {
			return nil, err
		}
	}

	planFile := filepath.Join(r.dataDir("deploy"), "deploy.tfplan")
	defer os.Remove(planFile)
	var changes []tf.Change
	if err := r.step("terraform plan", func() error {
		changed, err := r.tfr.Plan(ctx, planFile, false, varsPath)
		if err != nil || !changed {
			return err
		}
		changes, err = r.tfr.PlanChanges(ctx, planFile)
		return err
	}); err != nil {
		return nil, err
	}
	changed := changedServices(changes)
	res.Changed = len(changes) > 0
	before, err := r.revisions(slices.Collect(maps.Keys(changed)))
	if err != nil {
		return nil, err
	}
	if r.lockLost() {
		return nil, fmt.Errorf("the deploy lock of %s was broken while this run held it (go run mage.go unlock by someone else?): nothing was applied; run deploy again", s.Env)
	}
	if !res.Changed {
		fmt.Fprintln(r.Out, "  no changes: every release is up to date, nothing to apply")
	} else if err := r.step("terraform apply ("+describe(changed)+")", func() error { return r.tfr.Apply(ctx, planFile) }); err != nil {
		return nil, r.failed(ctx, err, changed, before, varsPath, "the apply failed")
	}

	readyIn, err := r.waitAll(ctx, changed, res)
	if err != nil {
		return nil, r.failed(ctx, err, changed, before, varsPath, "the rollout failed")
	}
	r.describe(changed, func(name string) string {
		in := svcs[name]
		return fmt.Sprintf("deployed %s:%s", name, in.ImageTag)
	})
	for _, b := range images {
		if err := r.step("smoke check "+b.svc.Name, func() error {
			row, err := r.smoke(ctx, b, changed[b.svc.Name], readyIn[b.svc.Name], frontDoors[b.svc.Name])
			res.Rows = append(res.Rows, row)
			return err
		}); err != nil {
			return nil, err
		}
	}
	for name, action := range changed {
		if action == "removed" {
			res.Rows = append(res.Rows, Row{Service: name, Change: "removed"})
		}
	}
	slices.SortFunc(res.Rows, func(a, b Row) int { return strings.Compare(a.Service, b.Service) })
	r.pruneSecrets(ctx, images)
	if err := r.remember(); err != nil {
		fmt.Fprintf(r.Out, "  note: could not record this deploy for a bare `mage destroy`: %v\n", err)
	}
	res.Steps = r.steps
	return res, nil
}

// kept are the services the state holds and this run does not deploy: passed back with the
// inputs they were last applied with, so they stay exactly as they run (a release the state
// holds without its inputs, as after a migration, is passed back as the release runs it). A
// service whose folder is gone is removed only when CONFIRM_REMOVE names it.
func (r *Runner) kept(st State) (map[string]ServiceInputs, error) {
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
			var err error
			if in, err = r.runningInputs(name); err != nil {
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
func (r *Runner) runningInputs(name string) (ServiceInputs, error) {
	rel, err := r.helm.Last(name)
	if err != nil {
		return ServiceInputs{}, err
	}
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

// recoverPending repairs the releases a killed run left pending, before anything else runs.
func (r *Runner) recoverPending(res *Result) error {
	rels, err := r.helm.List()
	if err != nil {
		return err
	}
	for _, rel := range rels {
		if !rel.Info.Status.IsPending() {
			continue
		}
		if release.Owned(rel, rel.Name, r.S.Env) != nil {
			continue // not ours: never touched
		}
		msg, err := r.helm.Recover(rel.Name)
		if err != nil {
			return err
		}
		if msg != "" {
			fmt.Fprintf(r.Out, "  recovered: %s\n", msg)
			res.Notes = append(res.Notes, "recovered: "+msg)
		}
	}
	return nil
}

// images resolves the run's images: content tags (or IMAGE_TAG), looked up in the registry;
// what is missing is built, all at once, then published with reproducible bytes.
func (r *Runner) images(ctx context.Context) ([]built, error) {
	s := r.S
	var out []built
	manifests, err := inputs.OfAll(ctx, s.RepoRoot, s.Run, image.InputOptions(ctx))
	if err != nil {
		return nil, err
	}
	var specs []image.Spec
	err = r.step("images: look up "+strings.Join(services.Names(s.Run), ", ")+" in "+s.Registry, func() error {
		for _, svc := range s.Run {
			m := manifests[svc.Name]
			// The content tag names the image; IMAGE_TAG, when set, is added beside it (a
			// pipeline's pr-<number>), except with SKIP_BUILD, where it names an image built
			// elsewhere.
			tag := m.Tag()
			if s.SkipBuild && s.ImageTag != "" {
				tag = s.ImageTag
			}
			repo := s.ImageRepository(svc.Name)
			merged, err := s.merged(svc)
			if err != nil {
				return err
			}
			b := built{svc: svc, ref: image.Ref{Repository: repo, Tag: tag}, merged: merged}
			if pin, ok := s.Pins[svc.Name]; ok {
				// Promotion: exactly the image that runs upstream, copied by digest when the
				// registries differ; never rebuilt.
				ref, err := image.Copy(ctx, pin, repo)
				if err != nil {
					return err
				}
				b.ref = ref
				fmt.Fprintf(r.Out, "  %-10s %s (promoted, not rebuilt)\n", svc.Name, ref)
				out = append(out, b)
				continue
			}
			digest, err := image.Lookup(ctx, repo, tag)
			switch {
			case err != nil && !s.SkipBuild:
				return err
			case err != nil:
				fmt.Fprintf(r.Out, "  %s: %v; deploying %s:%s by tag, the cluster pulls it\n", svc.Name, err, repo, tag)
			case digest != "":
				b.ref.Digest = digest
				fmt.Fprintf(r.Out, "  %-10s %s:%s is in the registry (%s): not rebuilt\n", svc.Name, repo, tag, short(digest))
			case s.SkipBuild:
				fmt.Fprintf(r.Out, "  %-10s %s:%s is not in the registry and SKIP_BUILD=true: deploying it by tag; the cluster's pull decides\n", svc.Name, repo, tag)
			default:
				b.built = true
				specs = append(specs, image.Spec{Service: svc.Name, Inputs: m, Revision: inputs.RevisionOf(ctx, s.RepoRoot, m),
					Ref: image.Ref{Repository: repo, Tag: tag}})
			}
			out = append(out, b)
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	if len(specs) == 0 {
		return out, r.addPipelineTag(ctx, out)
	}
	var names []string
	for _, sp := range specs {
		names = append(names, sp.Service)
	}
	if err := r.step("build "+strings.Join(names, ", "), func() error { return image.BuildAll(ctx, s.RepoRoot, specs, r.Out) }); err != nil {
		return nil, err
	}
	err = r.step("publish "+strings.Join(names, ", ")+" to "+s.Registry, func() error {
		for _, sp := range specs {
			digest, err := image.Publish(ctx, sp, sp.Ref.Repository)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(out, func(b built) bool { return b.svc.Name == sp.Service })
			out[i].ref.Digest = digest
			fmt.Fprintf(r.Out, "  %-10s %s:%s@%s (revision %s)\n", sp.Service, sp.Ref.Repository, sp.Ref.Tag, short(digest), sp.Revision)
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	return out, r.addPipelineTag(ctx, out)
}

// addPipelineTag tags each image, in its registry, with IMAGE_TAG too (beside its content tag,
// which stays the image's name), and deploys it under that tag.
func (r *Runner) addPipelineTag(ctx context.Context, images []built) error {
	if r.S.ImageTag == "" || r.S.SkipBuild {
		return nil
	}
	for i, b := range images {
		if b.ref.Digest == "" || r.S.Pins[b.svc.Name].Digest != "" {
			continue
		}
		if err := image.Tag(ctx, b.ref, r.S.ImageTag); err != nil {
			return err
		}
		images[i].ref.Tag = r.S.ImageTag
	}
	return nil
}

// writeSecrets writes each run service's SECRET_* values as a versioned Secret, and returns
// the version each service mounts: a new one when the values changed, the running one when
// they did not or when none were given.
func (r *Runner) writeSecrets(ctx context.Context, res *Result) (map[string]string, error) {
	names := map[string]string{}
	store := secrets.Store{Clients: r.clients, Namespace: r.S.Namespace, Env: r.S.Env}
	err := r.step("secrets", func() error {
		for _, svc := range r.S.Run {
			last, err := r.helm.Last(svc.Name)
			if err != nil {
				return err
			}
			current := release.SecretName(last)
			if !strings.HasPrefix(current, svc.Name+"-secrets-") {
				current = "" // a Secret of the user's own (secret.existingSecret): theirs to set
			}
			data, given := r.S.Secrets[svc.Name]
			if !given {
				if current != "" {
					names[svc.Name] = current
				}
				continue
			}
			name, created, err := store.Apply(ctx, svc.Name, data, current)
			if err != nil {
				return err
			}
			names[svc.Name] = name
			verb := "unchanged, keeps"
			if created {
				verb = "new version"
			}
			fmt.Fprintf(r.Out, "  %-10s keys %s: %s %s\n", svc.Name, strings.Join(r.S.SecretKeys(svc.Name), ", "), verb, name)
		}
		return nil
	})
	return names, err
}

// adoptable lists the services this run applies (its own and those it keeps) whose release runs
// in the namespace while the state does not hold it (state lost, or installed by hand), once
// each proves to be this project's release of that service in this environment. A foreign
// release of the same name is refused, before anything is built or written.
func (r *Runner) adoptable(st State, keep map[string]ServiceInputs) ([]string, error) {
	names := services.Names(r.S.Run)
	for name := range keep {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []string
	for _, name := range slices.Compact(names) {
		if st.Managed[name] {
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

// adopt imports the releases into the state, and says so.
func (r *Runner) adopt(ctx context.Context, names []string, varsPath string, res *Result) error {
	for _, name := range names {
		rel, err := r.helm.Last(name)
		if err != nil || rel == nil {
			return fmt.Errorf("release %s to adopt: %v", name, err)
		}
		addr := fmt.Sprintf("module.service[%q].helm_release.this", name)
		if err := r.tfr.Import(ctx, addr, r.S.Namespace+"/"+name, varsPath); err != nil {
			return err
		}
		msg := fmt.Sprintf("adopted release %s (revision %d, %s) into the state of %s: it ran in %s, but the state did not know it",
			name, rel.Version, rel.Info.Status, r.S.Env, r.S.Namespace)
		fmt.Fprintf(r.Out, "  %s\n", msg)
		res.Notes = append(res.Notes, msg)
	}
	return nil
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

func describe(changed map[string]string) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(changed)) {
		parts = append(parts, name+" "+changed[name])
	}
	return strings.Join(parts, ", ")
}

// revisions are the releases' current revisions (0: not installed), before an apply.
func (r *Runner) revisions(names []string) (map[string]int, error) {
	out := map[string]int{}
	for _, n := range names {
		rel, err := r.helm.Last(n)
		if err != nil {
			return nil, fmt.Errorf("read release %s before the apply (what to roll back to if it fails): %w", n, err)
		}
		if rel != nil {
			out[n] = rel.Version
		}
	}
	return out, nil
}

// waitAll follows the rollouts of the changed services at once, failing fast, and returns how
// long each took to be ready.
func (r *Runner) waitAll(ctx context.Context, changed map[string]string, res *Result) (map[string]time.Duration, error) {
	took := map[string]time.Duration{}
	var names []string
	for name, action := range changed {
		if action != "removed" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return took, nil
	}
	slices.Sort(names)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	err := r.step("rollout "+strings.Join(names, ", "), func() error {
		start := time.Now()
		for _, name := range names {
			wg.Go(func() {
				err := rollout.Wait(ctx, r.clients, r.S.Namespace, name, r.S.Rules, prefixed(r.Out, name))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
					return
				}
				took[name] = time.Since(start)
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	return took, err
}

// failed puts every service this run changed back where it was, when the apply or a rollout
// failed or was interrupted: a release that was upgraded is rolled back to its previous
// revision (its secret version with it), a release this run installed is removed, and the
// Terraform state is refreshed, so that it records what runs. It returns the error to report,
// naming what was left in what state.
func (r *Runner) failed(ctx context.Context, cause error, changed map[string]string, before map[string]int, varsPath, what string) error {
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
	state := "the Terraform state was refreshed to record what runs"
	if err := r.tfr.Refresh(ctx, varsPath); err != nil {
		state = fmt.Sprintf("the Terraform state could not be refreshed (%v); the next deploy or plan refreshes it", err)
	}
	return fmt.Errorf("%s in %s: %w\n\nwhat was left:\n  %s\n  %s", what, r.S.Env, cause, strings.Join(report, "\n  "), state)
}

// smoke checks one service through a port-forward: /readyz answers and /config names the
// environment. It returns the service's summary row.
func (r *Runner) smoke(ctx context.Context, b built, action string, ready time.Duration, frontDoor map[string]any) (Row, error) {
	row := Row{Service: b.svc.Name, Change: or(action, "unchanged"), Image: b.ref, Ready: ready}
	if action == "upgraded" {
		row.Change = "rolled"
	}
	if last, err := r.helm.Last(b.svc.Name); err == nil && last != nil {
		row.Revision = last.Version
	}
	row.URL = r.publicURL(b, frontDoor)
	svc, err := r.clients.CoreV1().Services(r.S.Namespace).Get(ctx, b.svc.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return row, fmt.Errorf("no Service %s in %s", b.svc.Name, r.S.Namespace)
	}
	if err != nil {
		return row, err
	}
	fwd, err := rollout.ForwardService(ctx, r.kube, r.clients, r.S.Namespace, svc.Name, server.PortName)
	if err != nil {
		return row, err
	}
	defer fwd.Close()
	if row.Config, err = Smoke(ctx, fwd.URL, r.S.Env); err != nil {
		return row, err
	}
	if dig(frontDoor, "service", "nodePort") != nil {
		// The URL the summary prints must answer: kube-proxy programs a new node port within
		// a few seconds.
		if err := answers(ctx, row.URL, 30*time.Second); err != nil {
			return row, fmt.Errorf("the front door %s: %w", row.URL, err)
		}
	}
	return row, nil
}

// publicURL is where a person reaches the service: the front door's 127.0.0.1 port on the
// embedded cluster, else its public URL, else how to port-forward to it.
func (r *Runner) publicURL(b built, frontDoor map[string]any) string {
	if p, ok := dig(frontDoor, "service", "nodePort").(int); ok && p > 0 {
		return fmt.Sprintf("http://127.0.0.1:%d", p)
	}
	if dig(frontDoor, "httpRoute", "enabled") == true {
		if addr, err := cluster.GatewayAddress(context.Background(), r.S.Cluster); err == nil && addr != "" {
			host := fmt.Sprintf("%s.%s", b.svc.Name, dig(b.merged, "domain"))
			return fmt.Sprintf("http://%s (resolve %s to the Gateway's %s)", host, host, addr)
		}
	}
	if u, ok := r.S.BaseURLs[b.svc.Name]; ok {
		return u
	}
	if exposed(b.merged) {
		if u, _ := dig(b.merged, "baseUrl").(string); u != "" {
			return u
		}
		if d, _ := dig(b.merged, "domain").(string); d != "" {
			scheme := "http"
			if tls, _ := dig(b.merged, "ingress", "tls", "enabled").(bool); tls {
				scheme = "https"
			}
			return fmt.Sprintf("%s://%s.%s", scheme, b.svc.Name, d)
		}
	}
	return fmt.Sprintf("none: kubectl -n %s port-forward svc/%s 8080:%d", r.S.Namespace, b.svc.Name, port(b.merged))
}

// pruneSecrets removes secret versions no revision of the release still mounts.
func (r *Runner) pruneSecrets(ctx context.Context, images []built) {
	store := secrets.Store{Clients: r.clients, Namespace: r.S.Namespace, Env: r.S.Env}
	for _, b := range images {
		hist, err := r.helm.History(b.svc.Name)
		if err != nil {
			continue
		}
		var inUse []string
		for _, rel := range hist {
			if n := release.SecretName(rel); n != "" {
				inUse = append(inUse, n)
			}
		}
		if removed, err := store.Prune(ctx, b.svc.Name, inUse); err == nil && len(removed) > 0 {
			fmt.Fprintf(r.Out, "  removed old secret versions of %s: %s\n", b.svc.Name, strings.Join(removed, ", "))
		}
	}
}

func short(digest string) string {
	if d, ok := strings.CutPrefix(digest, "sha256:"); ok && len(d) > 12 {
		return "sha256:" + d[:12]
	}
	return digest
}

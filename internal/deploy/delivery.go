package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"

	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/lock"
	"github.com/dtap-platform/monorepo/internal/release"
	"github.com/dtap-platform/monorepo/internal/services"
)

// Actor is who or what runs a change, for the release history: DEPLOY_ACTOR, else the GitHub
// Actions actor and run, else user@host.
func Actor() string {
	if a := os.Getenv("DEPLOY_ACTOR"); a != "" {
		return a
	}
	if a := os.Getenv("GITHUB_ACTOR"); a != "" {
		return fmt.Sprintf("%s (GitHub Actions %s run %s)", a, os.Getenv("GITHUB_WORKFLOW"), os.Getenv("GITHUB_RUN_ID"))
	}
	h := lock.Me("", "")
	return h.User + "@" + h.Host
}

// describe records on the latest revision of each changed release what this run did and who
// ran it; `mage history` shows it.
func (r *Runner) describe(changed map[string]string, what func(service string) string) {
	for name, action := range changed {
		if action == "removed" {
			continue
		}
		if err := r.helm.Describe(name, what(name)+" by "+Actor()); err != nil {
			fmt.Fprintf(r.Out, "  note: could not record the change on release %s: %v\n", name, err)
		}
	}
}

// Running is the image a service's release runs, read from the cluster.
func (r *Runner) Running(service string) (image.Ref, int, error) {
	rel, err := r.helm.Last(service)
	if err != nil {
		return image.Ref{}, 0, err
	}
	if rel == nil || rel.Info.Status != helmrelease.StatusDeployed {
		return image.Ref{}, 0, fmt.Errorf("service %s has no deployed release in %s (namespace %s)", service, r.S.Env, r.S.Namespace)
	}
	return imageOf(rel), rel.Version, nil
}

func imageOf(rel *helmrelease.Release) image.Ref {
	img, _ := rel.Config["image"].(map[string]any)
	str := func(k string) string { v, _ := img[k].(string); return v }
	return image.Ref{Repository: str("repository"), Tag: str("tag"), Digest: str("digest")}
}

// Promote deploys to `to` exactly the images that run in `from`, read from from's cluster and
// copied by digest when the registries differ; nothing is built. With commit set, it first
// checks that from runs the content tags of that commit's services, and refuses with the
// difference when it does not.
func Promote(ctx context.Context, from, to *Runner, commit, skipUpstream string) (*Result, error) {
	if err := from.step("read what runs in "+from.S.Env, func() error { return from.Preflight(ctx, false) }); err != nil {
		return nil, err
	}
	if from.clients == nil {
		return nil, fmt.Errorf("nothing runs in %s: its cluster does not exist", from.S.Env)
	}
	if _, err := from.CheckNamespace(ctx, "promote from"); err != nil {
		return nil, err
	}
	pins := map[string]image.Ref{}
	revisions := map[string]int{}
	for _, svc := range to.S.Run {
		ref, rev, err := from.Running(svc.Name)
		if err != nil {
			return nil, fmt.Errorf("cannot promote %s from %s: %w; deploy it there first, or leave it out with SERVICES", svc.Name, from.S.Env, err)
		}
		if ref.Digest == "" {
			return nil, fmt.Errorf("cannot promote %s from %s: it runs %s by tag, not by digest, so what was tested cannot be pinned", svc.Name, from.S.Env, ref)
		}
		pins[svc.Name], revisions[svc.Name] = ref, rev
		fmt.Fprintf(to.Out, "  %-10s %s runs %s (revision %d)\n", svc.Name, from.S.Env, ref, rev)
	}
	if commit != "" {
		if err := checkCommit(ctx, to.S, commit, pins); err != nil {
			return nil, err
		}
	}
	if err := to.VerifyPins(ctx, pins); err != nil {
		return nil, err
	}
	to.S.Pins = pins
	res, err := Deploy(ctx, to)
	if err != nil {
		return nil, err
	}
	changed := map[string]string{}
	for _, row := range res.Rows {
		if !row.Untouched() {
			changed[row.Service] = row.Change
		}
	}
	to.describe(changed, func(svc string) string {
		note := fmt.Sprintf("promoted from %s (revision %d, %s)", from.S.Env, revisions[svc], pins[svc].Digest)
		if skipUpstream != "" {
			note += fmt.Sprintf(", not from its upstream %s: %s", or(to.S.Upstream, "(none)"), skipUpstream)
		}
		return note
	})
	return res, nil
}

// CheckUpstream refuses a promotion that skips the pipeline: from must be to's upstream in
// environments.yaml, unless skip gives the reason to go around it.
func CheckUpstream(from, to Settings, skip string) error {
	if from.Env == to.Upstream {
		if skip != "" {
			return fmt.Errorf("promote %s %s: %s is %s's upstream, so -skip is not needed; nothing was done. Drop it", from.Env, to.Env, from.Env, to.Env)
		}
		return nil
	}
	if strings.TrimSpace(skip) != "" {
		return nil
	}
	if to.Upstream == "" {
		return fmt.Errorf("promote %s %s: %s has no upstream in environments.yaml, it is built from source; nothing was done. Deploy it (go run mage.go deploy %s), or promote with -skip=\"<why>\"", from.Env, to.Env, to.Env, to.Env)
	}
	return fmt.Errorf("promote %s %s: %s's images come from %s (environments.yaml upstream), not %s; nothing was done. Promote from %s (go run mage.go promote %s %s), or give the reason to skip it: -skip=\"<why>\"",
		from.Env, to.Env, to.Env, to.Upstream, from.Env, to.Upstream, to.Upstream, to.Env)
}

// checkCommit refuses a promotion whose images are not the content tags of the commit's
// services: another pull request's build may run in a shared staging.
func checkCommit(ctx context.Context, s Settings, commit string, pins map[string]image.Ref) error {
	dir, err := os.MkdirTemp("", "promote-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := inputs.Extract(ctx, s.RepoRoot, commit, dir); err != nil {
		return err
	}
	svcs, err := services.Discover(ctx, dir)
	if err != nil {
		return fmt.Errorf("services of commit %s: %w", commit, err)
	}
	manifests, err := inputs.OfAll(ctx, dir, svcs, image.InputOptions(ctx))
	if err != nil {
		return err
	}
	var diffs []string
	for _, name := range slices.Sorted(maps.Keys(pins)) {
		m, ok := manifests[name]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: not a service of commit %s", name, commit))
			continue
		}
		// The commit's build is its content tag; what runs must be that very digest.
		want, err := image.Lookup(ctx, pins[name].Repository, m.Tag())
		switch {
		case err != nil:
			return err
		case want == "":
			diffs = append(diffs, fmt.Sprintf("%s: runs %s, but commit %s's build (%s) was never pushed", name, short(pins[name].Digest), commit, m.Tag()))
		case want != pins[name].Digest:
			diffs = append(diffs, fmt.Sprintf("%s: runs %s, but commit %s's build (%s) is %s", name, short(pins[name].Digest), commit, m.Tag(), short(want)))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("refusing to promote: what runs is not commit %s's build (another change's build may run there):\n  %s", commit, strings.Join(diffs, "\n  "))
	}
	return nil
}

// Rollback puts each service of the run back at revision (0: the last deployed before the
// current one), its secret version with it, waits for the pods, and records in the Terraform
// state what runs now.
func Rollback(ctx context.Context, r *Runner, revision int) (*Result, error) {
	s := r.S
	if revision != 0 && len(s.Run) != 1 {
		return nil, fmt.Errorf("-revision=%d: revisions are per service; name one with SERVICES (services: %s)", revision, strings.Join(services.Names(s.Run), ", "))
	}
	res := &Result{Env: s.Env, Namespace: s.Namespace, Changed: true}
	defer r.stopProvider()
	if err := r.step("preflight", func() error { return r.Preflight(ctx, false) }); err != nil {
		return nil, err
	}
	if r.clients == nil {
		return nil, fmt.Errorf("nothing runs in %s: the local cluster does not exist", s.Env)
	}
	if _, err := r.CheckNamespace(ctx, "roll back"); err != nil {
		return nil, err
	}
	if err := r.step("lock "+s.Env, func() error { return r.acquireLock(ctx) }); err != nil {
		return nil, err
	}
	defer r.releaseLock()
	st, err := r.openState(ctx, "deploy")
	if err != nil {
		return nil, err
	}
	// Only what this environment's state says it deployed, where it deployed it: a rollback
	// in another namespace would act on another environment's releases and write that
	// namespace into this environment's state.
	if !st.Exists || len(st.Managed) == 0 {
		return nil, fmt.Errorf("%s has no release in its Terraform state: nothing of it to roll back (deploy it first: go run mage.go deploy %s)", s.Env, s.Env)
	}
	if st.Namespace != "" && st.Namespace != s.Namespace {
		return nil, fmt.Errorf("refusing to roll back %s in namespace %s: its state says it runs in %s; nothing was changed. Unset NAMESPACE, or set NAMESPACE=%s", s.Env, s.Namespace, st.Namespace, st.Namespace)
	}
	lasts := map[string]*helmrelease.Release{}
	for _, svc := range s.Run {
		last, err := r.helm.Last(svc.Name)
		if err != nil {
			return nil, err
		}
		if last == nil {
			return nil, fmt.Errorf("service %s has no release in %s", svc.Name, s.Env)
		}
		if err := release.Owned(last, svc.Name, s.Env); err != nil {
			return nil, fmt.Errorf("refusing to roll back %s: %w; nothing was changed", svc.Name, err)
		}
		lasts[svc.Name] = last
	}
	changed := map[string]string{}
	to := map[string]int{}
	err = r.step("roll back "+strings.Join(services.Names(s.Run), ", "), func() error {
		for _, svc := range s.Run {
			last := lasts[svc.Name]
			if revision == 0 && last.Version == 1 {
				fmt.Fprintf(r.Out, "  %-10s revision 1 is its first: nothing to roll back to, left as it runs\n", svc.Name)
				continue
			}
			n, err := r.helm.Rollback(svc.Name, revision)
			if err != nil {
				return err
			}
			to[svc.Name], changed[svc.Name] = n, "rolled back"
			fmt.Fprintf(r.Out, "  %-10s revision %d -> the content of revision %d\n", svc.Name, last.Version, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.describe(changed, func(svc string) string { return fmt.Sprintf("rolled back to revision %d", to[svc]) })
	rollouts := map[string]string{}
	for name := range changed {
		rollouts[name] = "upgraded"
	}
	readyIn, failures := r.waitAll(ctx, rollouts)
	if len(failures) > 0 {
		return nil, joinFailures(failures)
	}
	if err := r.step("record what runs in the state of "+s.Env, func() error { return r.recordRunning(ctx, slices.Collect(maps.Keys(changed))) }); err != nil {
		return nil, err
	}
	live, err := r.observe(ctx)
	if err != nil {
		return nil, err
	}
	for _, svc := range s.Run {
		w := &Want{Service: svc, Ref: live.runningImage(svc.Name)}
		w.Merged, _ = s.merged(svc)
		row := Row{Service: svc.Name, Change: or(changed[svc.Name], "unchanged"), Image: w.Ref, Ready: readyIn[svc.Name], URL: r.publicURL(w)}
		row.Revision = live.Releases[svc.Name].Version
		if changed[svc.Name] != "" {
			cfg, err := r.smoke(ctx, w, nil)
			row.Config = cfg
			if err != nil {
				res.Rows = append(res.Rows, row)
				return res, fmt.Errorf("smoke check %s: %w", svc.Name, err)
			}
		}
		res.Rows = append(res.Rows, row)
	}
	res.Steps = r.steps
	return res, nil
}

// recordRunning refreshes the named services' states and records in each the inputs of what
// runs now (as the live release holds them), so that what the state says is what runs.
func (r *Runner) recordRunning(ctx context.Context, names []string) error {
	return forEach(names, terraformAtOnce, func(name string) error {
		rel, err := r.helm.Last(name)
		if err != nil {
			return err
		}
		in, err := r.runningInputs(name, rel)
		if err != nil {
			return err
		}
		t, err := r.serviceTF(ctx, "deploy", name, false)
		if err != nil {
			return err
		}
		vars, err := r.writeServiceVars("deploy", name, &in)
		if err != nil {
			return err
		}
		return t.Refresh(ctx, vars)
	})
}

// HistoryRow is one revision of one service.
type HistoryRow struct {
	Service  string    `json:"service"`
	Revision int       `json:"revision"`
	Updated  time.Time `json:"updated"`
	Status   string    `json:"status"`
	Image    string    `json:"image"`
	Chart    string    `json:"chart"`
	What     string    `json:"what"` // who or what made it, and how
}

// History lists every revision of the environment's services, newest first per service.
func History(ctx context.Context, r *Runner) ([]HistoryRow, error) {
	if err := r.Preflight(ctx, false); err != nil {
		return nil, err
	}
	if r.clients == nil {
		return nil, nil
	}
	if _, err := r.CheckNamespace(ctx, "read the history of"); err != nil {
		return nil, err
	}
	var rows []HistoryRow
	for _, svc := range r.S.Run {
		hist, err := r.helm.History(svc.Name)
		if err != nil {
			return nil, err
		}
		for i := len(hist) - 1; i >= 0; i-- {
			rel := hist[i]
			img := imageOf(rel)
			ref := img.Repository + ":" + img.Tag
			if img.Digest != "" {
				ref = img.Repository + "@" + short(img.Digest)
			}
			chartName := ""
			if rel.Chart != nil && rel.Chart.Metadata != nil {
				chartName = rel.Chart.Metadata.Name + "-" + rel.Chart.Metadata.Version
			}
			rows = append(rows, HistoryRow{Service: svc.Name, Revision: rel.Version, Updated: rel.Info.LastDeployed.Time,
				Status: string(rel.Info.Status), Image: ref, Chart: chartName, What: rel.Info.Description})
		}
	}
	return rows, nil
}

// WriteHistory prints history rows as a table, or JSON.
func WriteHistory(w io.Writer, rows []HistoryRow, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tREVISION\tUPDATED\tSTATUS\tIMAGE\tCHART\tWHAT")
	for _, h := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", h.Service, h.Revision, h.Updated.Local().Format("2006-01-02 15:04:05"), h.Status, h.Image, h.Chart, h.What)
	}
	return tw.Flush()
}

// StatusRow is one service of one environment as it runs.
type StatusRow struct {
	Env       string `json:"env"`
	Service   string `json:"service"`
	Version   string `json:"version"`
	Digest    string `json:"digest"`
	Revision  int    `json:"revision"`
	Ready     int32  `json:"ready"`
	Desired   int32  `json:"desired"`
	Age       string `json:"age"`
	Upstream  string `json:"upstream"`
	Differs   *bool  `json:"differsFromUpstream,omitempty"` // nil: no upstream, or it does not run the service
	Reachable bool   `json:"reachable"`
	Note      string `json:"note,omitempty"`
	// Drift is each object of the release that is missing or differs from its manifest.
	Drift []string `json:"drift,omitempty"`
}

// Status reads, for each environment's runner, what its services run; it changes nothing.
func Status(ctx context.Context, runners []*Runner) []StatusRow {
	var rows []StatusRow
	digests := map[string]map[string]string{} // env -> service -> digest
	for _, r := range runners {
		env := r.S.Env
		digests[env] = map[string]string{}
		fail := func(note string) {
			rows = append(rows, StatusRow{Env: env, Service: "-", Upstream: r.S.Upstream, Note: note})
		}
		if err := r.Preflight(ctx, false); err != nil {
			fail("unreachable: " + err.Error())
			continue
		}
		if r.clients == nil {
			fail("the local cluster does not exist")
			continue
		}
		live, err := r.observe(ctx)
		if err != nil {
			fail("unreadable: " + err.Error())
			continue
		}
		rels, err := r.helm.Current()
		if err != nil {
			fail("unreadable: " + err.Error())
			continue
		}
		// The cheap look, then the full comparison of the services it points at.
		hints := driftHints(live, nil, slices.Sorted(maps.Keys(rels)))
		drifted, err := r.CheckDrift(ctx, hints)
		if err != nil {
			fail("drift unreadable: " + err.Error())
			continue
		}
		found := false
		for _, svc := range r.S.All {
			rel := rels[svc.Name]
			if rel == nil {
				continue
			}
			found = true
			img := imageOf(rel)
			row := StatusRow{Env: env, Service: svc.Name, Version: img.Tag, Digest: img.Digest, Revision: rel.Version,
				Upstream: r.S.Upstream, Reachable: true, Age: since(rel.Info.LastDeployed.Time)}
			if rel.Info.Status != helmrelease.StatusDeployed {
				row.Note = string(rel.Info.Status)
			}
			if d, ok := live.Deployments[svc.Name]; ok {
				row.Ready, row.Desired = d.Status.ReadyReplicas, 1
				if d.Spec.Replicas != nil {
					row.Desired = *d.Spec.Replicas
				}
			}
			if row.Drift = drifted.Lines(svc.Name); len(row.Drift) > 0 {
				row.Note = strings.TrimPrefix(row.Note+"; drifted: "+strings.Join(row.Drift, "; "), "; ")
			}
			digests[env][svc.Name] = img.Digest
			rows = append(rows, row)
		}
		if !found {
			fail("nothing deployed in namespace " + r.S.Namespace)
		}
	}
	for i, row := range rows {
		if up, ok := digests[row.Upstream][row.Service]; ok && row.Digest != "" {
			differs := up != row.Digest
			rows[i].Differs = &differs
		}
	}
	return rows
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// WriteStatus prints status rows as a table, or JSON.
func WriteStatus(w io.Writer, rows []StatusRow, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENV\tSERVICE\tVERSION\tDIGEST\tREVISION\tREADY\tAGE\tVS UPSTREAM\tNOTE")
	for _, r := range rows {
		vs := "-"
		if r.Differs != nil {
			vs = "same as " + r.Upstream
			if *r.Differs {
				vs = "differs from " + r.Upstream
			}
		}
		ready := "-"
		if r.Reachable {
			ready = fmt.Sprintf("%d/%d", r.Ready, r.Desired)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Env, r.Service, or(r.Version, "-"), or(short(r.Digest), "-"), r.Revision, ready, r.Age, vs, r.Note)
	}
	return tw.Flush()
}

// Render writes the environment's fully rendered manifests, every service of the run's, with
// every image pinned by the digest its content tag (or IMAGE_TAG) has in the registry. A
// service whose image is not in the registry is an error that names it: nothing is left
// unpinned. With dir set, each service goes to <dir>/<service>.yaml; else all to out. With pins
// set, the values deploy would set (the pinned image among them) go to
// <pins>/<env>/<service>.yaml instead, for Argo CD to give the chart (docs/gitops.md).
func Render(ctx context.Context, s Settings, out io.Writer, dir, pins string) error {
	r := NewRunner(s, io.Discard, "render "+s.Env)
	d, err := r.desire(ctx, State{}, Live{})
	if err != nil {
		return err
	}
	if err := r.resolve(ctx, d, d.Names()); err != nil {
		return err
	}
	var missing []string
	for _, name := range d.Names() {
		if w := d.Want[name]; w.Ref.Digest == "" {
			missing = append(missing, fmt.Sprintf("%s (%s:%s)", name, w.Ref.Repository, w.Tag))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not in the registry, so they cannot be pinned by digest: %s; build and push them first (go run mage.go deploy %s, or image:build and push in CI)", strings.Join(missing, ", "), s.Env)
	}
	if pins != "" && s.Signing != nil && s.Signing.Require {
		if err := r.verifyRefs(ctx, d, d.Names()); err != nil { // Argo CD deploys only verified digests
			return fmt.Errorf("render -pins %s: nothing was written: %w", s.Env, err)
		}
	}
	var dirs []string
	if dir != "" {
		dirs = append(dirs, dir)
	}
	if pins != "" {
		dirs = append(dirs, filepath.Join(pins, s.Env))
	}
	for _, p := range dirs {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	}
	for _, name := range d.Names() {
		w := d.Want[name]
		svc, ref := w.Service, w.Ref
		var set map[string]any
		if err := yaml.Unmarshal([]byte(w.Values[len(w.Values)-1]), &set); err != nil {
			return err
		}
		set["image"] = map[string]any{"repository": ref.Repository, "tag": ref.Tag, "digest": ref.Digest}
		if pins != "" {
			b, err := yaml.Marshal(set)
			if err != nil {
				return err
			}
			path := filepath.Join(pins, s.Env, svc.Name+".yaml")
			head := fmt.Sprintf("# %s in %s, pinned by go run mage.go render %s -pins=%s; do not edit by hand.\n", svc.Name, s.Env, s.Env, pins)
			if err := os.WriteFile(path, append([]byte(head), b...), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(out, "wrote %s (%s)\n", path, ref)
			continue
		}
		m, err := chart.Render(ctx, filepath.Join(s.RepoRoot, environments.ChartDir), s.Env, svc.Name, s.Namespace, set, s.valuesFiles(svc)...)
		if err != nil {
			return err
		}
		text := fmt.Sprintf("# %s in %s: %s, rendered by go run mage.go render %s\n%s", svc.Name, s.Env, ref, s.Env, m.String())
		if dir == "" {
			fmt.Fprint(out, text)
			continue
		}
		path := filepath.Join(dir, svc.Name+".yaml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (%s)\n", path, ref)
	}
	return nil
}

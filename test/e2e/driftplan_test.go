//go:build integration

package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dtap-platform/monorepo/internal/deploy"
	"github.com/dtap-platform/monorepo/internal/planfile"
)

// planOut runs `mage plan env -out=path` in-process.
func (p *project) planOut(root, env, path string, extra map[string]string) (*deploy.PlanResult, error) {
	p.t.Helper()
	r, err := p.runner(root, env, deploy.ForPlan, extra)
	if err != nil {
		return nil, err
	}
	r.PlanOut = path
	return deploy.Plan(p.t.Context(), r)
}

// deployPlan runs `mage deploy env -plan=path` in-process.
func (p *project) deployPlan(root, env, path string, extra map[string]string) (*deploy.Result, error) {
	p.t.Helper()
	saved, err := planfile.Read(path)
	if err != nil {
		return nil, err
	}
	r, err := p.runner(root, env, deploy.ForDeploy, extra)
	if err != nil {
		return nil, err
	}
	r.Saved, r.SavedName = saved, path
	return deploy.Deploy(p.t.Context(), r)
}

func (p *project) kubectl(t *testing.T, env string, args ...string) {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", lab.opts.Kubeconfig, "-n", p.ns(env)}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestASavedPlanIsAppliedExactlyOrRefused saves a plan, applies it, and checks that what runs is
// what it named; a plan made before a teammate's deploy is refused, naming what moved, and
// changes nothing. No plan file holds the secret value it was made with.
func TestASavedPlanIsAppliedExactlyOrRefused(t *testing.T) {
	p := newProject(t, "saved")
	clone := workCopy(t)
	if _, _, err := p.deploy(clone, "dev", nil); err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	secret := randomText(t, 16)
	withSecret := map[string]string{"SECRET_API_DB_PASSWORD": secret}
	path := filepath.Join(t.TempDir(), "p")
	if _, err := p.planOut(clone, "dev", path, withSecret); err != nil {
		t.Fatalf("plan -out: %v", err)
	}
	noSecretIn(t, path, secret)
	saved, err := planfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	api := saved.Services["api"]
	if api.Action != "upgraded" || api.Digest == "" || api.Secret == "" || len(api.Terraform) == 0 || api.Basis.Revision == 0 || api.Basis.Lineage == "" {
		t.Fatalf("the plan's api: action %q, digest %q, secret %q, terraform plan %d bytes, basis %+v; want an upgrade with all of them", api.Action, api.Digest, api.Secret, len(api.Terraform), api.Basis)
	}
	if st := saved.Services["status"]; st.Action != "" {
		t.Errorf("the plan changes status (%q); only api's secret changed", st.Action)
	}

	res, err := p.deployPlan(clone, "dev", path, withSecret)
	if err != nil {
		t.Fatalf("deploy -plan: %v", err)
	}
	row, _ := res.Row("api")
	if row.Revision != api.Basis.Revision+1 || row.Image.Digest != api.Digest || res.Secrets["api"] != api.Secret {
		t.Errorf("deploy -plan left api at revision %d, %s, secret version %q; the plan named revision %d+1, %s, %q",
			row.Revision, row.Image.Digest, res.Secrets["api"], api.Basis.Revision, api.Digest, api.Secret)
	}
	if st, _ := res.Row("status"); !st.Untouched() || st.Revision != saved.Services["status"].Basis.Revision {
		t.Errorf("deploy -plan changed status (%s, revision %d): not in the plan", st.Change, st.Revision)
	}

	// A plan, then a teammate's deploy, then the plan: refused before any change.
	stale := filepath.Join(t.TempDir(), "p2")
	if _, err := p.planOut(clone, "dev", stale, map[string]string{"SECRET_API_DB_PASSWORD": randomText(t, 16)}); err != nil {
		t.Fatalf("second plan -out: %v", err)
	}
	teammate, _, err := p.deploy(clone, "dev", map[string]string{"SECRET_API_DB_PASSWORD": randomText(t, 16)})
	if err != nil {
		t.Fatalf("the teammate's deploy: %v", err)
	}
	now, _ := teammate.Row("api")
	_, err = p.deployPlan(clone, "dev", stale, map[string]string{"SECRET_API_DB_PASSWORD": "whatever"})
	want := "api's release revision " + strconv.Itoa(now.Revision-1) + ", it is now " + strconv.Itoa(now.Revision) + " (someone deployed since): make a new plan"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "plan "+stale+" was made against") {
		t.Fatalf("deploy -plan of a stale plan: %v; want a refusal naming %q", err, want)
	}
	if rev := p.releaseRevision(t, "dev", "api"); rev != now.Revision {
		t.Errorf("the refused deploy -plan moved api to revision %d, from %d", rev, now.Revision)
	}
}

// noSecretIn fails when the plan file, or a Terraform plan inside it (a zip), holds secret.
func noSecretIn(t *testing.T, path, secret string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatalf("the plan file %s holds the secret value", path)
	}
	f, err := planfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for name, s := range f.Services {
		if len(s.Terraform) == 0 {
			continue
		}
		z, err := zip.NewReader(bytes.NewReader(s.Terraform), int64(len(s.Terraform)))
		if err != nil {
			t.Fatalf("%s's Terraform plan: %v", name, err)
		}
		for _, e := range z.File {
			rc, err := e.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(secret)) {
				t.Fatalf("%s's Terraform plan (%s) holds the secret value", name, e.Name)
			}
			read++
		}
	}
	if read == 0 {
		t.Fatal("the plan holds no Terraform plan to search")
	}
}

func (p *project) releaseRevision(t *testing.T, env, name string) int {
	t.Helper()
	r, err := p.runner(repoRoot, env, deploy.ForRead, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Preflight(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	_, rev, err := r.Running(name)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// TestDriftIsListedAndRepaired changes a deployed environment behind deploy's back (scale to 0,
// an env var, a deleted Service): plan lists each drift with its field, status shows the service
// as drifted, DRIFT=warn reports without repairing, deploy repairs all three and says so, and a
// second deploy is a no-op.
func TestDriftIsListedAndRepaired(t *testing.T) {
	p := newProject(t, "drift")
	clone := workCopy(t)
	if _, _, err := p.deploy(clone, "dev", nil); err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	p.kubectl(t, "dev", "scale", "deployment/api", "--replicas=0")
	p.kubectl(t, "dev", "set", "env", "deployment/api", "LOG_LEVEL=error")
	p.kubectl(t, "dev", "delete", "service", "status")

	plan, err := p.plan(clone, "dev", nil)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	apiDrift := strings.Join(plan.Drift.Lines("api"), "\n")
	for _, want := range []string{"Deployment/api", "spec.replicas 0 -> 1", `env[LOG_LEVEL].value "error" -> "debug" (set by kubectl-set)`} {
		if !strings.Contains(apiDrift, want) {
			t.Errorf("plan's drift of api:\n%s\nwant it to name %s", apiDrift, want)
		}
	}
	if got := plan.Drift.Lines("status"); !slices.Contains(got, "Service/status is missing") {
		t.Errorf("plan's drift of status: %q, want Service/status is missing", got)
	}
	if len(plan.Changes) != 0 {
		t.Errorf("plan changes %v: drift is not a change of the source", plan.Changes)
	}

	r, err := p.runner(clone, "dev", deploy.ForRead, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range deploy.Status(t.Context(), []*deploy.Runner{r}) {
		if (row.Service == "api" || row.Service == "status") && !strings.Contains(row.Note, "drifted") {
			t.Errorf("status of %s: note %q, want it drifted", row.Service, row.Note)
		}
	}

	warned, _, err := p.deploy(clone, "dev", map[string]string{"DRIFT": "warn"})
	if err != nil {
		t.Fatalf("deploy with DRIFT=warn: %v", err)
	}
	if notes := strings.Join(warned.Notes, "\n"); !strings.Contains(notes, "not repaired") {
		t.Errorf("DRIFT=warn's notes:\n%s\nwant the drift reported as not repaired", notes)
	}
	if _, err := lab.clients.CoreV1().Services(p.ns("dev")).Get(t.Context(), "status", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("DRIFT=warn repaired the Service (get: %v)", err)
	}

	res, _, err := p.deploy(clone, "dev", nil)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	notes := strings.Join(res.Notes, "\n")
	for _, want := range []string{"drift repaired: api Deployment/api replicas 0 -> 1", `containers[api].env[LOG_LEVEL].value "error" -> "debug"`, "drift repaired: status Service/status missing -> recreated"} {
		if !strings.Contains(notes, want) {
			t.Errorf("deploy's notes:\n%s\nwant %s", notes, want)
		}
	}
	for _, name := range []string{"api", "status"} {
		if row, _ := res.Row(name); row.Change != "drift repaired" {
			t.Errorf("summary row of %s: %q, want drift repaired", name, row.Change)
		}
	}
	dep, err := lab.clients.AppsV1().Deployments(p.ns("dev")).Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 1 || !slices.ContainsFunc(dep.Spec.Template.Spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == "LOG_LEVEL" && e.Value == "debug" }) {
		t.Errorf("after the repair api has %d replicas, env %v; want 1 and LOG_LEVEL=debug", *dep.Spec.Replicas, dep.Spec.Template.Spec.Containers[0].Env)
	}
	if _, err := lab.clients.CoreV1().Services(p.ns("dev")).Get(t.Context(), "status", metav1.GetOptions{}); err != nil {
		t.Errorf("the Service status after the repair: %v", err)
	}

	again, _, err := p.deploy(clone, "dev", nil)
	if err != nil {
		t.Fatalf("second deploy: %v", err)
	}
	if again.Changed || len(again.Notes) != 0 {
		t.Errorf("the second deploy changed something (changed %v, notes %q): want a no-op", again.Changed, again.Notes)
	}
	for _, row := range again.Rows {
		if !row.Untouched() {
			t.Errorf("second deploy: %s %s, want unchanged", row.Service, row.Change)
		}
	}
}

// TestHPAReplicasAreNotDrift enables the chart's HPA for api: the replicas it sets are never
// reported as drift, by plan, drift or deploy.
func TestHPAReplicasAreNotDrift(t *testing.T) {
	p := newProject(t, "hpa")
	clone := workCopy(t)
	appendFile(t, clone, "services/api/values.yaml", "\nautoscaling:\n  enabled: true\n  minReplicas: 2\n  maxReplicas: 3\n")
	git(t, clone, "add", "-A")
	git(t, clone, "commit", "-q", "-m", "api autoscales")
	if _, _, err := p.deploy(clone, "dev", nil); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	// The HPA raises api from the Deployment's default of 1 to its minimum of 2.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	for {
		dep, err := lab.clients.AppsV1().Deployments(p.ns("dev")).Get(ctx, "api", metav1.GetOptions{})
		if err == nil && dep.Spec.Replicas != nil && *dep.Spec.Replicas == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the HPA did not scale api to 2 replicas (last: %v, %v)", dep, err)
		case <-time.After(2 * time.Second):
		}
	}
	plan, err := p.plan(clone, "dev", nil)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if got := plan.Drift.Lines("api"); len(got) != 0 {
		t.Errorf("plan reports the HPA's replicas as drift: %q", got)
	}
	res, _, err := p.deploy(clone, "dev", nil)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	// The second replica may still be starting: "unchanged (1/2 pods ready)".
	if row, _ := res.Row("api"); !row.Untouched() || len(res.Notes) != 0 {
		t.Errorf("deploy under the HPA: api %q, notes %q; want unchanged, no drift", row.Change, res.Notes)
	}
	r, err := p.runner(clone, "dev", deploy.ForRead, nil)
	if err != nil {
		t.Fatal(err)
	}
	found, _, err := deploy.DriftOf(t.Context(), r)
	if err != nil {
		t.Fatalf("drift dev: %v", err)
	}
	if got := found.Lines("api"); len(got) != 0 {
		t.Errorf("drift dev reports the HPA's replicas as drift: %q", got)
	}
}

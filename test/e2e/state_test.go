//go:build integration

package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	helmchart "helm.sh/helm/v3/pkg/chart"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestStateLivesWithTheCluster: two clones deploying one environment at once take turns on its
// lock; a state lost (its Secret deleted) is rebuilt by adopting the releases that run; a
// foreign release of the same name is refused; and a checkout's local state from before the
// monorepo layout (module.app) moves into the cluster once, with the release upgraded in place.
func TestStateLivesWithTheCluster(t *testing.T) {
	p := newProject(t, "state")
	ns := p.ns("dev")
	cloneA, cloneB := workCopy(t), workCopy(t)

	t.Run("two clones deploying at once take turns", func(t *testing.T) {
		type run struct {
			out string
			err error
			end time.Time
		}
		runs := make([]run, 2)
		var wg sync.WaitGroup
		for i, root := range []string{cloneA, cloneB} {
			wg.Go(func() {
				out, err := p.mageRun(root, nil, "deploy", "dev")
				runs[i] = run{out, err, time.Now()}
			})
		}
		wg.Wait()
		waited := 0
		for i, r := range runs {
			if r.err != nil && !strings.Contains(r.out, "deploy lock of dev") {
				t.Errorf("clone %d: %v\n%s", i, r.err, r.out)
			}
			if strings.Contains(r.out, "waiting for the deploy lock of dev: held by") {
				waited++
			}
		}
		if waited != 1 {
			t.Errorf("%d of the two runs say they waited for the lock, naming its holder; want 1", waited)
		}
		checkNonePending(t, ns)
		revisionOf(t, ns, "api")
		revisionOf(t, ns, "status")
	})

	t.Run("a lost state is rebuilt by adopting what runs", func(t *testing.T) {
		before := podUIDs(t, ns, "api")
		for _, state := range p.stateSecrets(t, "dev") {
			if err := lab.clients.CoreV1().Secrets(p.stateNS()).Delete(t.Context(), state.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		res, _, err := p.deploy(cloneA, "dev", nil)
		if err != nil {
			t.Fatalf("deploy after the state was deleted: %v", err)
		}
		notes := strings.Join(res.Notes, "\n")
		for _, svc := range []string{"api", "status"} {
			if !strings.Contains(notes, "adopted release "+svc) {
				t.Errorf("the deploy does not say it adopted %s: %s", svc, notes)
			}
		}
		if got := podUIDs(t, ns, "api"); !slicesEqual(got, before) {
			t.Errorf("adoption replaced api's pods: %v -> %v", before, got)
		}
		if res, _, err := p.deploy(cloneB, "dev", nil); err != nil || res.Changed {
			t.Errorf("the deploy after adoption: changed=%v, %v; want no change", res != nil && res.Changed, err)
		}
	})

	t.Run("a foreign release of a service's name is refused", func(t *testing.T) {
		testNS := p.ns("test")
		if _, err := lab.clients.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = lab.clients.CoreV1().Namespaces().Delete(context.Background(), testNS, metav1.DeleteOptions{})
			waitGone(t, testNS)
		})
		foreign := &helmchart.Chart{
			Metadata:  &helmchart.Metadata{APIVersion: "v2", Name: "foreign", Version: "1.0.0"},
			Templates: []*helmchart.File{{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: someone-elses\n")}},
		}
		inst := action.NewInstall(helmConfig(t, testNS))
		inst.ReleaseName, inst.Namespace = "api", testNS
		if _, err := inst.RunWithContext(t.Context(), foreign, nil); err != nil {
			t.Fatal(err)
		}
		_, _, err := p.deploy(cloneA, "test", nil)
		if err == nil || !strings.Contains(err.Error(), "a release named api already runs") || !strings.Contains(err.Error(), `"foreign"`) {
			t.Errorf("deploy over a foreign release = %v, want a refusal naming it", err)
		}
		if cm, err := lab.clients.CoreV1().ConfigMaps(testNS).Get(t.Context(), "someone-elses", metav1.GetOptions{}); err != nil || cm == nil {
			t.Errorf("the foreign release's object is gone: %v", err)
		}
	})

	t.Run("local state from before the monorepo moves into the cluster once", func(t *testing.T) {
		// What an older checkout kept: terraform/terraform.tfstate.d/dev/terraform.tfstate, with
		// the one release at module.app. It is made from the cluster's state of api in dev,
		// moved back.
		raw, err := lab.clients.CoreV1().Secrets(p.stateNS()).Get(t.Context(), "tfstate-dev.api-"+p.name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		state := gunzipBytes(t, raw.Data["tfstate"])
		var doc map[string]any
		if err := json.Unmarshal(state, &doc); err != nil {
			t.Fatal(err)
		}
		var kept []any
		for _, r := range doc["resources"].([]any) {
			res := r.(map[string]any)
			if res["module"] == `module.service["api"]` {
				res["module"] = "module.app"
				kept = append(kept, res)
			}
		}
		doc["resources"], doc["serial"], doc["outputs"] = kept, 1, map[string]any{}
		doc["lineage"] = "before-the-monorepo-" + p.name
		local := filepath.Join(cloneB, "terraform", "terraform.tfstate.d", "dev", "terraform.tfstate")
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(doc)
		if err := os.WriteFile(local, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := lab.clients.CoreV1().Secrets(p.stateNS()).Delete(t.Context(), "tfstate-dev.api-"+p.name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		before, apiRevision := podUIDs(t, ns, "api"), revisionOf(t, ns, "api")
		out, err := p.mageRun(cloneB, map[string]string{"SERVICES": "api"}, "deploy", "dev")
		if err != nil {
			t.Fatalf("deploy with local state: %v\n%s", err, out)
		}
		if !strings.Contains(out, "migrated the local state of dev") {
			t.Errorf("the deploy does not say it migrated the local state:\n%s", out)
		}
		if _, err := os.Stat(local); !os.IsNotExist(err) {
			t.Errorf("the local state is still at %s after the migration: %v", local, err)
		}
		if strings.Contains(out, "adopted release api") || strings.Contains(out, "api installed") {
			t.Errorf("api was adopted or installed anew, not carried over by the moved block:\n%s", out)
		}
		if got := podUIDs(t, ns, "api"); !slicesEqual(got, before) {
			t.Errorf("the migration restarted api's pods: %v -> %v", before, got)
		}
		if got := revisionOf(t, ns, "api"); got != apiRevision {
			t.Errorf("api's revision %d -> %d: the migration changed the release", apiRevision, got)
		}
		// The one state of dev it went into first was split into the services' own.
		if !strings.Contains(out, "dev now has one Terraform state per service (api)") {
			t.Errorf("the deploy does not say it split dev's one state:\n%s", out)
		}
		var names []string
		for _, sec := range p.stateSecrets(t, "dev") {
			names = append(names, sec.Name)
		}
		slices.Sort(names)
		if want := []string{"tfstate-dev.api-" + p.name, "tfstate-dev.status-" + p.name}; !slices.Equal(names, want) {
			t.Errorf("dev's states after the split: %v, want %v", names, want)
		}
	})
}

func gunzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

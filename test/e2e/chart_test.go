//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/cluster"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/rollout"
	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/services/kit/config"
	"github.com/dtap-platform/monorepo/services/kit/server"
)

// envValues are env's values for the api service (chart defaults, values-<env>.yaml, then
// services/api's deploy description) with overrides on top, as mage deploy merges them.
func envValues(t *testing.T, env string, overrides map[string]any) map[string]any {
	t.Helper()
	vals, err := chart.Values(filepath.Join(repoRoot, environments.ChartDir), env, overrides, serviceFiles(t, "api", env)...)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

func imageValues() map[string]any {
	return map[string]any{"repository": lab.image.Repository, "tag": lab.image.Tag, "digest": lab.image.Digest}
}

// install installs the chart with the Helm SDK and waits for it, as `helm install --wait`.
func install(t *testing.T, ns, name string, vals map[string]any) *release.Release {
	t.Helper()
	chrt, err := chart.Load(filepath.Join(repoRoot, environments.ChartDir))
	if err != nil {
		t.Fatal(err)
	}
	inst := action.NewInstall(helmConfig(t, ns))
	inst.ReleaseName, inst.Namespace = name, ns
	inst.Wait, inst.Timeout = true, 3*time.Minute
	start := time.Now()
	rel, err := inst.RunWithContext(t.Context(), chrt, vals)
	if err != nil {
		t.Fatalf("helm install %s: %v", name, err)
	}
	t.Logf("helm install %s: ready in %s", name, time.Since(start).Round(100*time.Millisecond))
	return rel
}

// checkServes reaches the release through a port-forward and checks /config and the probes.
func checkServes(t *testing.T, ns, release, env string) map[string]any {
	t.Helper()
	var cfg map[string]any
	viaPortForward(t, ns, serviceOf(t, ns, release), func(base string) error {
		for _, p := range []string{server.PathReadyz, server.PathHealthz} {
			if code, body, err := get(base + p); err != nil || code != 200 {
				return fmt.Errorf("%s via port-forward = %d %s (%v)", p, code, body, err)
			}
		}
		code, body, err := get(base + server.PathConfig)
		if err == nil && code == 200 {
			err = json.Unmarshal([]byte(body), &cfg)
		}
		if err != nil || code != 200 {
			return fmt.Errorf("/config = %d %s (%v)", code, body, err)
		}
		return nil
	})
	if cfg["environment"] != env || cfg["release"] != release {
		t.Errorf("/config environment=%v release=%v, want %s and %s", cfg["environment"], cfg["release"], env, release)
	}
	return cfg
}

// serviceFiles are a service's values files in env, as absolute paths.
func serviceFiles(t *testing.T, service, env string) []string {
	t.Helper()
	all, err := services.Discover(t.Context(), repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Name == service {
			var out []string
			for _, f := range s.ValuesFiles(repoRoot, env) {
				out = append(out, filepath.Join(repoRoot, f))
			}
			return out
		}
	}
	t.Fatalf("no service %s", service)
	return nil
}

func serviceOf(t *testing.T, ns, release string) string {
	t.Helper()
	svcs, err := lab.clients.CoreV1().Services(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
	if err != nil || len(svcs.Items) != 1 {
		t.Fatalf("services of %s: %v (%d found)", release, err, len(svcs.Items))
	}
	return svcs.Items[0].Name
}

// frontDoorClient reaches *.localhost on 127.0.0.1, as curl and browsers do, trusting the front
// door's CA.
func frontDoorClient(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(lab.opts.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.LoopbackClient(ca, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// httpGet is a GET through the front door (or any URL on 127.0.0.1); an error ends the test.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	code, body, err := getWith(frontDoorClient(t, 10*time.Second), url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return code, body
}

// get is a plain GET on 127.0.0.1, for a port-forward's URL.
func get(url string) (int, string, error) {
	return getWith(&http.Client{Timeout: 10 * time.Second}, url)
}

func getWith(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// viaPortForward runs check against a port-forward to the newest ready pod of a Service, asking
// again through a new one, for up to 30 s, while it fails: a port-forward's stream can be lost
// on a busy machine, and a pod that just became ready or began to drain can answer 503.
func viaPortForward(t *testing.T, ns, svc string, check func(base string) error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		var fwd *rollout.Forward
		if fwd, err = rollout.ForwardService(t.Context(), lab.cfg, lab.clients, ns, svc, server.PortName); err == nil {
			err = check(fwd.URL)
			fwd.Close()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s through a port-forward: %v", ns, svc, err)
		}
		t.Logf("%s/%s through a port-forward: %v; asking again", ns, svc, err)
	}
}

// checkRunsImageFromRegistry: every pod of the release runs the image by its registry
// reference, and the runtime resolved exactly the pushed digest.
func checkRunsImageFromRegistry(t *testing.T, ns, release string) {
	t.Helper()
	pods, err := lab.clients.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release + ",app.kubernetes.io/component!=test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for i, c := range p.Spec.Containers {
			// The chart pins the digest: repository@digest (a tag may stand between them).
			if !strings.HasPrefix(c.Image, lab.image.Repository) || !strings.HasSuffix(c.Image, "@"+lab.image.Digest) {
				t.Errorf("pod %s runs %s, want %s by digest", p.Name, c.Image, lab.image)
			}
			if st := p.Status.ContainerStatuses; len(st) > i && !strings.HasSuffix(st[i].ImageID, lab.image.Digest) {
				t.Errorf("pod %s image ID %s, want digest %s", p.Name, st[i].ImageID, lab.image.Digest)
			}
		}
	}
	if len(pods.Items) == 0 {
		t.Errorf("release %s has no pods", release)
	}
}

// helmTest runs the chart's test hooks with the SDK, as `helm test`.
func helmTest(t *testing.T, ns, name string) {
	t.Helper()
	rt := action.NewReleaseTesting(helmConfig(t, ns))
	rt.Namespace, rt.Timeout = ns, 2*time.Minute
	rel, err := rt.Run(name)
	if err != nil {
		t.Fatalf("helm test %s: %v", name, err)
	}
	hooks := 0
	for _, h := range rel.Hooks {
		for _, e := range h.Events {
			if e == release.HookTest {
				hooks++
				if h.LastRun.Phase != release.HookPhaseSucceeded {
					t.Errorf("helm test hook %s: %s", h.Name, h.LastRun.Phase)
				}
			}
		}
	}
	if hooks == 0 {
		t.Error("the chart has no test hooks")
	}
	t.Logf("helm test %s: %d hook(s) succeeded", name, hooks)
}

// uninstall removes the release and checks that nothing labelled with it is left.
func uninstall(t *testing.T, ns, name string) {
	t.Helper()
	un := action.NewUninstall(helmConfig(t, ns))
	un.Wait, un.Timeout = true, 2*time.Minute
	if _, err := un.Run(name); err != nil {
		t.Fatalf("helm uninstall %s: %v", name, err)
	}
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + name}
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for {
		left := leftovers(ctx, t, ns, sel, name)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("after uninstall, still present: %s", strings.Join(left, ", "))
			return
		}
		time.Sleep(time.Second)
	}
}

func leftovers(ctx context.Context, t *testing.T, ns string, sel metav1.ListOptions, name string) []string {
	var left []string
	add := func(kind string, n int, err error) {
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			left = append(left, kind)
		}
	}
	c := lab.clients
	pods, err := c.CoreV1().Pods(ns).List(ctx, sel)
	add("pods", len(pods.Items), err)
	deps, err := c.AppsV1().Deployments(ns).List(ctx, sel)
	add("deployments", len(deps.Items), err)
	svcs, err := c.CoreV1().Services(ns).List(ctx, sel)
	add("services", len(svcs.Items), err)
	cms, err := c.CoreV1().ConfigMaps(ns).List(ctx, sel)
	add("configmaps", len(cms.Items), err)
	secrets, err := c.CoreV1().Secrets(ns).List(ctx, sel)
	add("secrets", len(secrets.Items), err)
	helmSecrets, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	add("helm release records", len(helmSecrets.Items), err)
	sas, err := c.CoreV1().ServiceAccounts(ns).List(ctx, sel)
	add("serviceaccounts", len(sas.Items), err)
	nps, err := c.NetworkingV1().NetworkPolicies(ns).List(ctx, sel)
	add("networkpolicies", len(nps.Items), err)
	pdbs, err := c.PolicyV1().PodDisruptionBudgets(ns).List(ctx, sel)
	add("poddisruptionbudgets", len(pdbs.Items), err)
	hpas, err := c.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, sel)
	add("horizontalpodautoscalers", len(hpas.Items), err)
	return left
}

// TestProdShapedRelease installs prod's values as far as one node allows. Relaxed, and only
// this: required pod anti-affinity becomes preferred (3 replicas cannot each get their own
// node on a single-node cluster), and the objects whose CRDs the lab cluster lacks
// (ExternalSecret, ServiceMonitor) stay off, with a Secret of the test's own mounted instead.
// The HPA (min 3), PDB, TLS Ingress, NetworkPolicy and the restricted security context stay.
func TestProdShapedRelease(t *testing.T) {
	ns := namespace(t, "e2e-prod")
	const name = "api"
	vals := envValues(t, "prod", map[string]any{
		"image":                 imageValues(),
		"baseUrl":               "https://api.example.com",
		"podAntiAffinityPreset": "soft",
		"externalSecret":        map[string]any{"enabled": false},
		"serviceMonitor":        map[string]any{"enabled": false},
		"secret":                map[string]any{"existingSecret": "prod-shaped-secret"},
	})
	if _, err := lab.clients.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "prod-shaped-secret"},
		StringData: map[string]string{"db-password": "prod-shaped"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	install(t, ns, name, vals)
	// prod's /config fails closed: a secret shows as a fingerprint and its length.
	if cfg := checkServes(t, ns, name, "prod"); cfg["view"] != "fingerprints" ||
		cfg["secrets"].(map[string]any)["db-password"] != "[fingerprint "+config.NewFingerprinter(nil, name).Sum([]byte("prod-shaped"))+", 11 bytes]" {
		t.Errorf("/config view %v, secrets %v, want db-password as its unkeyed fingerprint", cfg["view"], cfg["secrets"])
	}
	checkRunsImageFromRegistry(t, ns, name)

	ctx := t.Context()
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + name}
	hpas, err := lab.clients.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, sel)
	if err != nil || len(hpas.Items) != 1 || hpas.Items[0].Spec.MinReplicas == nil || *hpas.Items[0].Spec.MinReplicas < 3 {
		t.Errorf("prod HPA: %v %+v", err, hpas.Items)
	}
	pdbs, err := lab.clients.PolicyV1().PodDisruptionBudgets(ns).List(ctx, sel)
	if err != nil || len(pdbs.Items) != 1 {
		t.Errorf("prod PDB: %v, %d found", err, len(pdbs.Items))
	}
	ings, err := lab.clients.NetworkingV1().Ingresses(ns).List(ctx, sel)
	if err != nil || len(ings.Items) != 1 || len(ings.Items[0].Spec.TLS) == 0 || ings.Items[0].Spec.Rules[0].Host != "api.example.com" {
		t.Errorf("prod Ingress with TLS for api.example.com: %v %+v", err, ings.Items)
	}
	// The Deployment leaves replicas to the HPA, which scales up to its minimum on its next sync.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		deps, err := lab.clients.AppsV1().Deployments(ns).List(ctx, sel)
		if err != nil || len(deps.Items) != 1 {
			t.Fatalf("prod deployment: %v", err)
		}
		if deps.Items[0].Status.ReadyReplicas >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prod: %d ready replicas after 2m, want the HPA minimum of 3", deps.Items[0].Status.ReadyReplicas)
		}
		time.Sleep(2 * time.Second)
	}
	checkRunsImageFromRegistry(t, ns, name)
	helmTest(t, ns, name)
	uninstall(t, ns, name)
}

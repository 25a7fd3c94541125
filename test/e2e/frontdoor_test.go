//go:build integration

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/dtap-platform/monorepo/internal/cluster"
)

// TestTheFrontDoorServesIngressAndHTTPRouteByHostNameOverHTTPAndHTTPS deploys api to dev
// (served by its Ingress) and to test with httpRoute.enabled (served by its HTTPRoute on the
// cluster's Gateway), then reaches both through the one front door by host name, as the summary
// prints them: over HTTP, and over HTTPS with the cluster's CA, which a client without that CA
// refuses. Traefik's access log must show each request and the route that served it.
func TestTheFrontDoorServesIngressAndHTTPRouteByHostNameOverHTTPAndHTTPS(t *testing.T) {
	p := newProject(t, "door")
	// The certificate kind:up made names the default project's hosts; deploy adds this
	// project's (*.<env>.<project>.localhost) before its smoke check goes over HTTPS.
	since := metav1.Now()

	routeValues := filepath.Join(t.TempDir(), "route.yaml")
	// As a real environment says it; on the embedded cluster deploy attaches the route to the
	// cluster's own Gateway instead.
	if err := os.WriteFile(routeValues, []byte("httpRoute:\n  enabled: true\n  parentRefs:\n    - {name: public, namespace: gateway-system}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type servedBy struct{ host, ns, provider string }
	var served []servedBy
	for _, c := range []struct{ env, values, provider string }{
		{"dev", "", "@kubernetes\""},                  // Traefik's Ingress provider
		{"test", routeValues, "@kubernetesgateway\""}, // its Gateway API provider
	} {
		res, _, err := p.deploy(repoRoot, c.env, map[string]string{"SERVICES": "api", "VALUES_FILES": c.values})
		if err != nil {
			t.Fatalf("deploy %s: %v", c.env, err)
		}
		row, ok := res.Row("api")
		host := "api." + cluster.LocalDomain(p.name, c.env)
		if want := lab.door.URL(host, false); !ok || row.URL != want {
			t.Fatalf("%s: api's URL = %q, want %s", c.env, row.URL, want)
		}
		checkServedBy(t, p.ns(c.env), c.values != "")
		for _, url := range []string{lab.door.URL(host, false), lab.door.URL(host, true)} {
			code, body := httpGet(t, url+"/config")
			if code != 200 || !strings.Contains(body, `"environment":"`+c.env+`"`) {
				t.Errorf("GET %s/config = %d %.200s", url, code, body)
			}
		}
		// Without the cluster's CA, HTTPS is refused: the certificate is the local CA's.
		plain, err := cluster.LoopbackClient(nil, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := plain.Get(lab.door.URL(host, true) + "/config"); err == nil {
			resp.Body.Close()
			t.Errorf("HTTPS without the local CA answered %s", resp.Status)
		} else if !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("HTTPS without the local CA: %v, want an unknown authority", err)
		}
		served = append(served, servedBy{host, p.ns(c.env), c.provider})
	}

	// Traefik's access log names, for each request, the host's route and its provider. A line
	// reaches the pod's log a moment after its answer: wait for it, a little.
	var missing []string
	var logs []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Second) {
		logs, missing = traefikLog(t, since), nil
		for _, s := range served {
			found := 0
			for _, line := range logs {
				// the route's name holds the namespace; the provider says Ingress or Gateway API
				if strings.Contains(line, `"GET /config HTTP/`) && strings.Contains(line, s.ns) && strings.Contains(line, s.provider) {
					found++
				}
			}
			if found < 2 { // the HTTP and the HTTPS request
				missing = append(missing, fmt.Sprintf("%d requests for %s through %s, want 2", found, s.host, s.provider))
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("Traefik's access log has %s:\n%s", strings.Join(missing, "; "), strings.Join(logs, "\n"))
	}
}

// checkServedBy: the environment has an HTTPRoute on the cluster's Gateway and no Ingress
// (route), or an Ingress of the controller's class.
func checkServedBy(t *testing.T, ns string, route bool) {
	t.Helper()
	ings, err := lab.clients.NetworkingV1().Ingresses(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if route {
		if len(ings.Items) != 0 {
			t.Errorf("%s has an Ingress beside its HTTPRoute", ns)
		}
		dyn, err := dynamic.NewForConfig(lab.cfg)
		if err != nil {
			t.Fatal(err)
		}
		gvr := schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
		// Traefik may write the route's status a moment after it serves the route.
		var got []string
		accepted := false
		for deadline := time.Now().Add(15 * time.Second); !accepted && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			route, err := dyn.Resource(gvr).Namespace(ns).Get(t.Context(), "api", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			parents, _, _ := unstructured.NestedSlice(route.Object, "spec", "parentRefs")
			status, _, _ := unstructured.NestedSlice(route.Object, "status", "parents")
			got = nil
			for _, p := range parents {
				m := p.(map[string]any)
				got = append(got, fmt.Sprint(m["namespace"], "/", m["name"]))
			}
			for _, st := range status {
				conds, _, _ := unstructured.NestedSlice(st.(map[string]any), "conditions")
				for _, c := range conds {
					if m := c.(map[string]any); m["type"] == "Accepted" && m["status"] == "True" {
						accepted = true
					}
				}
			}
		}
		if want := cluster.GatewayNamespace + "/" + cluster.GatewayName; len(got) != 1 || got[0] != want || !accepted {
			t.Errorf("api's HTTPRoute in %s: parents %v, accepted %v; want %s, accepted", ns, got, accepted, want)
		}
		return
	}
	if len(ings.Items) != 1 || ings.Items[0].Spec.IngressClassName == nil || *ings.Items[0].Spec.IngressClassName != cluster.IngressClassName {
		t.Errorf("%s's Ingresses = %+v, want api's, of class %s", ns, ings.Items, cluster.IngressClassName)
	}
}

// traefikLog is the front door's log since a time, one line each.
func traefikLog(t *testing.T, since metav1.Time) []string {
	t.Helper()
	pods, err := lab.clients.CoreV1().Pods(cluster.GatewayNamespace).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=traefik"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("Traefik's pods: %v (%d)", err, len(pods.Items))
	}
	var lines []string
	for _, pod := range pods.Items {
		// A container restarted since (its probes, on a busy machine) logged the earlier
		// requests in its previous run.
		runs := []bool{false}
		for _, c := range pod.Status.ContainerStatuses {
			if c.RestartCount > 0 {
				runs = []bool{true, false}
			}
		}
		for _, previous := range runs {
			rc, err := lab.clients.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{SinceTime: &since, Previous: previous}).Stream(context.Background())
			if err != nil {
				if previous {
					continue // its previous run left no log
				}
				t.Fatal(err)
			}
			sc := bufio.NewScanner(io.LimitReader(rc, 16<<20))
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			rc.Close()
		}
	}
	return lines
}

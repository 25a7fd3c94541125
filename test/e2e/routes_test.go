//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/cluster"
	"github.com/dtap-platform/monorepo/internal/environments"
)

// certManagerVersion is the cert-manager release whose CRDs the route test installs: they ship
// in its Go module (deploy/crds), which the Go module proxy serves.
const certManagerVersion = "v1.21.1"

// installCertManagerCRDs installs cert-manager's Certificate and ClusterIssuer CRDs from its
// module, so that the chart's TLS objects are validated by the API server.
func installCertManagerCRDs(t *testing.T) {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/cert-manager/cert-manager@"+certManagerVersion).Output()
	if err != nil {
		t.Fatalf("go mod download cert-manager %s: %v", certManagerVersion, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("cert-manager module: %v %s", err, out)
	}
	installCRDs(t, filepath.Join(mod.Dir, "deploy", "crds"), "cert-manager.io_certificates.yaml", "cert-manager.io_clusterissuers.yaml")
}

// TestEveryEnvironmentsHTTPRouteAndIngressAreAdmittedAndReadBack creates, for real, every
// environment's HTTPRoute (attached to a Gateway, with the Gateway API standard CRDs installed),
// Ingress and cert-manager Certificate for every exposed service, then reads each back and
// checks hosts, paths, backend service and port, and TLS references. Admitted means the API
// server accepted them with strict field validation; no controller serves them here.
func TestEveryEnvironmentsHTTPRouteAndIngressAreAdmittedAndReadBack(t *testing.T) {
	installGatewayAPI(t)
	installCertManagerCRDs(t)
	dr := newDryRunner(t)
	gwNS := namespace(t, "e2e-gateway")
	gateway := decodeAll(t, []byte(fmt.Sprintf(`
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: e2e-%[1]s}
spec: {controllerName: example.com/e2e-routes}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: public}
spec:
  gatewayClassName: e2e-%[1]s
  listeners:
    - {name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: All}}}
    - name: https
      protocol: HTTPS
      port: 443
      tls: {mode: Terminate, certificateRefs: [{name: public-tls}]}
      allowedRoutes: {namespaces: {from: All}}
`, gwNS)))
	for _, obj := range gateway {
		created := create(t, dr, gwNS, obj)
		t.Logf("admitted %s %s", created.GetKind(), created.GetName())
	}
	// The embedded cluster's own Gateway (LOCAL_GATEWAY=cloud-provider-kind), as kind:up makes it.
	local := cluster.GatewayManifest()
	local.SetName("dtap-" + gwNS)
	t.Logf("admitted %s %s", create(t, dr, gwNS, local).GetKind(), local.GetName())
	classes, err := dr.mapper.RESTMapping(gateway[0].GroupVersionKind().GroupKind(), gateway[0].GroupVersionKind().Version)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dr.dyn.Resource(classes.Resource).Delete(context.Background(), gateway[0].GetName(), metav1.DeleteOptions{})
	})

	envs, err := environments.List(filepath.Join(repoRoot, environments.ChartDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			ns := namespace(t, "e2e-routes-"+env)
			overrides := map[string]any{
				"httpRoute":   map[string]any{"enabled": true, "parentRefs": []any{map[string]any{"name": "public", "namespace": gwNS, "sectionName": "https"}}},
				"certificate": map[string]any{"enabled": true, "issuerRef": map[string]any{"name": "selfsigned", "kind": "ClusterIssuer"}},
			}
			kinds := map[string]int{}
			for _, obj := range renderAll(t, env, overrides) {
				switch obj.GetKind() {
				case "HTTPRoute", "Ingress", "Certificate":
				default:
					continue
				}
				got := create(t, dr, ns, obj)
				kinds[got.GetKind()]++
				checkRoute(t, env, got)
			}
			if kinds["HTTPRoute"] == 0 || kinds["Ingress"] == 0 || kinds["Certificate"] == 0 {
				t.Errorf("%s rendered %v: want HTTPRoutes, Ingresses and Certificates", env, kinds)
			}
			t.Logf("%s: admitted and read back %v", env, kinds)
		})
	}
}

// create creates obj for real in ns, with strict field validation, and returns it as read back.
func create(t *testing.T, d *dryRunner, ns string, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	// The kind's CRD is established; the API server's discovery may list it a moment later.
	m, err := d.mapping(obj)
	for deadline := time.Now().Add(30 * time.Second); meta.IsNoMatchError(err) && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		m, err = d.mapping(obj)
	}
	if err != nil {
		t.Fatalf("%s: %v", obj.GetKind(), err)
	}
	ri := d.dyn.Resource(m.Resource)
	var created *unstructured.Unstructured
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		obj.SetNamespace(ns)
		created, err = ri.Namespace(ns).Create(t.Context(), obj, metav1.CreateOptions{FieldValidation: "Strict"})
	} else {
		created, err = ri.Create(t.Context(), obj, metav1.CreateOptions{FieldValidation: "Strict"})
	}
	if err != nil {
		t.Fatalf("%s %s was not admitted: %v", obj.GetKind(), obj.GetName(), err)
	}
	for _, w := range d.warn.take() {
		t.Errorf("%s %s drew a warning: %s", obj.GetKind(), obj.GetName(), w)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		created, err = ri.Namespace(ns).Get(t.Context(), created.GetName(), metav1.GetOptions{})
	} else {
		created, err = ri.Get(t.Context(), created.GetName(), metav1.GetOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// checkRoute checks what the API server kept of a route, an Ingress or a Certificate: the host
// <service>.<domain> of the environment, the path /, the service's own backend on port 8080,
// and TLS through the Secret <service>-tls where the environment serves HTTPS.
func checkRoute(t *testing.T, env string, o *unstructured.Unstructured) {
	t.Helper()
	svc := o.GetName()
	host := svc + "." + domainOf(t, env)
	tls := env == "staging" || env == "prod"
	str := func(path ...string) string { v, _, _ := unstructured.NestedString(o.Object, path...); return v }
	list := func(path ...string) []any { v, _, _ := unstructured.NestedSlice(o.Object, path...); return v }
	switch o.GetKind() {
	case "HTTPRoute":
		hosts := list("spec", "hostnames")
		rules := list("spec", "rules")
		if len(hosts) != 1 || hosts[0] != host || len(rules) != 1 {
			t.Errorf("HTTPRoute %s: hostnames %v, %d rules; want [%s], 1 rule", svc, hosts, len(rules), host)
			return
		}
		rule := rules[0].(map[string]any)
		match := rule["matches"].([]any)[0].(map[string]any)["path"].(map[string]any)
		backend := rule["backendRefs"].([]any)[0].(map[string]any)
		if match["value"] != "/" || backend["name"] != svc || fmt.Sprint(backend["port"]) != "8080" {
			t.Errorf("HTTPRoute %s: path %v -> %v:%v, want / -> %s:8080", svc, match["value"], backend["name"], backend["port"], svc)
		}
		parent := list("spec", "parentRefs")[0].(map[string]any)
		if parent["name"] != "public" || parent["sectionName"] != "https" {
			t.Errorf("HTTPRoute %s: parentRefs %v", svc, parent)
		}
	case "Ingress":
		rules := list("spec", "rules")
		if len(rules) != 1 || rules[0].(map[string]any)["host"] != host {
			t.Errorf("Ingress %s: rules %v, want host %s", svc, rules, host)
			return
		}
		path := rules[0].(map[string]any)["http"].(map[string]any)["paths"].([]any)[0].(map[string]any)
		backend := path["backend"].(map[string]any)["service"].(map[string]any)
		if path["path"] != "/" || backend["name"] != svc || backend["port"].(map[string]any)["name"] != "http" {
			t.Errorf("Ingress %s: path %v -> %v", svc, path["path"], backend)
		}
		tlsList := list("spec", "tls")
		if tls != (len(tlsList) == 1) {
			t.Errorf("Ingress %s in %s: tls %v, want TLS=%v", svc, env, tlsList, tls)
		}
		if tls {
			entry := tlsList[0].(map[string]any)
			if entry["secretName"] != svc+"-tls" || !slices.Contains(entry["hosts"].([]any), any(host)) {
				t.Errorf("Ingress %s: tls %v, want secret %s-tls for %s", svc, entry, svc, host)
			}
		}
	case "Certificate":
		dns := list("spec", "dnsNames")
		if str("spec", "secretName") != svc+"-tls" || len(dns) != 1 || dns[0] != host || str("spec", "issuerRef", "name") != "selfsigned" {
			t.Errorf("Certificate %s: secret %s, dnsNames %v, issuer %s", svc, str("spec", "secretName"), dns, str("spec", "issuerRef", "name"))
		}
	}
}

// domainOf reads an environment's domain from its values file.
func domainOf(t *testing.T, env string) string {
	t.Helper()
	b, err := os.ReadFile(environments.ValuesFile(filepath.Join(repoRoot, environments.ChartDir), env))
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Domain string }
	if err := yaml.Unmarshal(b, &v); err != nil || v.Domain == "" {
		t.Fatalf("%s has no domain: %v", env, err)
	}
	return strings.TrimSpace(v.Domain)
}

package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/cluster"
)

var door = cluster.FrontDoor{HTTP: 8080, HTTPS: 8443}

// renderBehindTraefik renders api in env with the values deploy sets on the embedded cluster,
// after the chart's and the environment's own (extra: more values, as a file's path).
func renderBehindTraefik(t *testing.T, env string, merged map[string]any, extra ...string) *chart.Manifest {
	t.Helper()
	root := filepath.Join("..", "..")
	m, err := chart.Render(t.Context(), filepath.Join(root, ".helm"), env, "api", "dtap-"+env,
		TraefikFrontDoor(door, cluster.LocalDomain(DefaultProject, env), "api", merged, true), append([]string{filepath.Join(root, "services", "api", "values.yaml")}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustContain(t *testing.T, what, yaml string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(yaml, w) {
			t.Errorf("%s does not hold %q:\n%s", what, w, yaml)
		}
	}
}

// TestTheTraefikFrontDoorServesDevThroughItsIngressByHostName: dev's Ingress is of the
// controller's class, for api.dev.localhost, and the NetworkPolicy admits only the controller's
// pods from its namespace.
func TestTheTraefikFrontDoorServesDevThroughItsIngressByHostName(t *testing.T) {
	m := renderBehindTraefik(t, "dev", map[string]any{"ingress": map[string]any{"enabled": true}})
	ing, ok := m.Find("Ingress", "api")
	if !ok {
		t.Fatal("no Ingress")
	}
	mustContain(t, "the Ingress", ing.YAML, "ingressClassName: traefik", `host: "api.dev.localhost"`)
	if strings.Contains(ing.YAML, "tls:") {
		t.Errorf("dev's Ingress asks for TLS:\n%s", ing.YAML)
	}
	np, _ := m.Find("NetworkPolicy", "api")
	mustContain(t, "the NetworkPolicy", np.YAML, "kubernetes.io/metadata.name: "+cluster.GatewayNamespace, "app.kubernetes.io/name: traefik")
	if strings.Contains(np.YAML, "ingress-nginx") || strings.Contains(np.YAML, "ipBlock") {
		t.Errorf("the NetworkPolicy admits more than the controller:\n%s", np.YAML)
	}
	if _, ok := m.Find("HTTPRoute", "api"); ok {
		t.Error("an HTTPRoute is rendered beside dev's Ingress")
	}
}

// TestTheTraefikFrontDoorServesHTTPSEnvironmentsWithItsOwnCertificate: staging asks
// cert-manager for a certificate; on the embedded cluster the front door's certificate serves
// it instead, on the HTTPS port.
func TestTheTraefikFrontDoorServesHTTPSEnvironmentsWithItsOwnCertificate(t *testing.T) {
	merged := map[string]any{"ingress": map[string]any{"enabled": true, "tls": map[string]any{"enabled": true}}}
	m := renderBehindTraefik(t, "staging", merged)
	ing, ok := m.Find("Ingress", "api")
	if !ok {
		t.Fatal("no Ingress")
	}
	mustContain(t, "the Ingress", ing.YAML, "ingressClassName: traefik", `host: "api.staging.localhost"`)
	if strings.Contains(ing.YAML, "cert-manager") || strings.Contains(ing.YAML, "secretName") {
		t.Errorf("the Ingress asks cert-manager, which the embedded cluster does not run:\n%s", ing.YAML)
	}
	if _, ok := m.Find("Certificate", "api"); ok {
		t.Error("a cert-manager Certificate is rendered")
	}
}

// TestTheTraefikFrontDoorServesHTTPRouteEnvironmentsOnTheGateway: an environment with
// httpRoute.enabled gets an HTTPRoute on the cluster's Gateway (both listeners) and no Ingress.
func TestTheTraefikFrontDoorServesHTTPRouteEnvironmentsOnTheGateway(t *testing.T) {
	values := filepath.Join(t.TempDir(), "route.yaml")
	if err := os.WriteFile(values, []byte("httpRoute:\n  enabled: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := renderBehindTraefik(t, "test", map[string]any{"httpRoute": map[string]any{"enabled": true}}, values)
	if _, ok := m.Find("Ingress", "api"); ok {
		t.Error("an Ingress is rendered beside the HTTPRoute")
	}
	route, ok := m.Find("HTTPRoute", "api")
	if !ok {
		t.Fatal("no HTTPRoute")
	}
	mustContain(t, "the HTTPRoute", route.YAML, "name: "+cluster.GatewayName, "namespace: "+cluster.GatewayNamespace, "api.test.localhost")
	if strings.Contains(route.YAML, "sectionName") {
		t.Errorf("the HTTPRoute is bound to one listener; it should attach to http and https:\n%s", route.YAML)
	}
}

func TestTheFrontDoorHostNamesServiceEnvironmentAndAnyOtherProject(t *testing.T) {
	if got := door.URL("api."+cluster.LocalDomain(DefaultProject, "dev"), false); got != "http://api.dev.localhost:8080" {
		t.Errorf("URL = %s", got)
	}
	if got := door.URL("status."+cluster.LocalDomain(DefaultProject, "prod"), true); got != "https://status.prod.localhost:8443" {
		t.Errorf("URL = %s", got)
	}
	if got := cluster.LocalDomain("shop", "dev"); got != "dev.shop.localhost" {
		t.Errorf("another project's domain = %s, want dev.shop.localhost", got)
	}
}

// TestTheGatewayFrontDoorRendersAnHTTPRouteOnTheEmbeddedGateway renders api in dev with the
// values deploy sets when LOCAL_GATEWAY=cloud-provider-kind: an HTTPRoute on the cluster's
// Gateway for api.dev.localhost, no Ingress, and a NetworkPolicy that admits the kind network.
func TestTheGatewayFrontDoorRendersAnHTTPRouteOnTheEmbeddedGateway(t *testing.T) {
	root := filepath.Join("..", "..")
	m, err := chart.Render(t.Context(), filepath.Join(root, ".helm"), "dev", "api", "dtap-dev",
		GatewayFrontDoor([]string{"172.18.0.0/16"}), filepath.Join(root, "services", "api", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Find("Ingress", "api"); ok {
		t.Error("an Ingress is rendered beside the Gateway's route")
	}
	route, ok := m.Find("HTTPRoute", "api")
	if !ok {
		t.Fatal("no HTTPRoute")
	}
	for _, want := range []string{"name: dtap", "namespace: dtap-gateway", "sectionName: http", "api.dev.localhost"} {
		if !strings.Contains(route.YAML, want) {
			t.Errorf("the HTTPRoute does not hold %q:\n%s", want, route.YAML)
		}
	}
	np, _ := m.Find("NetworkPolicy", "api")
	if !strings.Contains(np.YAML, "cidr: 172.18.0.0/16") {
		t.Errorf("the NetworkPolicy does not admit the kind network:\n%s", np.YAML)
	}
}

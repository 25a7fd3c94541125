package cluster

import (
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestLocalGatewayIsTraefikByDefaultAndRefusesUnknownValues(t *testing.T) {
	t.Setenv("LOCAL_GATEWAY", "")
	o, err := OptionsFromEnv(t.TempDir())
	if err != nil || o.Gateway != GatewayTraefik {
		t.Fatalf("default LOCAL_GATEWAY = %q, %v; want traefik", o.Gateway, err)
	}
	for _, g := range []string{GatewayCloudProviderKind, GatewayNone} {
		t.Setenv("LOCAL_GATEWAY", g)
		if o, err := OptionsFromEnv(t.TempDir()); err != nil || o.Gateway != g {
			t.Errorf("LOCAL_GATEWAY=%s = %q, %v", g, o.Gateway, err)
		}
	}
	t.Setenv("LOCAL_GATEWAY", "envoy")
	if _, err := OptionsFromEnv(t.TempDir()); err == nil || !strings.Contains(err.Error(), "traefik, cloud-provider-kind, none") {
		t.Errorf("LOCAL_GATEWAY=envoy = %v, want a refusal listing the choices", err)
	}
}

func TestCloudProviderKindRunsBesideTheClusterWithThePinnedImage(t *testing.T) {
	o := Options{Name: "dtap"}
	args := o.CloudProviderArgs()
	joined := strings.Join(args, " ")
	for _, want := range []string{"run -d", "--name dtap-cloud-provider", "--restart=always", "--network kind",
		"/var/run/docker.sock:/var/run/docker.sock", "dtap.dev/cluster=dtap"} {
		if !strings.Contains(joined, want) {
			t.Errorf("docker %s: missing %q", joined, want)
		}
	}
	if args[len(args)-1] != CloudProviderKindImage || !strings.Contains(CloudProviderKindImage, ":v") {
		t.Errorf("the image is %q, want the pinned %s last", args[len(args)-1], CloudProviderKindImage)
	}
}

// TestTheGatewayAdmitsRoutesFromEveryEnvironment: one HTTP listener on port 80, of
// cloud-provider-kind's class, taking routes from every namespace (each environment has its own).
func TestTheGatewayAdmitsRoutesFromEveryEnvironment(t *testing.T) {
	b, err := yaml.Marshal(GatewayManifest().Object)
	if err != nil {
		t.Fatal(err)
	}
	var gw struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct{ Name, Namespace string }
		Spec       struct {
			GatewayClassName string `json:"gatewayClassName"`
			Listeners        []struct {
				Name, Protocol string
				Port           int
				AllowedRoutes  struct {
					Namespaces struct{ From string }
				} `json:"allowedRoutes"`
			}
		}
	}
	if err := yaml.UnmarshalStrict(b, &gw); err != nil {
		t.Fatal(err)
	}
	if gw.APIVersion != "gateway.networking.k8s.io/v1" || gw.Kind != "Gateway" || gw.Metadata.Name != GatewayName ||
		gw.Metadata.Namespace != GatewayNamespace || gw.Spec.GatewayClassName != GatewayClassName {
		t.Errorf("gateway = %+v", gw)
	}
	if len(gw.Spec.Listeners) != 1 || gw.Spec.Listeners[0].Port != 80 || gw.Spec.Listeners[0].Protocol != "HTTP" ||
		gw.Spec.Listeners[0].Name != "http" || gw.Spec.Listeners[0].AllowedRoutes.Namespaces.From != "All" {
		t.Errorf("listeners = %+v", gw.Spec.Listeners)
	}
	if !slices.Contains(Gateways, GatewayCloudProviderKind) {
		t.Error("cloud-provider-kind is not a LOCAL_GATEWAY choice")
	}
}

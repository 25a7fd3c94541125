package deploy

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/cluster"
)

const (
	firstPort = cluster.FrontDoorFirst
	lastPort  = cluster.FrontDoorFirst + cluster.FrontDoorPorts - 1
)

func inRange(p int) bool { return p >= firstPort && p <= lastPort }

func TestAssignPortsKeepsOwnPortsAndPicksFreeOnes(t *testing.T) {
	tests := []struct {
		name  string
		taken map[int]string
		own   map[string]int
		names []string
		keep  map[string]int // ports that must be kept as they are
	}{
		{"a service keeps its own port", map[int]string{30085: "dtap-dev/api"}, map[string]int{"api": 30085}, []string{"api"},
			map[string]int{"api": 30085}},
		{"new services get free ports beside a kept one",
			map[int]string{30085: "dtap-dev/api", 30080: "dtap-test/api", 30081: "dtap-test/web", 30099: "shop-dev/x"},
			map[string]int{"api": 30085}, []string{"api", "api-gw", "status"}, map[string]int{"api": 30085}},
		{"an own port outside the front door's range is replaced", map[int]string{31000: "dtap-dev/api"}, map[string]int{"api": 31000},
			[]string{"api"}, nil},
		{"the last free port is found", takenExcept(30093), nil, []string{"api"}, map[string]int{"api": 30093}},
		{"no ports taken", map[int]string{}, nil, []string{"a", "b", "c", "d", "e"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := maps.Clone(tt.taken)
			got, full := assignPorts(maps.Clone(tt.taken), tt.own, "dtap-dev", tt.names, cluster.FrontDoorPorts)
			if len(full) > 0 {
				t.Fatalf("assignPorts left %v without a port", full)
			}
			if len(got) != len(tt.names) {
				t.Fatalf("assignPorts = %v, want a port for each of %v", got, tt.names)
			}
			used := map[int]string{}
			for _, name := range tt.names {
				p, ok := got[name]
				if !ok || !inRange(p) {
					t.Errorf("%s got port %d, want one in %d-%d", name, p, firstPort, lastPort)
				}
				if other, dup := used[p]; dup {
					t.Errorf("%s and %s both got port %d", name, other, p)
				}
				used[p] = name
				if want, kept := tt.keep[name]; kept && p != want {
					t.Errorf("%s got port %d, want its own %d", name, p, want)
				}
				if holder, was := before[p]; was && holder != "dtap-dev/"+name {
					t.Errorf("%s got port %d, which %s holds", name, p, holder)
				}
			}
		})
	}
}

// takenExcept holds every front-door port but free, each by another environment's service.
func takenExcept(free ...int) map[int]string {
	out := map[int]string{}
	for p := firstPort; p <= lastPort; p++ {
		out[p] = fmt.Sprintf("other-%d/svc", p)
	}
	for _, p := range free {
		delete(out, p)
	}
	return out
}

func TestAssignPortsLeavesAServiceWithoutAPortWhenAllAreTakenInsteadOfRefusing(t *testing.T) {
	got, full := assignPorts(takenExcept(), nil, "dtap-dev", []string{"api"}, cluster.FrontDoorPorts)
	if len(got) != 0 || !slices.Equal(full, []string{"api"}) {
		t.Fatalf("assignPorts = %v, %v; want no port and api named as left without one", got, full)
	}
	// One free port and two services: the first gets it, the second goes without.
	got, full = assignPorts(takenExcept(30090), nil, "dtap-dev", []string{"api", "web"}, cluster.FrontDoorPorts)
	if got["api"] != 30090 || !slices.Equal(full, []string{"web"}) {
		t.Errorf("assignPorts = %v, %v; want api on 30090 and web without a port", got, full)
	}
}

func TestAssignPortsIsDeterministic(t *testing.T) {
	taken := map[int]string{30082: "shop-test/api", 30087: "shop-test/web"}
	names := []string{"api", "api-gw", "status", "web"}
	first, _ := assignPorts(maps.Clone(taken), nil, "dtap-dev", names, cluster.FrontDoorPorts)
	for range 5 {
		again, _ := assignPorts(maps.Clone(taken), nil, "dtap-dev", names, cluster.FrontDoorPorts)
		if !maps.Equal(first, again) {
			t.Fatalf("assignPorts gave %v, then %v", first, again)
		}
	}
	// The pick depends on the environment and the service: across many pairs, the starting
	// points spread over the range rather than all reaching for the first port.
	seen := map[int]bool{}
	for i := range 40 {
		got, _ := assignPorts(map[int]string{}, nil, fmt.Sprintf("env-%d", i), []string{"api"}, cluster.FrontDoorPorts)
		seen[got["api"]] = true
	}
	if len(seen) < 5 {
		t.Errorf("40 environments' api got only %d distinct ports: %v", len(seen), seen)
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

func TestAssignPortsStaysWithinThePortsAnOlderClusterMaps(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	got, full := assignPorts(map[int]string{}, map[string]int{"a": firstPort + 50}, "dtap-dev", names, 20)
	if len(full) > 0 {
		t.Fatalf("assignPorts left %v without a port", full)
	}
	for name, p := range got {
		if p < firstPort || p >= firstPort+20 {
			t.Errorf("%s got port %d, outside the 20 ports the cluster maps", name, p)
		}
	}
}

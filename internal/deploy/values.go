package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/internal/usercache"
)

// serviceValues are the values documents of one service, in the order they apply: the
// environment's values file, the service's deploy description, VALUES_FILES, then what deploy
// sets itself. They are passed to Terraform as text, so the state records exactly what was
// applied and a later run can pass them back unchanged.
func (s Settings) serviceValues(svc services.Service, set map[string]any) ([]string, error) {
	var docs []string
	for _, f := range append([]string{environments.ValuesFile(filepath.Join(s.RepoRoot, environments.ChartDir), s.Env)}, s.valuesFiles(svc)...) {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		docs = append(docs, string(b))
	}
	b, err := setYAML(set)
	if err != nil {
		return nil, err
	}
	return append(docs, "# set by mage deploy\n"+string(b)), nil
}

// setYAML is yaml.Marshal(set), kept beside the merged values by a digest of set's JSON, which
// is all sigs.k8s.io/yaml makes it from: every service's document lists the environment's
// peers, and converting fifty of them cost a deploy that changed nothing some 10 ms of CPU.
func setYAML(set map[string]any) ([]byte, error) {
	j, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	dir := chart.ValuesCacheDir()
	sum := sha256.Sum256(j)
	name := "set-" + hex.EncodeToString(sum[:]) + ".yaml"
	if dir != "" {
		if b, ok := usercache.Read(dir, name); ok {
			return b, nil
		}
	}
	b, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, err
	}
	if dir != "" {
		usercache.Keep(dir, name, b, chart.KeptValues)
	}
	return b, nil
}

// merged are a service's values as the chart sees them, from the source, before deploy's own.
func (s Settings) merged(svc services.Service) (map[string]any, error) {
	if m, ok := s.Merged[svc.Name]; ok {
		return m, nil
	}
	return chart.Values(filepath.Join(s.RepoRoot, environments.ChartDir), s.Env, nil, s.valuesFiles(svc)...)
}

// deploySet are the values deploy sets on a service: the environment, the chart's digest, the
// public URL, the secret version, the other services to discover, and, on the embedded
// cluster, what one node and no ingress controller need.
type deploySet struct {
	chartDigest string
	secret      string         // the secret version to mount, "" for none
	peers       map[string]int // the environment's services and their ports, for discovery
	frontDoor   map[string]any // service.nodePort and the matching NetworkPolicy, or nil
}

func (s Settings) overrides(svc services.Service, merged map[string]any, d deploySet, notes *[]string) map[string]any {
	set := map[string]any{"environment": s.Env, "chartDigest": d.chartDigest}
	if u, ok := s.BaseURLs[svc.Name]; ok {
		set["baseUrl"] = u
	}
	if d.secret != "" {
		set["secret"] = map[string]any{"existingSecret": d.secret}
	}
	if on, _ := dig(merged, "discovery", "enabled").(bool); on {
		var peers []any
		for _, name := range slices.Sorted(maps.Keys(d.peers)) {
			if name != svc.Name {
				peers = append(peers, map[string]any{"name": name, "port": d.peers[name]})
			}
		}
		set["discovery"] = map[string]any{"services": peers}
	}
	for k, v := range d.frontDoor {
		set[k] = v
	}
	if s.Local {
		// One node: required anti-affinity and spread rules could never schedule a second pod.
		if dig(merged, "podAntiAffinityPreset") == "hard" {
			set["podAntiAffinityPreset"] = "soft"
			*notes = append(*notes, fmt.Sprintf("%s: required pod anti-affinity relaxed to preferred on the single-node embedded cluster", svc.Name))
		}
		if dig(merged, "topologySpread", "whenUnsatisfiable") == "DoNotSchedule" {
			set["topologySpread"] = map[string]any{"whenUnsatisfiable": "ScheduleAnyway"}
			*notes = append(*notes, fmt.Sprintf("%s: topology spread relaxed to ScheduleAnyway on the single-node embedded cluster", svc.Name))
		}
		// One node of a laptop's (or CI's) cores: prod's CPU requests, times its replicas, beside
		// the other environments, would leave pods unschedulable.
		if cpu, ok := dig(merged, "resources", "requests", "cpu").(string); ok {
			if q, err := resource.ParseQuantity(cpu); err == nil && q.Cmp(localCPURequest) > 0 {
				set["resources"] = map[string]any{"requests": map[string]any{"cpu": localCPURequest.String()}}
				*notes = append(*notes, fmt.Sprintf("%s: CPU request %s lowered to %s on the single-node embedded cluster", svc.Name, cpu, localCPURequest.String()))
			}
		}
	}
	return set
}

// localCPURequest is the most CPU a pod requests on the embedded cluster.
var localCPURequest = resource.MustParse("50m")

// port is the service's HTTP port from its merged values.
func port(merged map[string]any) int {
	switch p := dig(merged, "service", "port").(type) {
	case int:
		return p
	case int64:
		return int(p)
	case float64:
		return int(p)
	}
	return 8080
}

// exposed reports whether the service has a public route (an Ingress or an HTTPRoute).
func exposed(merged map[string]any) bool {
	ing, _ := dig(merged, "ingress", "enabled").(bool)
	route, _ := dig(merged, "httpRoute", "enabled").(bool)
	return ing || route
}

// dig reads a nested value of a values map.
func dig(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

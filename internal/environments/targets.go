package environments

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// TargetsFile is where each environment names where it lives, relative to the repository root.
const TargetsFile = "environments.yaml"

// Target is where one environment lives. Empty fields take their defaults (the embedded
// cluster and its registry, state in the target cluster); an environment variable overrides
// each (see Var).
type Target struct {
	Upstream       string `json:"upstream"`
	Kubeconfig     string `json:"kubeconfig,omitempty"`
	KubeContext    string `json:"kubeContext,omitempty"`
	Registry       string `json:"registry,omitempty"`
	Namespace      string `json:"namespace,omitempty"`
	StateNamespace string `json:"stateNamespace,omitempty"`
	StateBackend   string `json:"stateBackend,omitempty"`
	// Cluster "embedded" names the embedded local cluster explicitly: staging and prod run
	// only on a cluster named for them.
	Cluster string `json:"cluster,omitempty"`
	// SigningKey is the PEM public key (a path) every image of the environment must be signed
	// with (docs/supply-chain.md).
	SigningKey string `json:"signingKey,omitempty"`
	// RequireSignatures: deploy and promote verify every image's signature and provenance
	// before any change. Unset: true for staging and prod, false for the others.
	RequireSignatures *bool `json:"requireSignatures,omitempty"`
}

// Targets is the targets file: the project and each environment's target.
type Targets struct {
	Project      string            `json:"project"`
	Environments map[string]Target `json:"environments"`
}

// Var maps each target field to the environment variable that overrides it.
var Var = map[string]string{
	"kubeconfig": "KUBECONFIG", "kubeContext": "KUBE_CONTEXT", "registry": "REGISTRY",
	"namespace": "NAMESPACE", "stateNamespace": "STATE_NAMESPACE", "stateBackend": "TF_BACKEND_CONFIG",
	"cluster": "CLUSTER", "signingKey": "SIGNING_PUBLIC_KEY", "requireSignatures": "REQUIRE_SIGNATURES",
}

// LoadTargets reads repoRoot's targets file, strictly, and checks it against the chart's
// environments: every section names an environment, and every upstream an earlier one. A
// missing file means every environment takes the defaults, in DTAP order.
func LoadTargets(repoRoot string) (Targets, error) {
	known, err := List(filepath.Join(repoRoot, ChartDir))
	if err != nil {
		return Targets{}, err
	}
	var t Targets
	path := filepath.Join(repoRoot, TargetsFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		t.Environments = map[string]Target{}
		for i, env := range known {
			up := ""
			if i > 0 {
				up = known[i-1]
			}
			t.Environments[env] = Target{Upstream: up}
		}
		return t, nil
	case err != nil:
		return t, err
	}
	if err := yaml.UnmarshalStrict(b, &t); err != nil {
		return t, fmt.Errorf("%s: %w; see the comments in the file for its fields", TargetsFile, err)
	}
	if t.Environments == nil {
		t.Environments = map[string]Target{}
	}
	var errs []error
	for env, tg := range t.Environments {
		if !slices.Contains(known, env) {
			errs = append(errs, fmt.Errorf("%s names environment %q, which has no %s: known are %s", TargetsFile, env, ValuesFile(ChartDir, env), strings.Join(known, ", ")))
		}
		if tg.Upstream != "" {
			if _, ok := t.Environments[tg.Upstream]; !ok && !slices.Contains(known, tg.Upstream) {
				errs = append(errs, fmt.Errorf("%s: %s's upstream %q is not an environment", TargetsFile, env, tg.Upstream))
			}
			if tg.Upstream == env {
				errs = append(errs, fmt.Errorf("%s: %s is its own upstream", TargetsFile, env))
			}
		}
	}
	for _, env := range known {
		if _, ok := t.Environments[env]; !ok {
			t.Environments[env] = Target{}
		}
	}
	// An upstream chain must end: dev -> test -> staging -> prod, never a loop.
	for env := range t.Environments {
		seen := map[string]bool{}
		for e := env; e != ""; e = t.Environments[e].Upstream {
			if seen[e] {
				errs = append(errs, fmt.Errorf("%s: the upstreams of %s go round in a loop", TargetsFile, env))
				break
			}
			seen[e] = true
		}
	}
	return t, errors.Join(errs...)
}

// Field returns a target's setting: the environment variable when set, else the file's.
func (tg Target) Field(getenv func(string) string, name string) string {
	if v := getenv(Var[name]); v != "" {
		return v
	}
	switch name {
	case "kubeconfig":
		return tg.Kubeconfig
	case "kubeContext":
		return tg.KubeContext
	case "registry":
		return tg.Registry
	case "namespace":
		return tg.Namespace
	case "stateNamespace":
		return tg.StateNamespace
	case "stateBackend":
		return tg.StateBackend
	case "cluster":
		return tg.Cluster
	case "signingKey":
		return tg.SigningKey
	case "requireSignatures":
		if tg.RequireSignatures != nil {
			return strconv.FormatBool(*tg.RequireSignatures)
		}
	}
	return ""
}

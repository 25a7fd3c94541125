package release

import (
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
)

// rel is a release of name in namespace shop-dev, made from chartName, with config as its values.
func rel(name, chartName string, config map[string]any) *release.Release {
	r := &release.Release{Name: name, Namespace: "shop-dev", Config: config, Version: 3,
		Info: &release.Info{Status: release.StatusDeployed}}
	if chartName != "" {
		r.Chart = &chart.Chart{Metadata: &chart.Metadata{Name: chartName, Version: "0.2.0"}}
	}
	return r
}

func TestOwnedAcceptsOnlyThisProjectsReleaseOfTheServiceInTheEnvironment(t *testing.T) {
	dev := map[string]any{"environment": "dev"}
	tests := []struct {
		name    string
		rel     *release.Release
		service string
		want    string // a part of the error; "" means owned
	}{
		{"the service chart with the environment is owned", rel("api", "service", dev), "api", ""},
		{"the chart from before the monorepo (api) is owned", rel("api", "api", dev), "api", ""},
		{"another chart is refused naming it", rel("api", "wordpress", dev), "api",
			`release shop-dev/api is made from chart "wordpress", not this project's ([service api]): it is someone else's; rename the service or remove that release`},
		{"a release without a chart is refused", rel("api", "", dev), "api", `made from chart ""`},
		{"another environment is refused naming both", rel("api", "service", map[string]any{"environment": "staging"}), "api",
			`release shop-dev/api belongs to environment "staging", not dev`},
		{"values without an environment are refused", rel("api", "service", map[string]any{"replicaCount": 2}), "api",
			`belongs to environment "", not dev`},
		{"an environment that is not a string is refused", rel("api", "service", map[string]any{"environment": 1}), "api",
			`belongs to environment "", not dev`},
		{"a release of another name is refused", rel("api-gw", "service", dev), "api", "release api-gw is not service api's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Owned(tt.rel, tt.service, "dev")
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Owned = %v, want owned", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Owned = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestSecretNameIsTheVersionARevisionMounts(t *testing.T) {
	tests := []struct {
		name string
		rel  *release.Release
		want string
	}{
		{"no release mounts nothing", nil, ""},
		{"a revision with secret.existingSecret mounts it",
			rel("api", "service", map[string]any{"secret": map[string]any{"existingSecret": "api-secrets-4"}}), "api-secrets-4"},
		{"a revision without secret values mounts nothing", rel("api", "service", map[string]any{"environment": "dev"}), ""},
		{"a revision with no values at all mounts nothing", rel("api", "service", nil), ""},
		{"a secret block without a name mounts nothing", rel("api", "service", map[string]any{"secret": map[string]any{"mountPath": "/s"}}), ""},
		{"a secret value of the wrong shape mounts nothing", rel("api", "service", map[string]any{"secret": "api-secrets-1"}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SecretName(tt.rel); got != tt.want {
				t.Errorf("SecretName = %q, want %q", got, tt.want)
			}
		})
	}
}

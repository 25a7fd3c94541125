package chart_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/dtap-platform/monorepo/services/kit/config"
)

// TestEachEnvironmentSetsWhatConfigShows: dev and test show /config through the redaction rules,
// staging and prod fail closed (fingerprints); every environment passes the public keys, and a
// service's own list replaces them. The chart's values are what the kit reads.
func TestEachEnvironmentSetsWhatConfigShows(t *testing.T) {
	want := map[string]config.View{"dev": config.ViewRedacted, "test": config.ViewRedacted,
		"staging": config.ViewFingerprints, "prod": config.ViewFingerprints}
	eachRelease(t, func(t *testing.T, env, svc string) {
		d := decodeAs[*appsv1.Deployment](t, render(t, env, svc, nil), "Deployment", svc)
		view, _ := envVar(d, config.EnvView)
		if w, known := want[env]; known && config.View(view) != w {
			t.Errorf("%s = %q, want %q", config.EnvView, view, w)
		} else if !known && config.View(view).Normal() != config.ViewFingerprints {
			t.Errorf("the new environment %s shows %s=%q, want fingerprints unless its values file says otherwise", env, config.EnvView, view)
		}
		public, _ := envVar(d, config.EnvPublic)
		cfg, err := config.Load([]string{config.EnvView + "=" + view, config.EnvPublic + "=" + public})
		if err != nil || !cfg.IsPublic("dtap-stage") || cfg.View != config.View(view).Normal() {
			t.Errorf("the kit reads the chart's view and public keys: %v, view %q, public %v", err, cfg.View, cfg.Public)
		}
	})
	d := decodeAs[*appsv1.Deployment](t, render(t, "prod", "api", map[string]any{"configView": map[string]any{"public": []any{"APP_FEATURE", "features.yaml"}}}), "Deployment", "api")
	if v, _ := envVar(d, config.EnvPublic); v != "APP_FEATURE,features.yaml" {
		t.Errorf("%s = %q with a service's own list", config.EnvPublic, v)
	}
	d = decodeAs[*appsv1.Deployment](t, render(t, "prod", "api", map[string]any{"configView": map[string]any{"public": []any{}}}), "Deployment", "api")
	if v, ok := envVar(d, config.EnvPublic); ok {
		t.Errorf("%s = %q with no public key, want it unset", config.EnvPublic, v)
	}
	for _, name := range []string{config.EnvView, config.EnvPublic} {
		_, err := renderE(t, "dev", "api", map[string]any{"extraEnv": []any{map[string]any{"name": name, "value": "x"}}})
		if err == nil || !strings.Contains(err.Error(), "extraEnv: "+name) {
			t.Errorf("extraEnv naming %s: %v, want it refused", name, err)
		}
	}
	if _, err := renderE(t, "dev", "api", map[string]any{"configView": map[string]any{"mode": "clear"}}); err == nil {
		t.Error("configView.mode clear was accepted")
	}
}

// envVar is the value of the server container's variable name, and whether it is set.
func envVar(d *appsv1.Deployment, name string) (string, bool) {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

package chart_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/services/kit/config"
)

// badValues each break one rule; the error must name the key, so the user knows what to fix.
var badValues = []struct {
	name   string
	values map[string]any
	names  string // the key as the error names it
}{
	{"a replica count that is a word", map[string]any{"replicaCount": "three"}, "/replicaCount"},
	{"a negative replica count", map[string]any{"replicaCount": -1}, "/replicaCount"},
	{"an unknown top-level key", map[string]any{"replicaCont": 2}, "'replicaCont'"},
	{"an unknown nested key", map[string]any{"ingress": map[string]any{"clasName": "nginx"}}, "'clasName'"},
	{"a boolean given as a string", map[string]any{"ingress": map[string]any{"enabled": "true"}}, "/ingress/enabled"},
	{"an HTTPRoute without parentRefs", map[string]any{"httpRoute": map[string]any{"enabled": true, "parentRefs": []any{}}}, "/httpRoute/parentRefs"},
	{"the latest tag", map[string]any{"image": map[string]any{"tag": "latest"}}, "/image/tag"},
	{"a malformed digest", map[string]any{"image": map[string]any{"digest": "sha256:abc"}}, "/image/digest"},
	{"a port out of range", map[string]any{"service": map[string]any{"port": 70000}}, "/service/port"},
	{"a base URL without a scheme", map[string]any{"baseUrl": "api.example.com"}, "/baseUrl"},
	{"a base URL with a path", map[string]any{"baseUrl": "https://example.com/api"}, "/baseUrl"},
	{"an unknown log level", map[string]any{"logLevel": "verbose"}, "/logLevel"},
	{"secret.create, which the chart no longer has", map[string]any{"secret": map[string]any{"create": true}}, "at '/secret': additional properties 'create' not allowed"},
	{"secret.data, which the chart no longer has", map[string]any{"secret": map[string]any{"data": map[string]any{"db-password": "x"}}}, "at '/secret': additional properties 'data' not allowed"},
	{"an existing Secret name that is no DNS name", map[string]any{"secret": map[string]any{"existingSecret": "API_Secrets"}}, "/secret/existingSecret"},
	{"a node port below the NodePort range", map[string]any{"service": map[string]any{"nodePort": 29999}}, "/service/nodePort"},
	{"a node port above the NodePort range", map[string]any{"service": map[string]any{"nodePort": 32768}}, "/service/nodePort"},
	{"a domain with a scheme", map[string]any{"domain": "https://example.com"}, "/domain"},
	{"a chart digest that is not hex", map[string]any{"chartDigest": "not-a-digest"}, "/chartDigest"},
	{"an unknown front door", map[string]any{"networkPolicy": map[string]any{"frontDoor": "loadBalancer"}}, "/networkPolicy/frontDoor"},
	{"a node CIDR without a prefix length", map[string]any{"networkPolicy": map[string]any{"sourceCIDRs": []any{"172.18.0.2"}}}, "/networkPolicy/sourceCIDRs/0"},
	{"a discovered service without a port", map[string]any{"discovery": map[string]any{"services": []any{map[string]any{"name": "api"}}}}, "at '/discovery/services/0': missing property 'port'"},
	{"a discovered service name that is no DNS label", map[string]any{"discovery": map[string]any{"services": []any{map[string]any{"name": "API", "port": 8080}}}}, "/discovery/services/0/name"},
	{"a config file name with a slash", map[string]any{"config": map[string]any{"a/b": "x"}}, "/config"},
	{"a misspelled securityContext field", map[string]any{"securityContext": map[string]any{"readOnlyRootFileSystem": true}}, "'readOnlyRootFileSystem'"},
	{"an unknown anti-affinity preset", map[string]any{"podAntiAffinityPreset": "required"}, "/podAntiAffinityPreset"},
	{"an ExternalSecret without a store", map[string]any{"externalSecret": map[string]any{"enabled": true, "data": []any{map[string]any{"secretKey": "k", "remoteRef": map[string]any{"key": "r"}}}}}, "/externalSecret/secretStoreRef/name"},
	{"an ExternalSecret without keys", map[string]any{"externalSecret": map[string]any{"enabled": true, "secretStoreRef": map[string]any{"name": "aws"}}}, "/externalSecret/data"},
	{"an IRSA role that is not a role ARN", map[string]any{"serviceAccount": map[string]any{"roleArn": "api-role"}}, "/serviceAccount/roleArn"},
	{"a minimum of zero replicas under the HPA", map[string]any{"autoscaling": map[string]any{"enabled": true, "minReplicas": 0}}, "/autoscaling/minReplicas"},

	// Rules across keys, enforced by the templates with fail.
	{"a grace period shorter than drain + timeout", map[string]any{"terminationGracePeriodSeconds": 15}, "terminationGracePeriodSeconds (15)"},
	{"two secret sources", map[string]any{
		"secret": map[string]any{"existingSecret": "api-secrets-1"},
		"externalSecret": map[string]any{
			"enabled": true, "secretStoreRef": map[string]any{"name": "aws"},
			"data": []any{map[string]any{"secretKey": "k", "remoteRef": map[string]any{"key": "r"}}},
		},
	}, "secret.existingSecret and externalSecret.enabled"},
	{"an env var the chart sets", map[string]any{"extraEnv": []any{map[string]any{"name": "PORT", "value": "1"}}}, "extraEnv: PORT"},
	{"SERVICE_URLS, which discovery sets", map[string]any{"extraEnv": []any{map[string]any{"name": "SERVICE_URLS", "value": "x=http://x"}}}, "extraEnv: SERVICE_URLS"},
	{"the NodePort front door without node CIDRs", map[string]any{"networkPolicy": map[string]any{"frontDoor": "cidrs"}}, "networkPolicy.sourceCIDRs is empty"},
	{"an HPA maximum below its minimum", map[string]any{"autoscaling": map[string]any{"enabled": true, "minReplicas": 3, "maxReplicas": 2}}, "autoscaling.maxReplicas"},
	{"an HPA without a target", map[string]any{"autoscaling": map[string]any{"enabled": true, "targetCPUUtilizationPercentage": 0, "targetMemoryUtilizationPercentage": 0}}, "autoscaling.enabled needs a target"},
	{"TLS on an http base URL", map[string]any{"baseUrl": "http://api.dev.localhost", "ingress": map[string]any{"enabled": true, "tls": map[string]any{"enabled": true}}}, "ingress.tls.enabled is true but baseUrl is \"http://api.dev.localhost\""},
	{"TLS without a host", map[string]any{"baseUrl": "", "domain": "", "ingress": map[string]any{"enabled": true, "tls": map[string]any{"enabled": true}}}, "ingress.tls.enabled needs a host"},
}

func TestBadValuesAreRefusedNamingTheKey(t *testing.T) {
	for _, tc := range badValues {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderE(t, "dev", "api", tc.values)
			if err == nil {
				t.Fatalf("rendered without error; want one naming %s", tc.names)
			}
			if !strings.Contains(err.Error(), tc.names) {
				t.Errorf("error does not name %s:\n%v", tc.names, err)
			}

			// The same values fail a plain Helm SDK install (helm install/template), which
			// validates values.schema.json and runs the templates' checks itself.
			err = helmTemplate(t, mergeValues(t, tc.values))
			if err == nil || !strings.Contains(err.Error(), tc.names) {
				t.Errorf("helm template: error %v does not name %s", err, tc.names)
			}
		})
	}
}

// helmTemplate renders the chart with the Helm SDK alone, as `helm template` does, with vals as
// the user's values: no check of this package runs before Helm's own.
func helmTemplate(t *testing.T, vals map[string]any) error {
	t.Helper()
	c, err := chart.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := chartutil.ParseKubeVersion(chart.KubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun, install.ClientOnly = true, true
	install.ReleaseName, install.Namespace, install.KubeVersion = "api", namespace("dev"), kube
	_, err = install.RunWithContext(t.Context(), c, vals)
	return err
}

// mergeValues is the dev values file, then the api's deploy description, with overrides on
// top, as the user values of an install (helm install -f values-dev.yaml -f services/api/values.yaml
// --set ...). Nothing it is given is modified.
func mergeValues(t *testing.T, overrides map[string]any) map[string]any {
	t.Helper()
	vals := map[string]any{}
	for _, f := range append([]string{filepath.Join(chartDir, "values-dev.yaml")}, serviceFiles(t, "dev", "api")...) {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			t.Fatal(err)
		}
		vals = layer(vals, v.AsMap())
	}
	return layer(vals, overrides)
}

// layer is a new map: top over a copy of base, recursing into maps, as -f base -f top does.
func layer(base, top map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(top))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range top {
		tm, tok := v.(map[string]any)
		bm, bok := out[k].(map[string]any)
		switch {
		case tok && bok:
			out[k] = layer(bm, tm)
		case tok:
			out[k] = layer(nil, tm)
		default:
			out[k] = v
		}
	}
	return out
}

func TestAValuesFileWithAMisspelledKeyIsRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mine.yaml")
	if err := os.WriteFile(file, []byte("ingress:\n  enabeld: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := chart.Values(chartDir, "dev", nil, file)
	if err == nil || !strings.Contains(err.Error(), "'enabeld'") {
		t.Errorf("Values with %s = %v, want an error naming enabeld", file, err)
	}
}

func TestLintRefusesAnEnvironmentFileWithAMisspelledKey(t *testing.T) {
	dir := copyChart(t)
	if err := os.WriteFile(filepath.Join(dir, "values-dev.yaml"), []byte("environment: dev\nreplicaCuont: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := chart.Lint(dir, "dev")
	if err == nil || !strings.Contains(err.Error(), "'replicaCuont'") {
		t.Errorf("Lint = %v, want an error naming replicaCuont", err)
	}
	if err := chart.Lint(dir, "prod"); err != nil {
		t.Errorf("Lint of the untouched prod = %v", err)
	}
}

func TestValuesMergeDefaultsEnvironmentFilesThenOverrides(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mine.yaml")
	if err := os.WriteFile(file, []byte("logLevel: warn\nreplicaCount: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vals, err := chart.Values(chartDir, "dev", map[string]any{"replicaCount": 4}, file)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"environment":  "dev",           // values-dev.yaml
		"logLevel":     "warn",          // the extra file over values-dev.yaml's debug
		"replicaCount": 4,               // the override over the extra file
		"partOf":       "dtap-platform", // the chart's default
		"domain":       "dev.localhost", // values-dev.yaml
		"baseUrl":      "",              // per service: no environment sets it
	} {
		if got := vals[key]; got != want {
			t.Errorf("%s = %v (%T), want %v", key, got, got, want)
		}
	}
	if _, err := chart.Values(chartDir, "stagin", nil); err == nil || !strings.Contains(err.Error(), "dev, test, staging, prod") {
		t.Errorf("Values(stagin) = %v, want the known environments", err)
	}
}

// serviceDir writes a service's deploy description under a temporary repository root: file
// name (values.yaml, values-<env>.yaml) -> content. It returns the root and the service.
func serviceDir(t *testing.T, files map[string]string) (string, services.Service) {
	t.Helper()
	root := t.TempDir()
	svc := services.Service{Name: "shop", Dir: "services/shop"}
	if err := os.MkdirAll(filepath.Join(root, svc.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, svc.Dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, svc
}

// lookup is the value at a dotted path of vals, and whether it is there.
func lookup(vals map[string]any, path string) (any, bool) {
	return lookupAny(vals, strings.Split(path, ".")...)
}

func TestValuesLayerEnvironmentThenServiceThenServiceEnvironmentThenOverrides(t *testing.T) {
	// values-dev.yaml sets logLevel debug, ingress.className nginx and domain dev.localhost.
	for _, tc := range []struct {
		name      string
		files     map[string]string // the service's deploy description
		overrides map[string]any
		want      map[string]string // dotted key -> value
	}{
		{
			name: "the environment file over the chart's defaults",
			want: map[string]string{"logLevel": "debug", "ingress.className": "nginx", "ingress.path": "/"},
		},
		{
			name:  "the service's values.yaml over the environment file",
			files: map[string]string{"values.yaml": "logLevel: warn\n"},
			want:  map[string]string{"logLevel": "warn"},
		},
		{
			name:  "the service's values-dev.yaml over its values.yaml",
			files: map[string]string{"values.yaml": "logLevel: warn\n", "values-dev.yaml": "logLevel: error\n"},
			want:  map[string]string{"logLevel": "error"},
		},
		{
			name:      "overrides over the service's values-dev.yaml",
			files:     map[string]string{"values.yaml": "logLevel: warn\n", "values-dev.yaml": "logLevel: error\n"},
			overrides: map[string]any{"logLevel": "info"},
			want:      map[string]string{"logLevel": "info"},
		},
		{
			name:  "the service's values-dev.yaml alone over the environment file",
			files: map[string]string{"values-dev.yaml": "logLevel: error\n"},
			want:  map[string]string{"logLevel": "error"},
		},
		{
			name:  "another environment's file of the service does not apply",
			files: map[string]string{"values.yaml": "logLevel: warn\n", "values-prod.yaml": "logLevel: error\n"},
			want:  map[string]string{"logLevel": "warn"},
		},
		{
			name:  "a nested key of the service keeps the environment's siblings",
			files: map[string]string{"values.yaml": "ingress:\n  path: /shop\n"},
			want:  map[string]string{"ingress.path": "/shop", "ingress.className": "nginx", "ingress.enabled": "true"},
		},
		{
			name: "each layer wins on its own key",
			files: map[string]string{
				"values.yaml":     "logLevel: warn\ningress:\n  className: traefik\nbaseUrl: http://shop.local\n",
				"values-dev.yaml": "ingress:\n  className: haproxy\n",
			},
			overrides: map[string]any{"baseUrl": "http://shop.example.org"},
			want: map[string]string{
				"domain":            "dev.localhost",           // the environment file
				"logLevel":          "warn",                    // the service's values.yaml
				"ingress.className": "haproxy",                 // the service's values-dev.yaml
				"baseUrl":           "http://shop.example.org", // the overrides
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, svc := serviceDir(t, tc.files)
			var files []string // as deploy finds them
			for _, f := range svc.ValuesFiles(root, "dev") {
				files = append(files, filepath.Join(root, f))
			}
			vals, err := chart.Values(chartDir, "dev", tc.overrides, files...)
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range tc.want {
				if got, ok := lookup(vals, key); !ok || fmt.Sprint(got) != want {
					t.Errorf("%s = %v (set %v), want %s", key, got, ok, want)
				}
			}

			// Render merges the same way: LOG_LEVEL is the winning logLevel.
			m, err := chart.Render(t.Context(), chartDir, "dev", svc.Name, namespace("dev"), tc.overrides, files...)
			if err != nil {
				t.Fatal(err)
			}
			d := decodeAs[*appsv1.Deployment](t, m, "Deployment", svc.Name)
			level, _ := lookup(vals, "logLevel")
			if i := slices.IndexFunc(d.Spec.Template.Spec.Containers[0].Env, func(e corev1.EnvVar) bool {
				return e.Name == config.EnvLogLevel && e.Value == fmt.Sprint(level)
			}); i < 0 {
				t.Errorf("rendered env %v, want %s=%v", d.Spec.Template.Spec.Containers[0].Env, config.EnvLogLevel, level)
			}
		})
	}
}

func TestTheRepositorysServicesLayerOverTheirEnvironments(t *testing.T) {
	for _, tc := range []struct {
		env, svc string
		want     map[string]string
	}{
		{"prod", "api", map[string]string{"resources.requests.cpu": "250m", "autoscaling.enabled": "true", "domain": "example.com"}},
		{"prod", "status", map[string]string{
			"resources.requests.cpu": "20m",   // services/status/values.yaml over values-prod.yaml's 250m
			"autoscaling.enabled":    "false", // services/status/values-prod.yaml over values-prod.yaml
			"replicaCount":           "2",     // services/status/values-prod.yaml
			"discovery.enabled":      "true",  // services/status/values.yaml
			"domain":                 "example.com",
		}},
		{"dev", "status", map[string]string{"resources.requests.cpu": "20m", "replicaCount": "1", "discovery.enabled": "true", "logLevel": "debug"}},
		{"dev", "api", map[string]string{"discovery.enabled": "false", "service.port": "8080"}},
	} {
		t.Run(tc.env+" "+tc.svc, func(t *testing.T) {
			vals, err := chart.Values(chartDir, tc.env, nil, serviceFiles(t, tc.env, tc.svc)...)
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range tc.want {
				if got, ok := lookup(vals, key); !ok || fmt.Sprint(got) != want {
					t.Errorf("%s = %v (set %v), want %s", key, got, ok, want)
				}
			}
		})
	}
}

// copyChart copies the chart's files (no subdirectories but templates/) to a temporary dir.
func copyChart(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(chartDir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(chartDir, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

package chart_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/dtap-platform/monorepo/internal/chart"
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
	{"a boolean given as a string", map[string]any{"secret": map[string]any{"create": "true"}}, "/secret/create"},
	{"an HTTPRoute without parentRefs", map[string]any{"httpRoute": map[string]any{"enabled": true, "parentRefs": []any{}}}, "/httpRoute/parentRefs"},
	{"the latest tag", map[string]any{"image": map[string]any{"tag": "latest"}}, "/image/tag"},
	{"a malformed digest", map[string]any{"image": map[string]any{"digest": "sha256:abc"}}, "/image/digest"},
	{"a port out of range", map[string]any{"service": map[string]any{"port": 70000}}, "/service/port"},
	{"a base URL without a scheme", map[string]any{"baseUrl": "api.example.com"}, "/baseUrl"},
	{"a base URL with a path", map[string]any{"baseUrl": "https://example.com/api"}, "/baseUrl"},
	{"an unknown log level", map[string]any{"logLevel": "verbose"}, "/logLevel"},
	{"a secret value that is not a string", map[string]any{"secret": map[string]any{"data": map[string]any{"pin": 1234}}}, "/secret/data/pin"},
	{"a config file name with a slash", map[string]any{"config": map[string]any{"a/b": "x"}}, "/config"},
	{"a misspelled securityContext field", map[string]any{"securityContext": map[string]any{"readOnlyRootFileSystem": true}}, "'readOnlyRootFileSystem'"},
	{"an unknown anti-affinity preset", map[string]any{"podAntiAffinityPreset": "required"}, "/podAntiAffinityPreset"},
	{"an ExternalSecret without a store", map[string]any{"externalSecret": map[string]any{"enabled": true, "data": []any{map[string]any{"secretKey": "k", "remoteRef": map[string]any{"key": "r"}}}}}, "/externalSecret/secretStoreRef/name"},
	{"an ExternalSecret without keys", map[string]any{"externalSecret": map[string]any{"enabled": true, "secretStoreRef": map[string]any{"name": "aws"}}}, "/externalSecret/data"},
	{"an IRSA role that is not a role ARN", map[string]any{"serviceAccount": map[string]any{"roleArn": "api-role"}}, "/serviceAccount/roleArn"},
	{"a minimum of zero replicas under the HPA", map[string]any{"autoscaling": map[string]any{"enabled": true, "minReplicas": 0}}, "/autoscaling/minReplicas"},

	// Rules across keys, enforced by the templates with fail.
	{"a grace period shorter than drain + timeout", map[string]any{"terminationGracePeriodSeconds": 15}, "terminationGracePeriodSeconds (15)"},
	{"two secret sources", map[string]any{"secret": map[string]any{"create": true, "existingSecret": "api"}}, "secret.create and secret.existingSecret"},
	{"an env var the chart sets", map[string]any{"extraEnv": []any{map[string]any{"name": "PORT", "value": "1"}}}, "extraEnv: PORT"},
	{"an HPA maximum below its minimum", map[string]any{"autoscaling": map[string]any{"enabled": true, "minReplicas": 3, "maxReplicas": 2}}, "autoscaling.maxReplicas"},
	{"an HPA without a target", map[string]any{"autoscaling": map[string]any{"enabled": true, "targetCPUUtilizationPercentage": 0, "targetMemoryUtilizationPercentage": 0}}, "autoscaling.enabled needs a target"},
	{"TLS on an http base URL", map[string]any{"ingress": map[string]any{"enabled": true, "tls": map[string]any{"enabled": true}}}, "ingress.tls.enabled"},
	{"TLS without a host", map[string]any{"baseUrl": "", "ingress": map[string]any{"enabled": true, "tls": map[string]any{"enabled": true}}}, "ingress.tls.enabled needs a host"},
}

func TestBadValuesAreRefusedNamingTheKey(t *testing.T) {
	for _, tc := range badValues {
		t.Run(tc.name, func(t *testing.T) {
			_, err := chart.Render(t.Context(), chartDir, "dev", release, "api-dev", tc.values)
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
	install.ReleaseName, install.Namespace, install.KubeVersion = release, "api-dev", kube
	_, err = install.RunWithContext(t.Context(), c, vals)
	return err
}

// mergeValues is the dev values file with overrides on top, as the user values of an install.
func mergeValues(t *testing.T, overrides map[string]any) map[string]any {
	t.Helper()
	dev, err := chartutil.ReadValuesFile(filepath.Join(chartDir, "values-dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return chartutil.CoalesceTables(overrides, dev.AsMap())
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
		"environment":  "dev",                      // values-dev.yaml
		"logLevel":     "warn",                     // the extra file over values-dev.yaml's debug
		"replicaCount": 4,                          // the override over the extra file
		"partOf":       "dtap-platform",            // the chart's default
		"baseUrl":      "http://api.dev.localhost", // values-dev.yaml
	} {
		if got := vals[key]; got != want {
			t.Errorf("%s = %v (%T), want %v", key, got, got, want)
		}
	}
	if _, err := chart.Values(chartDir, "stagin", nil); err == nil || !strings.Contains(err.Error(), "dev, test, staging, prod") {
		t.Errorf("Values(stagin) = %v, want the known environments", err)
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

package deploy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dtap-platform/monorepo/internal/image"
)

// fakeRepo is a repository root with the four DTAP values files and nothing else.
func fakeRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, ".helm"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"dev", "test", "staging", "prod"} {
		if err := os.WriteFile(filepath.Join(root, ".helm", "values-"+env+".yaml"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func getenvFrom(m map[string]string) Getenv { return func(k string) string { return m[k] } }

// noKubeconfig points the default kubeconfig at nothing, so the local cluster is the target.
func noKubeconfig(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
}

func TestResolveDefaultsToTheLocalClusterAndItsRegistry(t *testing.T) {
	noKubeconfig(t)
	root := fakeRepo(t)
	s, err := Resolve(t.Context(), root, "staging", getenvFrom(map[string]string{"IMAGE_TAG": "abc123"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Local || s.Registry != "localhost:5001" || s.ImageRepository() != "localhost:5001/api" ||
		s.ReleaseName != "api" || s.Namespace != "api-staging" || s.Kubeconfig != filepath.Join(root, ".cache", "kind", "dtap.kubeconfig") {
		t.Errorf("settings = %+v", s)
	}
}

func TestResolveUsesAConfiguredClusterAndRegistry(t *testing.T) {
	noKubeconfig(t)
	kc := filepath.Join(t.TempDir(), "config")
	s, err := Resolve(t.Context(), fakeRepo(t), "prod", getenvFrom(map[string]string{
		"IMAGE_TAG": "v1.2.3", "KUBECONFIG": kc, "KUBE_CONTEXT": "prod-eu", "REGISTRY": "registry.example.com/team",
		"RELEASE_NAME": "shop-api", "NAMESPACE": "shop", "BASE_URL": "https://api.example.com",
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Local || s.Kubeconfig != kc || s.KubeContext != "prod-eu" || s.ImageRepository() != "registry.example.com/team/api" {
		t.Errorf("settings = %+v", s)
	}
}

func TestResolveRejectsBadInputBeforeAnySideEffect(t *testing.T) {
	noKubeconfig(t)
	tests := []struct {
		name string
		env  string
		vars map[string]string
		want string
	}{
		{"an unknown environment", "stagin", nil, `unknown environment "stagin": known are dev, test, staging, prod`},
		{"no environment", "", nil, "no environment given: name one of dev, test, staging, prod"},
		{"a tag with invalid characters", "dev", map[string]string{"IMAGE_TAG": "v1 beta!"}, `IMAGE_TAG: image tag "v1 beta!" is invalid`},
		{"a tag starting with a dot", "dev", map[string]string{"IMAGE_TAG": ".hidden"}, `image tag ".hidden" is invalid`},
		{"a release name that is not DNS-1123", "dev", map[string]string{"RELEASE_NAME": "My_API"}, `RELEASE_NAME="My_API" is not a valid release name`},
		{"a release name over 53 characters", "dev", map[string]string{"RELEASE_NAME": strings.Repeat("a", 54)}, "is not a valid release name"},
		{"a bad namespace", "dev", map[string]string{"NAMESPACE": "-ns"}, `NAMESPACE="-ns" is not a valid namespace`},
		{"a base URL with a path", "dev", map[string]string{"BASE_URL": "https://x.example.com/api"}, `BASE_URL="https://x.example.com/api" is not a base URL`},
		{"a base URL without scheme", "dev", map[string]string{"BASE_URL": "x.example.com"}, "is not a base URL"},
		{"a missing values file", "dev", map[string]string{"VALUES_FILES": "/no/such/values.yaml"}, "VALUES_FILES: /no/such/values.yaml"},
		{"a bad timeout", "dev", map[string]string{"DEPLOY_TIMEOUT": "soon"}, `DEPLOY_TIMEOUT="soon"`},
		{"a configured cluster without registry", "dev", map[string]string{"KUBECONFIG": "/tmp/kc"}, "REGISTRY is not set"},
		{"an uppercase image name", "dev", map[string]string{"IMAGE_NAME": "API"}, `REGISTRY/IMAGE_NAME: image repository "localhost:5001/API" is invalid`},
		{"a registry port that is no port", "dev", map[string]string{"LOCAL_REGISTRY_PORT": "50x"}, `LOCAL_REGISTRY_PORT="50x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeRepo(t)
			vars := map[string]string{"IMAGE_TAG": "abc123"}
			for k, v := range tt.vars {
				vars[k] = v
				t.Setenv(k, v) // OptionsFromEnv reads the process environment
			}
			_, err := Resolve(t.Context(), root, tt.env, getenvFrom(vars), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Resolve = %v, want an error containing %q", err, tt.want)
			}
			// No side effect: nothing was written next to the chart.
			entries, _ := os.ReadDir(root)
			if len(entries) != 1 || entries[0].Name() != ".helm" {
				t.Errorf("Resolve left files behind: %v", entries)
			}
		})
	}
}

func TestProductionNeedsConfirmation(t *testing.T) {
	noKubeconfig(t)
	s, err := Resolve(t.Context(), fakeRepo(t), "prod", getenvFrom(map[string]string{"IMAGE_TAG": "x"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"deploy to", "destroy"} {
		if err := s.GuardProduction(action); err == nil || !strings.Contains(err.Error(), "set CONFIRM_PROD=yes") {
			t.Errorf("GuardProduction(%s) = %v", action, err)
		}
	}
	if _, err := Deploy(t.Context(), s, os.Stdout); err == nil || !strings.Contains(err.Error(), "refusing to deploy to prod") {
		t.Errorf("Deploy(prod) without confirmation = %v", err)
	}
	if err := Destroy(t.Context(), s, os.Stdout); err == nil || !strings.Contains(err.Error(), "refusing to destroy prod") {
		t.Errorf("Destroy(prod) without confirmation = %v", err)
	}
	s.Confirmed = true
	if err := s.GuardProduction("deploy to"); err != nil {
		t.Errorf("confirmed: %v", err)
	}
	if err := (Settings{Env: "staging"}).GuardProduction("destroy"); err != nil {
		t.Errorf("staging needs no confirmation: %v", err)
	}
}

func TestSecretsComeFromSECRETVariables(t *testing.T) {
	got := secretsFrom([]string{"SECRET_DB_PASSWORD=hunter2", "SECRET_API_TOKEN=t", "SECRETARY=no", "SECRET_=empty", "PATH=/bin"})
	if len(got) != 2 || got["db-password"] != "hunter2" || got["api-token"] != "t" {
		t.Errorf("secretsFrom = %v", got)
	}
}

func TestTFVarsHoldNoSecretAndSecretVarsArePrivate(t *testing.T) {
	noKubeconfig(t)
	root := fakeRepo(t)
	const secret = "s3cr3t-value-xyz"
	s, err := Resolve(t.Context(), root, "dev", getenvFrom(map[string]string{"IMAGE_TAG": "abc"}), []string{"SECRET_DB_PASSWORD=" + secret})
	if err != nil {
		t.Fatal(err)
	}
	path, err := WriteTFVars(s, image.Ref{Repository: "localhost:5001/api", Tag: "abc", Digest: "sha256:" + strings.Repeat("a", 64)})
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(root, "terraform", "environments", "dev.tfvars.json") {
		t.Errorf("tfvars at %s", path)
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{`"environment": "dev"`, `"image_digest": "sha256:aaaa`, `"namespace": "api-dev"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("tfvars lack %s:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), secret) || strings.Contains(string(b), "db-password") {
		t.Errorf("tfvars carry a secret:\n%s", b)
	}

	sp := filepath.Join(t.TempDir(), "secrets.tfvars.json")
	if err := writeSecretVars(sp, s.Secrets); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(sp)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("secret vars mode = %v (%v), want 0600", info.Mode().Perm(), err)
	}
	sb, _ := os.ReadFile(sp)
	if !strings.Contains(string(sb), `"secret.data.db-password":"`+secret+`"`) || !strings.Contains(string(b), `"create": true`) {
		t.Errorf("secret vars = %s", sb)
	}
}

func TestPreflightNamesWhatIsMissing(t *testing.T) {
	noKubeconfig(t)
	s, err := Resolve(t.Context(), fakeRepo(t), "dev", getenvFrom(map[string]string{"IMAGE_TAG": "x"}), nil)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("no Docker daemon", func(t *testing.T) {
		t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
		err := (&Runner{S: s, Out: os.Stdout}).Preflight(t.Context(), true)
		if !errors.Is(err, image.ErrNoDocker) {
			t.Errorf("Preflight = %v, want ErrNoDocker", err)
		}
	})

	t.Run("an unreachable cluster", func(t *testing.T) {
		kc := filepath.Join(t.TempDir(), "kubeconfig")
		if err := os.WriteFile(kc, []byte(unreachableKubeconfig), 0o600); err != nil {
			t.Fatal(err)
		}
		remote := s
		remote.Local, remote.Kubeconfig, remote.Registry = false, kc, "registry.example.com"
		err := (&Runner{S: remote, Out: os.Stdout}).Preflight(context.Background(), false)
		if err == nil || !strings.Contains(err.Error(), "the cluster at https://127.0.0.1:1 is unreachable") {
			t.Errorf("Preflight = %v", err)
		}
	})

	t.Run("Terraform absent and not installable", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1") // no network, for certain
		remote := s
		remote.Local = false
		err := (&Runner{S: remote, Out: os.Stdout}).Preflight(t.Context(), false)
		if err == nil || !strings.Contains(err.Error(), "no terraform >= 1.9, < 2.0 on PATH, and Terraform 1.11.4 cannot be installed") {
			t.Errorf("Preflight = %v", err)
		}
	})
}

const unreachableKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody}
current-context: nowhere
users:
- name: nobody
  user: {token: none}
`

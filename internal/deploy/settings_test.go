package deploy

import (
	"bytes"
	"crypto/rand"
	"go/build"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtap-platform/monorepo/internal/rollout"
	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/internal/testfiles"
	"github.com/dtap-platform/monorepo/internal/tf"
)

const mainGo = "package main\n\nfunc main() {}\n"

// fakeRepo is a repository root with services api and api-gw, the kit (no service), and a copy
// of this repository's chart with its four DTAP environments.
func fakeRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("the go command is not on PATH (%v): Resolve discovers the services with go list", err)
	}
	root := t.TempDir()
	testfiles.Write(t, root, map[string]string{
		"go.mod":                  "module example.com/fake\n\ngo 1.26\n",
		"services/api/main.go":    mainGo,
		"services/api-gw/main.go": mainGo,
		"services/kit/x.go":       "package kit\n",
	})
	if err := os.CopyFS(filepath.Join(root, ".helm"), os.DirFS(filepath.Join("..", "..", ".helm"))); err != nil {
		t.Fatal(err)
	}
	return root
}

// isolate makes the local kind cluster the target: no kubeconfig in a fresh home directory,
// and none of the process variables that cluster and tf read themselves.
func isolate(t *testing.T) {
	t.Helper()
	// The go command that Resolve runs keeps its caches and settings where they were.
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	config, err := os.UserConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("XDG_CONFIG_HOME", config)
	if os.Getenv("GOPATH") == "" {
		t.Setenv("GOPATH", build.Default.GOPATH)
	}
	t.Setenv("HOME", t.TempDir())
	for _, k := range []string{"KUBECONFIG", "KIND_CLUSTER_NAME", "KIND_NODE_IMAGE", "LOCAL_REGISTRY_IMAGE", "LOCAL_REGISTRY_PORT",
		"KIND_EXPORT_KUBECONFIG", tf.MirrorEnv, "TF_CLI_CONFIG_FILE"} {
		t.Setenv(k, "")
	}
}

// tree lists every file under dir with its size, to show that nothing was written.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel+" "+info.Mode().String()+" "+info.ModTime().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// resolve runs Resolve with vars as its variables and environ as the process environment, and
// checks that it wrote nothing in the repository or the home directory.
func resolve(t *testing.T, root, env string, purpose Purpose, vars map[string]string, environ ...string) (Settings, error) {
	t.Helper()
	home := os.Getenv("HOME")
	beforeRoot, beforeHome := tree(t, root), tree(t, home)
	s, err := Resolve(t.Context(), root, env, purpose, func(k string) string {
		// Staging and prod need their cluster named; these tests name the embedded one unless
		// they name a cluster themselves (or set CLUSTER, "-" for none).
		if v, ok := vars["CLUSTER"]; k == "CLUSTER" && ok {
			return strings.TrimPrefix(v, "-")
		}
		if k == "CLUSTER" && vars["KUBECONFIG"] == "" && vars["KUBE_CONTEXT"] == "" {
			return ClusterEmbedded
		}
		return vars[k]
	}, environ)
	if after := tree(t, root); !slices.Equal(beforeRoot, after) {
		t.Errorf("Resolve changed the repository:\nbefore %v\nafter  %v", beforeRoot, after)
	}
	if after := tree(t, home); !slices.Equal(beforeHome, after) {
		t.Errorf("Resolve changed the home directory:\nbefore %v\nafter  %v", beforeHome, after)
	}
	return s, err
}

// wantError checks that err holds every part of want, and none of the secrets.
func wantError(t *testing.T, err error, want []string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Resolve succeeded, want an error containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error holds the secret value %q:\n%v", s, err)
		}
	}
}

func TestResolveDefaultsToTheLocalClusterAndEveryService(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	s, err := resolve(t, root, "dev", ForDeploy, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"repository root", s.RepoRoot, root},
		{"project", s.Project, "dtap"},
		{"namespace", s.Namespace, "dtap-dev"},
		{"state namespace", s.StateNamespace, "dtap-system"},
		{"local", s.Local, true},
		{"registry", s.Registry, "localhost:5001"},
		{"image repository of api", s.ImageRepository("api"), "localhost:5001/api"},
		{"image repository of api-gw", s.ImageRepository("api-gw"), "localhost:5001/api-gw"},
		{"kubeconfig", s.Kubeconfig, filepath.Join(root, ".cache", "kind", "dtap.kubeconfig")},
		{"kind cluster", s.Cluster.Name, "dtap"},
		{"services", strings.Join(services.Names(s.All), ","), "api,api-gw"},
		{"services of the run", strings.Join(services.Names(s.Run), ","), "api,api-gw"},
		{"lock wait", s.LockWait, 10 * time.Minute},
		{"rollout rules", s.Rules, rollout.DefaultRules},
		{"confirmed", s.Confirmed, false},
		{"backend", s.Backend, ""},
		{"secrets", len(s.Secrets), 0},
		{"base URLs", len(s.BaseURLs), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if svc, ok := s.Service("api-gw"); !ok || svc.Dir != "services/api-gw" || svc.Package != "example.com/fake/services/api-gw" {
		t.Errorf("Service(api-gw) = %+v, %v", svc, ok)
	}
	if _, ok := s.Service("kit"); ok {
		t.Error("the kit is a service")
	}
}

func TestResolveNamesTheNamespacesAfterTheProject(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	tests := []struct {
		name, env         string
		vars              map[string]string
		namespace, system string
	}{
		{"PROJECT names both namespaces", "dev", map[string]string{"PROJECT": "shop"}, "shop-dev", "shop-system"},
		{"each environment has its namespace", "staging", map[string]string{"PROJECT": "shop"}, "shop-staging", "shop-system"},
		{"NAMESPACE and STATE_NAMESPACE override them", "test", map[string]string{"NAMESPACE": "team-a", "STATE_NAMESPACE": "team-a-state"}, "team-a", "team-a-state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := resolve(t, root, tt.env, ForDeploy, tt.vars)
			if err != nil {
				t.Fatal(err)
			}
			if s.Namespace != tt.namespace || s.StateNamespace != tt.system {
				t.Errorf("namespaces = %s, %s; want %s, %s", s.Namespace, s.StateNamespace, tt.namespace, tt.system)
			}
		})
	}
}

func TestResolveSelectsTheServicesOfTheRun(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	s, err := resolve(t, root, "dev", ForDeploy, map[string]string{"SERVICES": "api"})
	if err != nil {
		t.Fatal(err)
	}
	if got := services.Names(s.Run); !slices.Equal(got, []string{"api"}) || len(s.All) != 2 {
		t.Errorf("run = %v of %v, want api of both", got, services.Names(s.All))
	}
	_, err = resolve(t, root, "dev", ForDeploy, map[string]string{"SERVICES": "nope"})
	wantError(t, err, []string{`SERVICES="nope": no service "nope"; the services are api, api-gw`})
}

func TestResolveRefusesBadSettingsNamingTheCauseAndTheFix(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	kubeconfig := filepath.Join(t.TempDir(), "config")
	testfiles.Write(t, filepath.Dir(kubeconfig), map[string]string{"config": twoContexts})
	backend := filepath.Join(t.TempDir(), "backend.hcl")
	testfiles.Write(t, filepath.Dir(backend), map[string]string{"backend.hcl": "bucket = \"x\"\n"})
	tests := []struct {
		name    string
		env     string
		vars    map[string]string
		process map[string]string // read from the process environment by cluster and tf
		want    []string
	}{
		{"an unknown environment", "stagin", nil, nil, []string{`unknown environment "stagin": known are dev, test, staging, prod`}},
		{"a project that is no DNS label", "dev", map[string]string{"PROJECT": "Shop"}, nil,
			[]string{`PROJECT="Shop" is not a valid project name: use at most 40 lowercase letters`}},
		{"a namespace that is no DNS label", "dev", map[string]string{"NAMESPACE": "-ns"}, nil, []string{`NAMESPACE="-ns" is not a valid namespace`}},
		{"the state in the environment's namespace", "dev", map[string]string{"STATE_NAMESPACE": "dtap-dev"}, nil,
			[]string{`STATE_NAMESPACE and NAMESPACE are both "dtap-dev"`, "choose another STATE_NAMESPACE"}},
		{"a project ending in -<number>", "dev", map[string]string{"PROJECT": "shop-2"}, nil,
			[]string{`PROJECT="shop-2" is not a valid project name`, "not ending in -<number>"}},
		{"an environment in kube-system", "dev", map[string]string{"NAMESPACE": "kube-system"}, nil,
			[]string{"NAMESPACE=kube-system is a namespace of the cluster's own"}},
		{"the state in default", "dev", map[string]string{"STATE_NAMESPACE": "default"}, nil,
			[]string{"STATE_NAMESPACE=default is a namespace of the cluster's own"}},
		{"the state in another environment's default namespace", "dev", map[string]string{"STATE_NAMESPACE": "dtap-prod"}, nil,
			[]string{"STATE_NAMESPACE=dtap-prod is environment prod's default namespace"}},
		{"SKIP_BUILD that is no yes/no", "dev", map[string]string{"SKIP_BUILD": "ture"}, nil,
			[]string{`SKIP_BUILD="ture": use true or false`}},
		{"KUBECONFIG naming a missing file", "dev", map[string]string{"KUBECONFIG": "/no/such/kubeconfig", "REGISTRY": "r.example.com"}, nil,
			[]string{"KUBECONFIG=/no/such/kubeconfig: no such file", "or unset it (and KUBE_CONTEXT) to use the local kind cluster"}},
		{"KUBECONFIG whose first file is missing", "dev", map[string]string{"KUBECONFIG": "/no/such/kubeconfig" + string(filepath.ListSeparator) + kubeconfig, "REGISTRY": "r.example.com"}, nil,
			[]string{"no such file", "to use the local kind cluster"}},
		{"a KUBE_CONTEXT the kubeconfig lacks", "dev", map[string]string{"KUBECONFIG": kubeconfig, "KUBE_CONTEXT": "stage-us", "REGISTRY": "r.example.com"}, nil,
			[]string{`KUBE_CONTEXT="stage-us" is not a context of ` + kubeconfig + ": known are dev-eu, prod-eu"}},
		{"a configured cluster without REGISTRY", "dev", map[string]string{"KUBECONFIG": kubeconfig}, nil,
			[]string{"REGISTRY is not set: with a configured cluster, set REGISTRY to a registry it can pull from"}},
		{"an invalid registry", "dev", map[string]string{"KUBECONFIG": kubeconfig, "REGISTRY": "Registry.Example.com/Team"}, nil,
			[]string{`REGISTRY="Registry.Example.com/Team"`, "image repository", "is invalid"}},
		{"a kind cluster name with capitals and '_'", "dev", nil, map[string]string{"KIND_CLUSTER_NAME": "Bad_Name"},
			[]string{`KIND_CLUSTER_NAME="Bad_Name" is not a valid kind cluster name: use at most 32 lowercase letters`}},
		{"a local registry port that is no port", "dev", nil, map[string]string{"LOCAL_REGISTRY_PORT": "50x"},
			[]string{`LOCAL_REGISTRY_PORT="50x": not a port`}},
		{"a deploy timeout that is no duration", "dev", map[string]string{"DEPLOY_TIMEOUT": "abc"}, nil,
			[]string{`DEPLOY_TIMEOUT="abc": use a Go duration of at least 1s, for example 5m`}},
		{"a deploy timeout under a second", "dev", map[string]string{"DEPLOY_TIMEOUT": "500ms"}, nil, []string{`DEPLOY_TIMEOUT="500ms"`}},
		{"a negative restart limit", "dev", map[string]string{"ROLLOUT_MAX_RESTARTS": "-1"}, nil,
			[]string{`ROLLOUT_MAX_RESTARTS="-1": use a number of restarts from 0 to 100`}},
		{"a rollback scope that is neither service nor environment", "dev", map[string]string{"ROLLBACK_SCOPE": "all"}, nil,
			[]string{`ROLLBACK_SCOPE="all": use service`}},
		{"a Helm storage other than Secrets", "dev", map[string]string{"HELM_DRIVER": "configmap"}, nil,
			[]string{"HELM_DRIVER=configmap: this project keeps every Helm release in Secrets", "unset HELM_DRIVER"}},
		{"a restart limit that is no number", "dev", map[string]string{"ROLLOUT_MAX_RESTARTS": "two"}, nil, []string{`ROLLOUT_MAX_RESTARTS="two"`}},
		{"an unschedulable grace that is no duration", "dev", map[string]string{"ROLLOUT_UNSCHEDULABLE_GRACE": "1 minute"}, nil,
			[]string{`ROLLOUT_UNSCHEDULABLE_GRACE="1 minute": use a Go duration`}},
		{"a lock timeout that is no duration", "dev", map[string]string{"DEPLOY_LOCK_TIMEOUT": "x"}, nil,
			[]string{`DEPLOY_LOCK_TIMEOUT="x": use a Go duration of 0 or more, for example 10m`}},
		{"a negative lock timeout", "dev", map[string]string{"DEPLOY_LOCK_TIMEOUT": "-1m"}, nil, []string{`DEPLOY_LOCK_TIMEOUT="-1m"`}},
		{"a backend config without terraform/backend_override.tf", "dev", map[string]string{"TF_BACKEND_CONFIG": backend}, nil,
			[]string{"TF_BACKEND_CONFIG is set but terraform/backend_override.tf does not exist: create it with the backend block"}},
		{"a backend config that is not a file", "dev", map[string]string{"TF_BACKEND_CONFIG": "/no/such/backend.hcl"}, nil,
			[]string{"TF_BACKEND_CONFIG=/no/such/backend.hcl is not a readable file: point it at a -backend-config file"}},
		{"an image tag with a space", "dev", map[string]string{"IMAGE_TAG": "v1 beta"}, nil, []string{`IMAGE_TAG: image tag "v1 beta" is invalid`}},
		{"prod without confirmation", "prod", nil, nil, []string{"refusing to change prod without confirmation: set CONFIRM_PROD=yes to go ahead"}},
		{"prod with another confirmation word", "prod", map[string]string{"CONFIRM_PROD": "true"}, nil, []string{"set CONFIRM_PROD=yes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.process {
				t.Setenv(k, v)
			}
			_, err := resolve(t, root, tt.env, ForDeploy, tt.vars)
			wantError(t, err, tt.want)
		})
	}
}

func TestResolveReportsEveryProblemAtOnce(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	_, err := resolve(t, root, "dev", ForDeploy, map[string]string{
		"DEPLOY_TIMEOUT": "abc", "ROLLOUT_MAX_RESTARTS": "-1", "DEPLOY_LOCK_TIMEOUT": "x", "SERVICES": "nope",
	}, "BASE_URL=https://x.example.com", "SECRET_DB_PASSWORD=hunter2-secret")
	wantError(t, err, []string{"DEPLOY_TIMEOUT", "ROLLOUT_MAX_RESTARTS", "DEPLOY_LOCK_TIMEOUT", "SERVICES", "BASE_URL is set", "SECRET_DB_PASSWORD names no service"},
		"hunter2-secret")
}

const twoContexts = `apiVersion: v1
kind: Config
clusters:
- name: eu
  cluster:
    server: https://127.0.0.1:6443
users:
- name: me
  user:
    token: not-a-real-token
contexts:
- name: dev-eu
  context:
    cluster: eu
    user: me
- name: prod-eu
  context:
    cluster: eu
    user: me
current-context: dev-eu
`

func TestResolveUsesAConfiguredCluster(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	kubeconfig := filepath.Join(t.TempDir(), "config")
	testfiles.Write(t, filepath.Dir(kubeconfig), map[string]string{"config": twoContexts})

	s, err := resolve(t, root, "staging", ForDeploy, map[string]string{
		"KUBECONFIG": kubeconfig, "KUBE_CONTEXT": "prod-eu", "REGISTRY": "registry.example.com/team/",
		SigningPublicVar: publicKeyFile(t), // staging requires signed images
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Local || s.Kubeconfig != kubeconfig || s.KubeContext != "prod-eu" || s.ImageRepository("api-gw") != "registry.example.com/team/api-gw" {
		t.Errorf("settings = local %v, kubeconfig %s, context %s, repository %s", s.Local, s.Kubeconfig, s.KubeContext, s.ImageRepository("api-gw"))
	}

	// A current context in ~/.kube/config is not a choice made for this run: the embedded
	// cluster stays the target, and the ignored context is named.
	testfiles.Write(t, filepath.Join(os.Getenv("HOME"), ".kube"), map[string]string{"config": twoContexts})
	s, err = resolve(t, root, "staging", ForDeploy, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Local || s.IgnoredContext == "" || s.Kubeconfig == filepath.Join(os.Getenv("HOME"), ".kube", "config") {
		t.Errorf("with a current context in ~/.kube/config: local %v, ignored %q, kubeconfig %s", s.Local, s.IgnoredContext, s.Kubeconfig)
	}
	// KUBE_CONTEXT alone names a context of ~/.kube/config: that is a choice.
	_, err = resolve(t, root, "staging", ForDeploy, map[string]string{"KUBE_CONTEXT": "prod-eu"})
	wantError(t, err, []string{"REGISTRY is not set"})
	s, err = resolve(t, root, "staging", ForDeploy, map[string]string{"KUBE_CONTEXT": "prod-eu", "REGISTRY": "registry.example.com", SigningPublicVar: publicKeyFile(t)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Local || s.Kubeconfig != filepath.Join(os.Getenv("HOME"), ".kube", "config") {
		t.Errorf("with KUBE_CONTEXT and ~/.kube/config: local %v, kubeconfig %s", s.Local, s.Kubeconfig)
	}
}

func TestResolveAsksForProductionConfirmation(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	for _, purpose := range []Purpose{ForDeploy, ForRelease, ForDestroy} {
		_, err := resolve(t, root, "prod", purpose, nil)
		wantError(t, err, []string{"refusing to change prod without confirmation: set CONFIRM_PROD=yes"})
	}
	// What changes nothing needs no confirmation: plan, and the read-only commands.
	for _, purpose := range []Purpose{ForPlan, ForRead} {
		if _, err := resolve(t, root, "prod", purpose, nil); err != nil {
			t.Errorf("purpose %v: %v", purpose, err)
		}
	}
	s, err := resolve(t, root, "prod", ForDeploy, map[string]string{"CONFIRM_PROD": "yes"})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Confirmed || s.Namespace != "dtap-prod" {
		t.Errorf("confirmed %v, namespace %s", s.Confirmed, s.Namespace)
	}
}

func TestResolveForDestroyChecksOnlyWhatDestroyUses(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	vars := map[string]string{"VALUES_FILES": "/no/such/values.yaml", "IMAGE_TAG": "not valid", "DEPLOY_TIMEOUT": "abc"}
	environ := []string{"SECRET_DB_PASSWORD=x", "BASE_URL=https://x.example.com", "SECRET_API_A B=x"}
	if _, err := resolve(t, root, "dev", ForDestroy, vars, environ...); err != nil {
		t.Errorf("destroy failed on settings it does not use: %v", err)
	}
	_, err := resolve(t, root, "dev", ForDeploy, vars, environ...)
	wantError(t, err, []string{"VALUES_FILES", "IMAGE_TAG", "DEPLOY_TIMEOUT", "SECRET_DB_PASSWORD", "BASE_URL"})
	// What destroy uses is still checked.
	_, err = resolve(t, root, "dev", ForDestroy, map[string]string{"NAMESPACE": "Bad", "DEPLOY_LOCK_TIMEOUT": "x"})
	wantError(t, err, []string{`NAMESPACE="Bad"`, `DEPLOY_LOCK_TIMEOUT="x"`})
}

func TestResolveReadsPublicURLsPerService(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	s, err := resolve(t, root, "dev", ForDeploy, nil,
		"BASE_URL_API=https://api.example.com/", "BASE_URL_API_GW=http://127.0.0.1:8080", "BASE_URLS=ignored", "PATH=/bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.BaseURLs) != 2 || s.BaseURLs["api"] != "https://api.example.com" || s.BaseURLs["api-gw"] != "http://127.0.0.1:8080" {
		t.Errorf("BaseURLs = %v, want api's without its trailing slash and api-gw's", s.BaseURLs)
	}

	tests := []struct {
		name    string
		environ []string
		want    []string
		secret  string
	}{
		{"a bare BASE_URL points to BASE_URL_<SERVICE>", []string{"BASE_URL=https://x.example.com"},
			[]string{"BASE_URL is set, but public URLs are per service now: use BASE_URL_<SERVICE>, for example BASE_URL_API=https://api.example.com (services: api, api-gw)"}, ""},
		{"a service that does not exist is refused", []string{"BASE_URL_NOPE=https://x.example.com"},
			[]string{"BASE_URL_NOPE names no service: use BASE_URL_<SERVICE> with one of API, API_GW"}, ""},
		{"a URL with a path is refused naming the variable", []string{"BASE_URL_API=https://x.example.com/api"},
			[]string{`BASE_URL_API: "https://x.example.com/api" has a path, query or fragment`}, ""},
		{"a URL with credentials is refused without its password", []string{"BASE_URL_API_GW=https://user:pw-s3cr3t@x.example.com"},
			[]string{"BASE_URL_API_GW:", "holds credentials"}, "pw-s3cr3t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolve(t, root, "dev", ForDeploy, nil, tt.environ...)
			wantError(t, err, tt.want, tt.secret)
		})
	}
}

func TestValidateBaseURL(t *testing.T) {
	tests := []struct {
		url  string
		want string // a part of the error; "" means valid
	}{
		{"https://api.example.com", ""},
		{"http://api.example.com", ""},
		{"https://api.example.com/", ""},
		{"http://localhost", ""},
		{"http://127.0.0.1:8080", ""},
		{"https://api.example.com:1", ""},
		{"https://api.example.com:65535/", ""},
		{"http://[::1]:8080", ""},
		{"https://user:pw@api.example.com", "holds credentials (user@ or user:password@)"},
		{"https://api.example.com/api", "has a path, query or fragment"},
		{"https://api.example.com/api/", "has a path, query or fragment"},
		{"https://api.example.com?x=1", "has a path, query or fragment"},
		{"https://api.example.com/?", "has a path, query or fragment"},
		{"https://api.example.com#top", "has a path, query or fragment"},
		{"https://api.example.com/#", "has a path, query or fragment"},
		{"https://api.example.com:0", "port 0 is not between 1 and 65535"},
		{"https://api.example.com:99999", "port 99999 is not between 1 and 65535"},
		{"https://api.example.com:", "has an empty port"},
		{"ftp://api.example.com", "does not start with http:// or https://"},
		{"api.example.com", "does not start with http:// or https://"},
		{"https://", "has no host"},
		{"https:///path", "has no host"},
		{"https://:8080", "has no host"},
		{"https://api example.com", "not a URL"},
		{"https://api_x.example.com", `"api_x.example.com" is not a host name`},
		{"https://-api.example.com", "is not a host name"},
		{"https://" + strings.Repeat("a", 64) + ".example.com", "labels of at most 63 characters"},
		{"https://" + strings.Repeat("a", 63) + ".example.com", ""},
		{"https://" + strings.Repeat("abcdefgh.", 28) + "com", "253 in all"},
		{"", "does not start with http:// or https://"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := ValidateBaseURL(tt.url)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("ValidateBaseURL(%q) = %v, want valid", tt.url, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("ValidateBaseURL(%q) = %v, want an error containing %q", tt.url, err, tt.want)
			case err != nil && !strings.Contains(err.Error(), "use http(s)://host[:port], for example"):
				t.Errorf("ValidateBaseURL(%q) = %v, want the fix", tt.url, err)
			}
			if err != nil && strings.Contains(err.Error(), "pw@") {
				t.Errorf("ValidateBaseURL(%q) echoes the password: %v", tt.url, err)
			}
		})
	}
}

func TestResolveReadsSecretsPerServiceByteExact(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	blob := make([]byte, 4096)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	blob[0], blob[1000], blob[4095] = 0, 0, 0
	blobFile := filepath.Join(t.TempDir(), "blob.bin")
	if err := os.WriteFile(blobFile, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	const tricky = "a,b=c\"d'e\nf g=="
	s, err := resolve(t, root, "dev", ForDeploy, nil,
		"SECRET_API_DB_PASSWORD="+tricky,
		"SECRET_API_BLOB_FILE="+blobFile,
		"SECRET_API_TLS.CRT=cert",
		"SECRET_API_EMPTY=",
		"SECRETARY=not a secret",
	)
	if err != nil {
		t.Fatal(err)
	}
	api := s.Secrets["api"]
	if got := api["db-password"]; string(got) != tricky {
		t.Errorf("db-password = %q, want %q", got, tricky)
	}
	if got := api["blob"]; !bytes.Equal(got, blob) {
		t.Errorf("blob = %d bytes, want the file's %d bytes exactly", len(got), len(blob))
	}
	if got, ok := api["empty"]; !ok || len(got) != 0 {
		t.Errorf("empty = %q, %v; want an empty value", got, ok)
	}
	if string(api["tls.crt"]) != "cert" {
		t.Errorf("tls.crt = %q", api["tls.crt"])
	}
	if got := s.SecretKeys("api"); !slices.Equal(got, []string{"blob", "db-password", "empty", "tls.crt"}) {
		t.Errorf("SecretKeys(api) = %v", got)
	}
	if len(s.Secrets) != 1 {
		t.Errorf("secrets of %d services, want api's only: %v", len(s.Secrets), s.SecretKeys("api-gw"))
	}
}

func TestResolveRefusesBadSecretsWithoutEchoingTheirValues(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxSecretBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(dir, "half")
	if err := os.WriteFile(half, make([]byte, MaxSecretBytes/2+1), 0o600); err != nil {
		t.Fatal(err)
	}
	const value = "Value-0f-The-Secret"
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"a secret of no service names the form", []string{"SECRET_DB_PASSWORD=" + value},
			[]string{"SECRET_DB_PASSWORD names no service: secrets are per service, SECRET_<SERVICE>_<KEY> (or ..._<KEY>_FILE=<path>), with <SERVICE> one of API, API_GW; for example SECRET_API_DB_PASSWORD"}},
		{"two variables for one key are refused naming both", []string{"SECRET_API_DB_PASSWORD=" + value, "SECRET_API_db-password=" + value + "2"},
			[]string{`SECRET_API_DB_PASSWORD and SECRET_API_db-password both set key "db-password" of service api: keep one`}},
		{"a value and a file for one key are refused naming both", []string{"SECRET_API_TOKEN=" + value, "SECRET_API_TOKEN_FILE=" + half},
			[]string{`SECRET_API_TOKEN and SECRET_API_TOKEN_FILE both set key "token"`}},
		{"a key with a space is refused", []string{"SECRET_API_A B=" + value},
			[]string{`SECRET_API_A B: "a b" is not a valid Secret key: use letters, digits, '-', '_' and '.'`}},
		{"a key with a slash is refused", []string{"SECRET_API_A/B=" + value}, []string{`SECRET_API_A/B: "a/b" is not a valid Secret key`}},
		{"an empty key is refused", []string{"SECRET_API_=" + value}, []string{`SECRET_API_: "" is not a valid Secret key`}},
		{"a key '..' is refused", []string{"SECRET_API_..=" + value}, []string{`".." is not a valid Secret key`}},
		{"a _FILE naming a directory is refused", []string{"SECRET_API_BLOB_FILE=" + dir},
			[]string{"SECRET_API_BLOB_FILE does not name a readable file: set it to the path of the file that holds the secret"}},
		{"a _FILE holding the secret itself by mistake is refused without echoing it", []string{"SECRET_API_BLOB_FILE=" + value},
			[]string{"SECRET_API_BLOB_FILE does not name a readable file"}},
		{"a _FILE naming a missing file is refused", []string{"SECRET_API_BLOB_FILE=" + filepath.Join(dir, "missing")},
			[]string{"SECRET_API_BLOB_FILE does not name a readable file"}},
		{"a file larger than a Secret is refused", []string{"SECRET_API_BLOB_FILE=" + big}, []string{"more than a Secret holds (1048576)"}},
		{"values larger than a Secret together are refused", []string{"SECRET_API_A_FILE=" + half, "SECRET_API_B_FILE=" + half},
			[]string{"the secrets of api hold 1048578 bytes, more than a Secret holds (1048576)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolve(t, root, "dev", ForDeploy, nil, tt.environ...)
			wantError(t, err, tt.want, value)
		})
	}
}

// The variable of api-gw's key token, SECRET_API_GW_TOKEN, reads just as well as api's key
// gw-token. With both services in the repository, Resolve refuses it as ambiguous.
func TestSecretsOfServicesWhoseTokensOverlapGoToTheLongestUnlessNamedExactly(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	const value = "gw-Secret-Value"
	// api and api-gw both match API_GW_TOKEN: the longest, api-gw, wins; a double underscore
	// names the service exactly, so api's key gw-token can still be given.
	s, err := resolve(t, root, "dev", ForDeploy, nil, "SECRET_API_GW_TOKEN="+value, "SECRET_API__GW_TOKEN=for-api")
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Secrets["api-gw"]["token"]) != value || string(s.Secrets["api"]["gw-token"]) != "for-api" {
		t.Errorf("secrets = %v, want api-gw's token and api's gw-token", s.Secrets)
	}
	_, err = resolve(t, root, "dev", ForDeploy, nil, "SECRET_NOPE__TOKEN=x")
	wantError(t, err, []string{"SECRET_NOPE__TOKEN names no service"}, "")

	// With only one of the two, there is one reading.
	only := func(name string) []services.Service { return []services.Service{{Name: name, Dir: "services/" + name}} }
	got, err := readSecrets(only("api-gw"), []string{"SECRET_API_GW_TOKEN=" + value})
	if err != nil || string(got["api-gw"]["token"]) != value {
		t.Errorf("with api-gw alone: %v, %v; want api-gw's key token", got, err)
	}
	got, err = readSecrets(only("api"), []string{"SECRET_API_GW_TOKEN=" + value})
	if err != nil || string(got["api"]["gw-token"]) != value {
		t.Errorf("with api alone: %v, %v; want api's key gw-token", got, err)
	}
}

func TestResolveChecksValuesFilesAgainstTheChart(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{
		"ok.yaml":      "replicaCount: 2\nlogLevel: warn\n",
		"unknown.yaml": "nosuchkey: 1\n",
		"typo.yaml":    "replicaCount: two\n",
	})
	binary := filepath.Join(dir, "binary.yaml")
	if err := os.WriteFile(binary, []byte{0x00, 0xff, 0xfe, 0x01, 0x02, 0x00, 0x9f, '\n', 0x00}, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("a valid file is accepted and made absolute", func(t *testing.T) {
		t.Chdir(dir)
		s, err := resolve(t, root, "dev", ForDeploy, map[string]string{"VALUES_FILES": " ok.yaml , "})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.ValuesFiles, []string{filepath.Join(dir, "ok.yaml")}) {
			t.Errorf("ValuesFiles = %v, want the absolute path", s.ValuesFiles)
		}
	})
	tests := []struct {
		name  string
		files string
		want  []string
	}{
		{"a missing file", filepath.Join(dir, "missing.yaml"),
			[]string{"VALUES_FILES: " + filepath.Join(dir, "missing.yaml") + ":", "list readable YAML files, separated by commas"}},
		{"a directory", dir, []string{"VALUES_FILES: " + dir + " is not a regular file"}},
		{"an unknown chart key", filepath.Join(dir, "unknown.yaml"),
			[]string{"service api in dev:", "nosuchkey", "fix the file that sets that key (VALUES_FILES, services/api/values*.yaml or .helm/values-dev.yaml)"}},
		{"a key of the wrong type", filepath.Join(dir, "typo.yaml"), []string{"replicaCount", "VALUES_FILES"}},
		{"a binary file", binary, []string{"service api in dev:", binary}},
		{"a good file and a bad one", filepath.Join(dir, "ok.yaml") + "," + filepath.Join(dir, "unknown.yaml"), []string{"nosuchkey"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolve(t, root, "dev", ForDeploy, map[string]string{"VALUES_FILES": tt.files})
			wantError(t, err, tt.want)
		})
	}
}

func TestResolveChecksEachServicesDeployDescription(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	testfiles.Write(t, root, map[string]string{"services/api-gw/values-staging.yaml": "replicas: 3\n"})
	// dev does not read api-gw's staging file.
	if _, err := resolve(t, root, "dev", ForDeploy, nil); err != nil {
		t.Errorf("dev: %v", err)
	}
	_, err := resolve(t, root, "staging", ForDeploy, nil)
	wantError(t, err, []string{"service api-gw in staging:", "replicas", "services/api-gw/values*.yaml or .helm/values-staging.yaml"})
	// A run that leaves api-gw out does not check it.
	if _, err := resolve(t, root, "staging", ForDeploy, map[string]string{"SERVICES": "api"}); err != nil {
		t.Errorf("staging without api-gw: %v", err)
	}
}

func TestValidateBaseURLNeverEchoesCredentials(t *testing.T) {
	for _, raw := range []string{"https://s3cr3t-token@api.example.com", "https://user:s3cr3t@api.example.com:8443"} {
		err := ValidateBaseURL(raw)
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("ValidateBaseURL(%q) = %v, want a refusal that does not echo the credential", raw, err)
		}
	}
}

func TestChangedServicesIgnoresOtherModules(t *testing.T) {
	got := changedServices([]tf.Change{
		{Module: `module.other["api"]`, Actions: []string{"update"}},
		{Module: `module.service["api"].module.x`, Actions: []string{"update"}},
		{Module: `module.service["status"]`, Actions: []string{"update"}},
	})
	if len(got) != 1 || got["status"] != "upgraded" {
		t.Errorf("changedServices = %v, want only status upgraded", got)
	}
}

func TestStagingAndProdRunOnlyOnANamedCluster(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	for _, env := range []string{"staging", "prod"} {
		vars := map[string]string{"CLUSTER": "-", "CONFIRM_PROD": "yes"}
		_, err := resolve(t, root, env, ForDeploy, vars)
		wantError(t, err, []string{env + " runs only on a cluster named for it", "CLUSTER=embedded"})
		if _, err := resolve(t, root, env, ForPlan, vars); err != nil {
			t.Errorf("plan %s (changes nothing) on the default cluster: %v", env, err)
		}
		s, err := resolve(t, root, env, ForDeploy, map[string]string{"CLUSTER": "embedded", "CONFIRM_PROD": "yes"})
		if err != nil || !s.Local {
			t.Errorf("CLUSTER=embedded for %s: local %v, %v", env, s.Local, err)
		}
	}
	if _, err := resolve(t, root, "dev", ForDeploy, map[string]string{"CLUSTER": "-"}); err != nil {
		t.Errorf("dev on the default embedded cluster: %v", err)
	}
	_, err := resolve(t, root, "dev", ForDeploy, map[string]string{"CLUSTER": "kind"})
	wantError(t, err, []string{"CLUSTER=kind", `the only value is "embedded"`})
	_, err = resolve(t, root, "dev", ForDeploy, map[string]string{"CLUSTER": "embedded", "KUBE_CONTEXT": "x"})
	wantError(t, err, []string{"choose one"})
}

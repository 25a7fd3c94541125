// Package deploy is what `mage deploy | plan | destroy <env>` do: resolve and validate the
// settings before any side effect, build and publish the image, run Terraform in the
// environment's workspace, follow the rollout, smoke-check the service and summarise.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/dtap-platform/monorepo/internal/cluster"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/image"
)

// Settings are everything a deploy needs, resolved from the environment variables the README
// lists. Resolve validates them all before anything is built, pushed or applied.
type Settings struct {
	Env         string
	Service     string // services/<Service> is built
	ImageName   string // IMAGE_NAME: repository name without registry
	ImageTag    string // IMAGE_TAG: default the short git sha (+ -dirty)
	Registry    string // REGISTRY: where to push; the local cluster's registry when empty
	ReleaseName string // RELEASE_NAME
	Namespace   string // NAMESPACE
	BaseURL     string // BASE_URL
	Kubeconfig  string // KUBECONFIG (first file) or the local cluster's
	KubeContext string // KUBE_CONTEXT
	ValuesFiles []string
	Secrets     map[string]string // SECRET_<NAME>: secret key -> value
	Timeout     time.Duration     // DEPLOY_TIMEOUT
	Backend     string            // TF_BACKEND_CONFIG: a -backend-config file
	Confirmed   bool              // CONFIRM_PROD=yes
	SkipBuild   bool              // SKIP_BUILD=true: promote an image that is already built
	Local       bool              // the embedded local kind cluster is the target
	Cluster     cluster.Options   // the local cluster, when Local

	RepoRoot string
}

// ImageRepository is the repository the image is pushed to and pulled from.
func (s Settings) ImageRepository() string {
	return strings.TrimSuffix(s.Registry, "/") + "/" + s.ImageName
}

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Getenv reads a variable; os.Getenv in production, a map in tests.
type Getenv func(string) string

// Resolve reads and validates the settings for env. It has no side effects: it runs no
// Docker, Terraform or cluster command (see Preflight for those checks).
func Resolve(ctx context.Context, repoRoot, env string, getenv Getenv, environ []string) (Settings, error) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return Settings{}, err
	}
	s := Settings{Env: env, RepoRoot: root, Service: or(getenv("SERVICE"), "api")}
	repoRoot = root
	chartDir := filepath.Join(repoRoot, environments.ChartDir)
	if err := environments.Validate(chartDir, env); err != nil {
		return s, err
	}
	var errs []error
	s.ImageName = or(getenv("IMAGE_NAME"), s.Service)
	s.ImageTag = getenv("IMAGE_TAG")
	if s.ImageTag == "" {
		tag, err := image.GitTag(ctx, repoRoot)
		if err != nil {
			errs = append(errs, err)
		}
		s.ImageTag = tag
	}
	if err := image.ValidateTag(s.ImageTag); err != nil {
		errs = append(errs, fmt.Errorf("IMAGE_TAG: %w", err))
	}
	s.ReleaseName = or(getenv("RELEASE_NAME"), s.Service)
	if !dns1123.MatchString(s.ReleaseName) || len(s.ReleaseName) > 53 {
		errs = append(errs, fmt.Errorf("RELEASE_NAME=%q is not a valid release name: use at most 53 lowercase letters, digits and '-', starting and ending with a letter or digit", s.ReleaseName))
	}
	s.Namespace = or(getenv("NAMESPACE"), s.Service+"-"+env)
	if !dns1123.MatchString(s.Namespace) || len(s.Namespace) > 63 {
		errs = append(errs, fmt.Errorf("NAMESPACE=%q is not a valid namespace: use at most 63 lowercase letters, digits and '-'", s.Namespace))
	}
	s.BaseURL = getenv("BASE_URL")
	if s.BaseURL != "" {
		if u, err := url.Parse(s.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			errs = append(errs, fmt.Errorf("BASE_URL=%q is not a base URL: use http(s)://host[:port], for example https://api.%s.example.com", s.BaseURL, env))
		}
	}
	for _, f := range strings.Split(getenv("VALUES_FILES"), ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		abs, err := filepath.Abs(f)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("VALUES_FILES: %s: %w", f, err))
			continue
		}
		s.ValuesFiles = append(s.ValuesFiles, abs)
	}
	s.Secrets = secretsFrom(environ)
	s.Timeout = 5 * time.Minute
	if t := getenv("DEPLOY_TIMEOUT"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d < time.Second {
			errs = append(errs, fmt.Errorf("DEPLOY_TIMEOUT=%q: use a Go duration of at least 1s, for example 5m", t))
		}
		s.Timeout = d
	}
	s.Backend = getenv("TF_BACKEND_CONFIG")
	if s.Backend != "" {
		if _, err := os.Stat(s.Backend); err != nil {
			errs = append(errs, fmt.Errorf("TF_BACKEND_CONFIG: %w", err))
		}
	}
	s.Confirmed = getenv("CONFIRM_PROD") == "yes"
	s.SkipBuild = getenv("SKIP_BUILD") == "true"

	// The target cluster: explicit (KUBECONFIG, KUBE_CONTEXT, or a current context in the
	// default kubeconfig), else the embedded local kind cluster.
	s.KubeContext = getenv("KUBE_CONTEXT")
	s.Registry = getenv("REGISTRY")
	kubeconfig, configured := configuredCluster(getenv("KUBECONFIG"), s.KubeContext)
	if configured {
		s.Kubeconfig = kubeconfig
		if s.Registry == "" {
			errs = append(errs, errors.New("REGISTRY is not set: with a configured cluster, set REGISTRY to a registry it can pull from, for example REGISTRY=registry.example.com/team"))
		}
	} else {
		o, err := cluster.OptionsFromEnv(repoRoot)
		if err != nil {
			errs = append(errs, err)
		}
		s.Local, s.Cluster, s.Kubeconfig = true, o, o.Kubeconfig
		if s.Registry == "" {
			s.Registry = o.Registry()
		}
	}
	if err := image.ValidateRepository(s.ImageRepository()); err != nil {
		errs = append(errs, fmt.Errorf("REGISTRY/IMAGE_NAME: %w", err))
	}
	return s, errors.Join(errs...)
}

// configuredCluster finds the kubeconfig of a configured cluster: KUBECONFIG, or the default
// ~/.kube/config when it has a current context (or KUBE_CONTEXT names one).
func configuredCluster(kubeconfigEnv, context string) (string, bool) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfigEnv != "" {
		rules.ExplicitPath = filepath.SplitList(kubeconfigEnv)[0]
		return rules.ExplicitPath, true
	}
	cfg, err := rules.Load()
	if err != nil || (cfg.CurrentContext == "" && context == "") {
		return "", false
	}
	return clientcmd.RecommendedHomeFile, true
}

// secretsFrom reads SECRET_<NAME>=value variables: key <name> in lower case with '-' for '_'.
func secretsFrom(environ []string) map[string]string {
	out := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if name, isSecret := strings.CutPrefix(k, "SECRET_"); ok && isSecret && name != "" {
			out[strings.ReplaceAll(strings.ToLower(name), "_", "-")] = v
		}
	}
	return out
}

// SecretKeys lists the secret keys (never their values), sorted.
func (s Settings) SecretKeys() []string {
	return slices.Sorted(maps.Keys(s.Secrets))
}

// GuardProduction refuses to change production without an explicit confirmation.
func (s Settings) GuardProduction(action string) error {
	if s.Env == environments.Production && !s.Confirmed {
		return fmt.Errorf("refusing to %s %s without confirmation: it changes production; set CONFIRM_PROD=yes to go ahead", action, s.Env)
	}
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

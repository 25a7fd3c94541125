// Package deploy is what `mage deploy | plan | destroy | unlock` do for one environment of
// many services: resolve and validate every setting before any side effect, build and publish
// what changed, write secrets straight to the cluster, run Terraform in the environment's
// workspace (its state in the cluster, one lock per environment), follow every rollout and
// fail fast, roll back what failed, smoke-check every service and summarise.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/cluster"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/rollout"
	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/internal/tf"
)

// DefaultProject names the default namespaces (<project>-<env>, <project>-system) and the
// Terraform state's secret suffix.
const DefaultProject = cluster.DefaultProject

// Purpose is what the settings are resolved for: each command validates what it uses.
type Purpose int

const (
	ForDeploy  Purpose = iota // everything
	ForPlan                   // everything, for plan and render: nothing is built or written, so prod needs no confirmation
	ForRelease                // everything, for a change that builds nothing (rollback, promote's target)
	ForDestroy                // the environment, the cluster and the namespace
	ForRead                   // as ForDestroy, for a command that changes nothing: prod needs no confirmation
)

// changes says whether a command resolved for purpose changes the environment, so that prod
// needs CONFIRM_PROD=yes.
func (p Purpose) changes() bool { return p != ForPlan && p != ForRead }

// Settings are everything a run needs, resolved from the environment variables that
// docs/operations.md lists (Every variable). Resolve validates them all before anything is built, pushed or
// applied.
type Settings struct {
	RepoRoot string
	Env      string
	Project  string // PROJECT
	// Namespace holds every service of the environment (NAMESPACE, default <project>-<env>).
	Namespace      string
	StateNamespace string // STATE_NAMESPACE: Terraform state, locks and front-door ports
	All            []services.Service
	Run            []services.Service // SERVICES: the services this run deploys (default: all)

	Registry    string // REGISTRY: where images are pushed; the local cluster's registry by default
	ImageTag    string // IMAGE_TAG: overrides every content tag
	SkipBuild   bool   // SKIP_BUILD=true: deploy images already in the registry, build nothing
	Builder     string // BUILDER: image.BuilderHost or image.BuilderDocker
	BaseURLs    map[string]string
	Secrets     map[string]map[string][]byte // service -> key -> value (SECRET_<SERVICE>_<KEY>)
	ValuesFiles []string                     // VALUES_FILES, absolute
	Rules       rollout.Rules
	// RollbackScope is ROLLBACK_SCOPE: "service" (a failed rollout rolls back that service
	// alone) or "environment" (every service the run changed, all or nothing).
	RollbackScope string
	// DriftWarn is DRIFT=warn: deploy reports drift in the services it looks at without
	// repairing it (DRIFT=repair, the default, repairs it).
	DriftWarn bool
	LockWait  time.Duration // DEPLOY_LOCK_TIMEOUT
	// Merged are the run's services' values as the chart sees them, from the source, before
	// deploy's own: read once, by Resolve.
	Merged map[string]map[string]any

	// SecretRemove are the secret keys the run removes, by service (SECRET_REMOVE): the keys of a
	// service that are neither given nor removed are carried over from the version it mounts.
	SecretRemove map[string][]string
	// AllowPlaintext are the key paths of values files let through the credential check
	// (ALLOW_PLAINTEXT_VALUES).
	AllowPlaintext []string

	Kubeconfig  string // KUBECONFIG (first file) or the local cluster's
	KubeContext string // KUBE_CONTEXT
	Local       bool   // the embedded local kind cluster is the target
	// IgnoredContext is the current context of ~/.kube/config when the embedded cluster was
	// chosen over it, so that the run can say so.
	IgnoredContext string
	Cluster        cluster.Options
	Backend        string // TF_BACKEND_CONFIG: a -backend-config file for another backend

	Confirmed     bool     // CONFIRM_PROD=yes
	ConfirmRemove []string // CONFIRM_REMOVE: services whose folder is gone and may be removed
	Upstream      string   // the environment this one's images come from (environments.yaml)
	// Pins are images to deploy as they are, by service (promote sets them): no build.
	Pins map[string]image.Ref
	// Signing is how images are signed and verified (supplychain.go).
	Signing *Signing

	purpose Purpose
}

// withTarget reads a variable from the environment, else from the environment's section of
// environments.yaml (paths there are relative to the repository root).
func withTarget(getenv Getenv, root string, targets environments.Targets, env string) Getenv {
	tg := targets.Environments[env]
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		if k == "PROJECT" {
			return targets.Project
		}
		for field, name := range environments.Var {
			if name == k {
				v := tg.Field(func(string) string { return "" }, field)
				if v != "" && (field == "kubeconfig" || field == "stateBackend" || field == "signingKey") && !filepath.IsAbs(v) {
					v = filepath.Join(root, v)
				}
				return v
			}
		}
		return ""
	}
}

// Rollback scopes (ROLLBACK_SCOPE).
const (
	RollbackService     = "service"
	RollbackEnvironment = "environment"
)

// Getenv reads a variable; os.Getenv in production, a map in tests.
type Getenv func(string) string

// reservedNamespaces belong to the cluster itself (and the embedded cluster's Gateway): no
// environment or state goes there.
var reservedNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease", "local-path-storage", "dtap-gateway"}

var (
	endsInNumber = regexp.MustCompile(`-[0-9]+$`)
	secretKey    = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

// Resolve reads and validates the settings of env for purpose. It has no side effects: it runs
// no Docker, Terraform or cluster command and writes no file; every problem is reported at
// once, each with its fix.
func Resolve(ctx context.Context, repoRoot, env string, purpose Purpose, getenv Getenv, environ []string) (Settings, error) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return Settings{}, err
	}
	s := Settings{Env: env, RepoRoot: root, purpose: purpose}
	if purpose != ForDestroy && purpose != ForRead {
		image.WarmHostGo() // `go env`, for image.Builder below, beside the rest
	}
	if err := environments.Validate(filepath.Join(root, environments.ChartDir), env); err != nil {
		return s, err
	}
	targets, err := environments.LoadTargets(root)
	if err != nil {
		return s, err
	}
	s.Upstream = targets.Environments[env].Upstream
	getenv = withTarget(getenv, root, targets, env)
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	s.Project = or(getenv("PROJECT"), DefaultProject)
	if !isDNSLabel(s.Project) || len(s.Project) > 40 || endsInNumber.MatchString(s.Project) {
		fail("PROJECT=%q is not a valid project name: use at most 40 lowercase letters, digits and '-', not ending in -<number> (Terraform's kubernetes backend reads such a suffix as a chunk number)", s.Project)
	}
	s.Namespace = or(getenv("NAMESPACE"), s.Project+"-"+env)
	if !isDNSLabel(s.Namespace) {
		fail("NAMESPACE=%q is not a valid namespace: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit", s.Namespace)
	}
	s.StateNamespace = or(getenv("STATE_NAMESPACE"), s.Project+"-system")
	if !isDNSLabel(s.StateNamespace) {
		fail("STATE_NAMESPACE=%q is not a valid namespace: use at most 63 lowercase letters, digits and '-'", s.StateNamespace)
	}
	if s.StateNamespace == s.Namespace {
		fail("STATE_NAMESPACE and NAMESPACE are both %q: the state of every environment must live apart from any one environment's namespace; choose another STATE_NAMESPACE", s.Namespace)
	}
	for _, v := range []struct{ name, ns string }{{"NAMESPACE", s.Namespace}, {"STATE_NAMESPACE", s.StateNamespace}} {
		if slices.Contains(reservedNamespaces, v.ns) {
			fail("%s=%s is a namespace of the cluster's own: choose one for this project, for example %s-%s", v.name, v.ns, s.Project, env)
		}
	}
	if known, err := environments.List(filepath.Join(root, environments.ChartDir)); err == nil {
		for _, e := range known {
			if s.StateNamespace == s.Project+"-"+e {
				fail("STATE_NAMESPACE=%s is environment %s's default namespace: the state of every environment must live apart; choose another", s.StateNamespace, e)
			}
		}
	}

	if s.All, err = services.Discover(ctx, root); err != nil {
		return s, err
	}
	if s.Run, err = services.Select(s.All, getenv("SERVICES")); err != nil {
		errs = append(errs, err)
	}
	for _, name := range splitList(getenv("CONFIRM_REMOVE")) {
		s.ConfirmRemove = append(s.ConfirmRemove, name)
	}
	s.Confirmed = getenv("CONFIRM_PROD") == "yes"
	// plan changes nothing (no lock, no state, no secret), so it needs no confirmation either.
	if env == environments.Production && !s.Confirmed && purpose.changes() {
		fail("refusing to change %s without confirmation: set CONFIRM_PROD=yes to go ahead", env)
	}
	switch d := getenv("HELM_DRIVER"); d {
	case "", "secret", "secrets":
	default:
		fail("HELM_DRIVER=%s: this project keeps every Helm release in Secrets (what history, rollback and recovery read); unset HELM_DRIVER", d)
	}
	s.LockWait = 10 * time.Minute
	if v := getenv("DEPLOY_LOCK_TIMEOUT"); v != "" {
		if s.LockWait, err = time.ParseDuration(v); err != nil || s.LockWait < 0 {
			fail("DEPLOY_LOCK_TIMEOUT=%q: use a Go duration of 0 or more, for example 10m", v)
		}
	}
	s.resolveCluster(getenv, &errs)
	if b := getenv("TF_BACKEND_CONFIG"); b != "" {
		s.Backend, _ = filepath.Abs(b)
		if st, err := os.Stat(s.Backend); err != nil || !st.Mode().IsRegular() {
			fail("TF_BACKEND_CONFIG=%s is not a readable file: point it at a -backend-config file", b)
		}
		if _, err := os.Stat(filepath.Join(root, "terraform", "backend_override.tf")); err != nil {
			fail("TF_BACKEND_CONFIG is set but terraform/backend_override.tf does not exist: create it with the backend block your config file is for (see terraform/README.md, \"Another backend\")")
		}
	}
	if dir := getenv(tf.MirrorEnv); dir != "" {
		if tf.MirrorHasHelm(dir) == "" {
			fail("%s=%s holds no hashicorp/helm provider for this platform: point it at a Terraform filesystem mirror (for example ../shared/terraform-mirror), or unset it", tf.MirrorEnv, dir)
		}
	}
	if purpose == ForDestroy || purpose == ForRead {
		return s, errors.Join(errs...)
	}
	s.resolveSigning(getenv, &errs)

	if s.Builder, err = image.Builder(); err != nil {
		errs = append(errs, err)
	}
	s.ImageTag = getenv("IMAGE_TAG")
	if s.ImageTag != "" {
		if err := image.ValidateTag(s.ImageTag); err != nil {
			fail("IMAGE_TAG: %w", err)
		}
	}
	if s.SkipBuild, err = parseBool(getenv("SKIP_BUILD")); err != nil {
		fail("SKIP_BUILD=%q: use true or false", getenv("SKIP_BUILD"))
	}
	for _, svc := range s.All {
		if err := image.ValidateRepository(s.ImageRepository(svc.Name)); err != nil {
			fail("REGISTRY=%q: %w", s.Registry, err)
			break
		}
	}
	s.BaseURLs, err = baseURLs(s.All, environ)
	if err != nil {
		errs = append(errs, err)
	}
	s.Secrets, err = readSecrets(s.All, environ)
	if err != nil {
		errs = append(errs, err)
	}
	if s.SecretRemove, err = readSecretRemovals(s.All, s.Run, s.Secrets, getenv(SecretRemoveVar)); err != nil {
		errs = append(errs, err)
	}
	s.Rules, err = rules(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	switch s.RollbackScope = or(getenv("ROLLBACK_SCOPE"), RollbackService); s.RollbackScope {
	case RollbackService, RollbackEnvironment:
	default:
		fail("ROLLBACK_SCOPE=%q: use %s (a failed rollout rolls back that service alone) or %s (every service the run changed)", s.RollbackScope, RollbackService, RollbackEnvironment)
	}
	switch getenv("DRIFT") {
	case "", "repair":
	case "warn":
		s.DriftWarn = true
	default:
		fail("DRIFT=%q: use repair (the default: deploy repairs drift) or warn (deploy reports it and changes nothing for it)", getenv("DRIFT"))
	}
	for _, f := range splitList(getenv("VALUES_FILES")) {
		abs, _ := filepath.Abs(f)
		st, err := os.Stat(abs)
		switch {
		case err != nil:
			fail("VALUES_FILES: %s: %v; list readable YAML files, separated by commas", f, err)
			continue
		case !st.Mode().IsRegular():
			fail("VALUES_FILES: %s is not a regular file; list YAML files, separated by commas", f)
			continue
		}
		s.ValuesFiles = append(s.ValuesFiles, abs)
	}
	s.AllowPlaintext = splitList(getenv(AllowPlaintextVar))
	if err := s.checkPlaintext(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		// The merged values of every service of the run must match the chart's schema.
		s.Merged = map[string]map[string]any{}
		chartDir := filepath.Join(root, environments.ChartDir)
		c, err := chart.Load(chartDir)
		if err != nil {
			return s, err
		}
		// Merged and checked against the schema on every core: the CPU a deploy of fifty
		// services spends before it asks the cluster anything.
		var mu sync.Mutex
		mergedOf, mergeErrs := map[string]map[string]any{}, map[string]error{}
		_ = forEach(services.Names(s.Run), runtime.GOMAXPROCS(0), func(name string) error {
			svc, _ := s.Service(name)
			merged, err := chart.ValuesOf(c, chartDir, env, s.valuesFiles(svc)...)
			mu.Lock()
			defer mu.Unlock()
			mergedOf[name], mergeErrs[name] = merged, err
			return nil
		})
		for _, svc := range s.Run {
			merged, err := mergedOf[svc.Name], mergeErrs[svc.Name]
			if err != nil {
				fail("service %s in %s: %w; fix the file that sets that key (VALUES_FILES, %s/values*.yaml or .helm/values-%s.yaml)", svc.Name, env, err, svc.Dir, env)
				continue
			}
			s.Merged[svc.Name] = merged
			if err := checkConfigSize(svc.Name, merged); err != nil {
				errs = append(errs, err)
			}
			if s.secretsTouched(svc.Name) {
				if on, _ := dig(merged, "externalSecret", "enabled").(bool); on {
					fail("SECRET_%s_* (or SECRET_REMOVE) are set, but %s's values in %s turn externalSecret on: its secrets come from the secret store; unset the SECRET_%s_* variables", services.EnvToken(svc.Name), svc.Name, env, services.EnvToken(svc.Name))
				}
				if name, _ := dig(merged, "secret", "existingSecret").(string); name != "" {
					fail("SECRET_%s_* (or SECRET_REMOVE) are set, but %s's values in %s mount the Secret %q of their own (secret.existingSecret): choose one", services.EnvToken(svc.Name), svc.Name, env, name)
				}
			}
		}
	}
	return s, errors.Join(errs...)
}

// ClusterEmbedded is CLUSTER's one value: the embedded local kind cluster, said explicitly.
const ClusterEmbedded = "embedded"

// resolveCluster finds the target: the cluster the user named for this run (KUBECONFIG,
// KUBE_CONTEXT, or the environment's section of environments.yaml, which sets them), else the
// embedded local kind cluster. A current context in ~/.kube/config is never taken on its own:
// it is whatever was used last, often a work cluster, not a choice made for this run.
func (s *Settings) resolveCluster(getenv Getenv, errs *[]error) {
	s.KubeContext = getenv("KUBE_CONTEXT")
	s.Registry = getenv("REGISTRY")
	named := getenv("CLUSTER")
	switch {
	case named != "" && named != ClusterEmbedded:
		*errs = append(*errs, fmt.Errorf("CLUSTER=%s: the only value is %q (the embedded local cluster); name another cluster with KUBECONFIG and KUBE_CONTEXT", named, ClusterEmbedded))
		return
	case named == ClusterEmbedded && (getenv("KUBECONFIG") != "" || s.KubeContext != ""):
		*errs = append(*errs, errors.New("CLUSTER=embedded names the embedded local cluster, and KUBECONFIG or KUBE_CONTEXT names another: choose one"))
		return
	}
	if v := getenv("KUBECONFIG"); v != "" {
		first := filepath.SplitList(v)[0]
		s.Kubeconfig, _ = filepath.Abs(first)
		if st, err := os.Stat(s.Kubeconfig); err != nil || !st.Mode().IsRegular() {
			*errs = append(*errs, fmt.Errorf("KUBECONFIG=%s: no such file: point KUBECONFIG at your cluster's kubeconfig, or unset it (and KUBE_CONTEXT) to use the local kind cluster", v))
			return
		}
	} else if home, err := os.UserHomeDir(); err == nil {
		def := filepath.Join(home, ".kube", "config")
		cfg, err := clientcmd.LoadFromFile(def)
		switch {
		case err == nil && s.KubeContext != "":
			s.Kubeconfig = def
		case err == nil && cfg.CurrentContext != "":
			s.IgnoredContext = cfg.CurrentContext
		}
	}
	if s.Kubeconfig != "" {
		cfg, err := clientcmd.LoadFromFile(s.Kubeconfig)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("kubeconfig %s cannot be read: %v; fix it, or point KUBECONFIG at another", s.Kubeconfig, err))
			return
		}
		if s.KubeContext != "" {
			if _, ok := cfg.Contexts[s.KubeContext]; !ok {
				known := slices.Sorted(maps.Keys(cfg.Contexts))
				*errs = append(*errs, fmt.Errorf("KUBE_CONTEXT=%q is not a context of %s: known are %s", s.KubeContext, s.Kubeconfig, strings.Join(known, ", ")))
			}
		}
		if s.Registry == "" && s.purpose != ForDestroy && s.purpose != ForRead {
			*errs = append(*errs, errors.New("REGISTRY is not set: with a configured cluster, set REGISTRY to a registry it can pull from, for example REGISTRY=registry.example.com/team"))
		}
		return
	}
	if s.KubeContext != "" {
		*errs = append(*errs, fmt.Errorf("KUBE_CONTEXT=%q is set, but there is no kubeconfig to find it in (KUBECONFIG is unset and ~/.kube/config has none): set KUBECONFIG to your cluster's kubeconfig, or unset KUBE_CONTEXT to use the local kind cluster", s.KubeContext))
		return
	}
	// Acceptance and production run where the user said, never on a default: a run that would
	// change them on the embedded cluster must say so.
	if (s.Env == "staging" || s.Env == environments.Production) && s.purpose.changes() && named != ClusterEmbedded {
		*errs = append(*errs, fmt.Errorf("%s runs only on a cluster named for it: set KUBECONFIG (and KUBE_CONTEXT), or kubeconfig and kubeContext in its section of environments.yaml; to use the embedded local cluster, say so: CLUSTER=embedded (or cluster: embedded in environments.yaml)", s.Env))
	}
	o, err := cluster.OptionsFromEnv(s.RepoRoot)
	if err != nil {
		*errs = append(*errs, err)
	}
	s.Local, s.Cluster, s.Kubeconfig = true, o, o.Kubeconfig
	if s.Registry == "" {
		s.Registry = o.Registry()
	}
}

// ImageRepository is where a service's image is pushed and pulled: REGISTRY/<service>.
func (s Settings) ImageRepository(service string) string {
	return strings.TrimSuffix(s.Registry, "/") + "/" + service
}

// valuesFiles are a service's values files after the environment's: its deploy description,
// then VALUES_FILES.
func (s Settings) valuesFiles(svc services.Service) []string {
	var out []string
	for _, f := range svc.ValuesFiles(s.RepoRoot, s.Env) {
		out = append(out, filepath.Join(s.RepoRoot, f))
	}
	return append(out, s.ValuesFiles...)
}

// Service returns the service of that name among all.
func (s Settings) Service(name string) (services.Service, bool) {
	i := slices.IndexFunc(s.All, func(x services.Service) bool { return x.Name == name })
	if i < 0 {
		return services.Service{}, false
	}
	return s.All[i], true
}

func rules(getenv Getenv) (rollout.Rules, error) {
	r := rollout.DefaultRules
	var errs []error
	if v := getenv("DEPLOY_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			errs = append(errs, fmt.Errorf("DEPLOY_TIMEOUT=%q: use a Go duration of at least 1s, for example 5m", v))
		}
		r.Timeout = d
	}
	if v := getenv("ROLLOUT_MAX_RESTARTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			errs = append(errs, fmt.Errorf("ROLLOUT_MAX_RESTARTS=%q: use a number of restarts from 0 to 100, for example 1", v))
		}
		r.MaxRestarts = int32(n)
	}
	if v := getenv("ROLLOUT_UNSCHEDULABLE_GRACE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("ROLLOUT_UNSCHEDULABLE_GRACE=%q: use a Go duration, for example 60s", v))
		}
		r.UnschedulableGrace = d
	}
	return r, errors.Join(errs...)
}

// serviceOf finds the service a variable suffix names: API_DB_PASSWORD is service api's key
// DB_PASSWORD. When two services' tokens both match (api and api-gw for API_GW_TOKEN), the
// longest wins; a double underscore names the service exactly (API__GW_TOKEN: api's GW_TOKEN).
func serviceOf(all []services.Service, suffix string) (services.Service, string) {
	upper := strings.ToUpper(suffix)
	if token, _, ok := strings.Cut(upper, "__"); ok {
		for _, svc := range all {
			if services.EnvToken(svc.Name) == token {
				return svc, suffix[len(token)+2:]
			}
		}
		return services.Service{}, ""
	}
	best := services.Service{}
	for _, svc := range all {
		if t := services.EnvToken(svc.Name); strings.HasPrefix(upper, t+"_") && len(t) > len(services.EnvToken(best.Name)) {
			best = svc
		}
	}
	if best.Name == "" {
		return best, ""
	}
	return best, suffix[len(services.EnvToken(best.Name))+1:]
}

// baseURLs reads BASE_URL_<SERVICE>=http(s)://host[:port] for each service.
func baseURLs(all []services.Service, environ []string) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if k == "BASE_URL" && v != "" {
			errs = append(errs, fmt.Errorf("BASE_URL is set, but public URLs are per service now: use BASE_URL_<SERVICE>, for example BASE_URL_%s=https://%s.example.com (services: %s)",
				services.EnvToken(all[0].Name), all[0].Name, strings.Join(services.Names(all), ", ")))
			continue
		}
		token, ok := strings.CutPrefix(k, "BASE_URL_")
		if !ok {
			continue
		}
		i := slices.IndexFunc(all, func(s services.Service) bool { return services.EnvToken(s.Name) == strings.ToUpper(token) })
		if i < 0 {
			errs = append(errs, fmt.Errorf("%s names no service: use BASE_URL_<SERVICE> with one of %s", k, tokens(all)))
			continue
		}
		if err := ValidateBaseURL(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			continue
		}
		out[all[i].Name] = strings.TrimSuffix(v, "/")
	}
	return out, errors.Join(errs...)
}

// ValidateBaseURL explains what is wrong with a public base URL: it must be http:// or
// https:// with a host and an optional valid port, and nothing else. A URL with credentials is
// never echoed.
func ValidateBaseURL(raw string) error {
	fix := "use http(s)://host[:port], for example https://api.staging.example.com"
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL; %s", fix)
	}
	if u.User != nil {
		// Never echoed: a token passed as the user name is as secret as a password.
		return fmt.Errorf("the URL for host %q holds credentials (user@ or user:password@): a public URL must not; %s", u.Hostname(), fix)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q does not start with http:// or https://; %s", raw, fix)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host; %s", raw, fix)
	case !isHostname(u.Hostname()) && net.ParseIP(u.Hostname()) == nil:
		return fmt.Errorf("%q: %q is not a host name (labels of at most 63 characters, 253 in all); %s", raw, u.Hostname(), fix)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.ForceQuery, u.Fragment != "", strings.Contains(raw, "#"):
		return fmt.Errorf("%q has a path, query or fragment: a base URL has none; %s", raw, fix)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %s is not between 1 and 65535; %s", raw, p, fix)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%q has an empty port; %s", raw, fix)
	}
	return nil
}

// MaxSecretBytes bounds one service's secret values together (a Secret holds at most 1 MiB).
const MaxSecretBytes = 1 << 20

// readSecrets reads SECRET_<SERVICE>_<KEY>=value and SECRET_<SERVICE>_<KEY>_FILE=path: key
// <key> of the service's Secret, in lower case with '-' for '_'. Values are byte-exact; a file
// carries what a variable cannot (a NUL byte). Values are never printed.
func readSecrets(all []services.Service, environ []string) (map[string]map[string][]byte, error) {
	out := map[string]map[string][]byte{}
	from := map[string]string{} // service/key -> the variable it came from
	var errs []error
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		suffix, ok := strings.CutPrefix(k, "SECRET_")
		if !ok || k == SecretRemoveVar {
			continue
		}
		svc, rest := serviceOf(all, suffix)
		switch {
		case svc.Name == "":
			errs = append(errs, fmt.Errorf("%s names no service: secrets are per service, SECRET_<SERVICE>_<KEY> (or ..._<KEY>_FILE=<path>), with <SERVICE> one of %s; for example SECRET_%s_%s",
				k, tokens(all), services.EnvToken(all[0].Name), suffix))
			continue
		}
		value := []byte(v)
		if name, isFile := strings.CutSuffix(rest, "_FILE"); isFile && name != "" {
			rest = name
			// The value is never echoed: it may be the secret itself, given by mistake.
			st, err := os.Stat(v)
			if err != nil || !st.Mode().IsRegular() {
				errs = append(errs, fmt.Errorf("%s does not name a readable file: set it to the path of the file that holds the secret", k))
				continue
			}
			if st.Size() > MaxSecretBytes {
				errs = append(errs, fmt.Errorf("%s names a file of %d bytes, more than a Secret holds (%d)", k, st.Size(), MaxSecretBytes))
				continue
			}
			if value, err = os.ReadFile(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: the file cannot be read: %v", k, causeOf(err)))
				continue
			}
		}
		key := strings.ToLower(strings.ReplaceAll(rest, "_", "-"))
		if !secretKey.MatchString(key) || len(key) > 253 || key == "." || key == ".." {
			errs = append(errs, fmt.Errorf("%s: %q is not a valid Secret key: use letters, digits, '-', '_' and '.' (the key is the file name the service reads)", k, key))
			continue
		}
		id := svc.Name + "/" + key
		if prev, dup := from[id]; dup {
			errs = append(errs, fmt.Errorf("%s and %s both set key %q of service %s: keep one", prev, k, key, svc.Name))
			continue
		}
		from[id] = k
		if out[svc.Name] == nil {
			out[svc.Name] = map[string][]byte{}
		}
		out[svc.Name][key] = value
	}
	for name, data := range out {
		n := 0
		for _, v := range data {
			n += len(v)
		}
		if n > MaxSecretBytes {
			errs = append(errs, fmt.Errorf("the secrets of %s hold %d bytes, more than a Secret holds (%d)", name, n, MaxSecretBytes))
		}
	}
	return out, errors.Join(errs...)
}

func tokens(all []services.Service) string {
	var t []string
	for _, s := range all {
		t = append(t, services.EnvToken(s.Name))
	}
	return strings.Join(t, ", ")
}

// SecretKeys lists a service's secret keys (never their values), sorted.
func (s Settings) SecretKeys(service string) []string {
	return slices.Sorted(maps.Keys(s.Secrets[service]))
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// isDNSLabel reports whether v is an RFC 1123 label: at most 63 lowercase letters, digits and
// '-', starting and ending with a letter or digit.
func isDNSLabel(v string) bool { return len(validation.IsDNS1123Label(v)) == 0 }

// isHostname reports whether host is a DNS name of RFC 1123 labels, 253 characters at most.
func isHostname(host string) bool {
	if len(host) > 253 {
		return false
	}
	for _, l := range strings.Split(host, ".") {
		if !isDNSLabel(l) {
			return false
		}
	}
	return true
}

// parseBool reads a yes/no setting: true, false, 1, 0 (any case), or empty for false.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "false", "0", "no":
		return false, nil
	case "true", "1", "yes":
		return true, nil
	}
	return false, fmt.Errorf("not a yes/no value: %q", v)
}

// causeOf drops the path an os error repeats.
func causeOf(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

package chart_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/services/kit/config"
	"github.com/dtap-platform/monorepo/services/kit/server"
)

// repoRoot is the repository's root, seen from this package.
var repoRoot = filepath.Join("..", "..")

// chartDir is the repository's chart, seen from this package.
var chartDir = filepath.Join(repoRoot, environments.ChartDir)

// envServiceURLs is the variable discovery sets: name=URL pairs of the environment's services.
const envServiceURLs = "SERVICE_URLS"

// namespace is where the tests install env's releases: one namespace for every service of an
// environment, as discovery assumes (SERVICE_URLS and its egress rule name the other services in
// the release's own namespace).
func namespace(env string) string { return "dtap-" + env }

func envs(t *testing.T) []string {
	t.Helper()
	list, err := environments.List(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// discovered are the monorepo's services, found as mage deploy finds them.
var discovered = sync.OnceValues(func() ([]services.Service, error) {
	return services.Discover(context.Background(), repoRoot)
})

// serviceNames are the names of the monorepo's services (every release the chart is rendered for).
func serviceNames(t *testing.T) []string {
	t.Helper()
	all, err := discovered()
	if err != nil {
		t.Fatal(err)
	}
	return services.Names(all)
}

// serviceFiles are svc's deploy description for env, as deploy passes it to the chart:
// services/<svc>/values.yaml, then services/<svc>/values-<env>.yaml, each when present.
func serviceFiles(t *testing.T, env, svc string) []string {
	t.Helper()
	all, err := discovered()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(all, func(s services.Service) bool { return s.Name == svc })
	if i < 0 {
		t.Fatalf("no service %q; the services are %v", svc, services.Names(all))
	}
	var files []string
	for _, f := range all[i].ValuesFiles(repoRoot, env) {
		files = append(files, filepath.Join(repoRoot, f))
	}
	return files
}

// renderE renders svc's release (named after the service) in env's namespace, with svc's deploy
// description and then overrides on top.
func renderE(t *testing.T, env, svc string, overrides map[string]any) (*chart.Manifest, error) {
	t.Helper()
	return chart.Render(t.Context(), chartDir, env, svc, namespace(env), overrides, serviceFiles(t, env, svc)...)
}

func render(t *testing.T, env, svc string, overrides map[string]any) *chart.Manifest {
	t.Helper()
	m, err := renderE(t, env, svc, overrides)
	if err != nil {
		t.Fatalf("render %s for %s: %v", svc, env, err)
	}
	return m
}

// eachRelease runs f in a subtest env/svc for every environment and every service.
func eachRelease(t *testing.T, f func(t *testing.T, env, svc string)) {
	t.Helper()
	names := serviceNames(t)
	for _, env := range envs(t) {
		t.Run(env, func(t *testing.T) {
			for _, svc := range names {
				t.Run(svc, func(t *testing.T) { f(t, env, svc) })
			}
		})
	}
}

func TestTheTestsRenderTheAPIAndTheStatusPage(t *testing.T) {
	names := serviceNames(t)
	for _, want := range []string{"api", "status"} {
		if !slices.Contains(names, want) {
			t.Errorf("services = %v, want %s among them", names, want)
		}
	}
	for _, f := range []string{"services/api/values.yaml", "services/status/values.yaml"} {
		if _, err := os.Stat(filepath.Join(repoRoot, f)); err != nil {
			t.Errorf("the deploy description %s: %v", f, err)
		}
	}
	// status has a values-prod.yaml, so its prod release gets it after its values.yaml.
	got := serviceFiles(t, "prod", "status")
	want := []string{filepath.Join(repoRoot, "services/status/values.yaml"), filepath.Join(repoRoot, "services/status/values-prod.yaml")}
	if !slices.Equal(got, want) {
		t.Errorf("status's files in prod = %v, want %v", got, want)
	}
	if got := serviceFiles(t, "dev", "status"); len(got) != 1 {
		t.Errorf("status's files in dev = %v, want only its values.yaml", got)
	}
}

// everything turns on every optional object and value, so that decoding and the invariants
// cover them too.
func everything() map[string]any {
	return map[string]any{
		"image": map[string]any{
			"tag":    "3f2a9c1",
			"digest": "sha256:" + strings.Repeat("ab", 32),
		},
		"imagePullSecrets":  []any{map[string]any{"name": "registry-credentials"}},
		"extraEnv":          []any{map[string]any{"name": "APP_FEATURE", "value": "on"}},
		"podLabels":         map[string]any{"team": "platform"},
		"podAnnotations":    map[string]any{"example.com/owner": "platform"},
		"nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
		"tolerations":       []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "api", "effect": "NoSchedule"}},
		"priorityClassName": "high",
		"autoscaling": map[string]any{
			"enabled": true, "minReplicas": 2, "maxReplicas": 5,
			"metrics": []any{map[string]any{
				"type": "Pods",
				"pods": map[string]any{
					"metric": map[string]any{"name": "http_requests_per_second"},
					"target": map[string]any{"type": "AverageValue", "averageValue": "100"},
				},
			}},
		},
		"httpRoute": map[string]any{
			"enabled":    true,
			"parentRefs": []any{map[string]any{"name": "public", "namespace": "gateway-system", "sectionName": "https"}},
		},
		"externalSecret": map[string]any{
			"enabled":        true,
			"secretStoreRef": map[string]any{"name": "aws"},
			"data": []any{map[string]any{
				"secretKey": "db-password",
				"remoteRef": map[string]any{"key": "dev/api/db", "property": "password"},
			}},
		},
		"serviceAccount": map[string]any{"roleArn": "arn:aws:iam::123456789012:role/api"},
		"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
		"networkPolicy": map[string]any{
			"metrics": map[string]any{"enabled": true},
			"extraEgress": []any{map[string]any{
				"to":    []any{map[string]any{"ipBlock": map[string]any{"cidr": "10.0.0.0/16"}}},
				"ports": []any{map[string]any{"port": 5432, "protocol": "TCP"}},
			}},
		},
	}
}

func TestEveryServiceRendersAndLintsCleanInEveryEnvironment(t *testing.T) {
	eachRelease(t, func(t *testing.T, env, svc string) {
		m := render(t, env, svc, nil)
		if len(m.Objects) == 0 {
			t.Fatal("rendered no object")
		}
		if err := chart.Lint(chartDir, env, serviceFiles(t, env, svc)...); err != nil {
			t.Error(err)
		}
	})
}

// discoveredServices are discovery.services as deploy would fill them for the status page.
func discoveredServices() map[string]any {
	return map[string]any{"discovery": map[string]any{"services": []any{
		map[string]any{"name": "api", "port": 8080},
		map[string]any{"name": "billing", "port": 9090},
		map[string]any{"name": "search", "port": 8080},
	}}}
}

func TestEveryRenderedObjectDecodesStrictly(t *testing.T) {
	cases := map[string]*chart.Manifest{}
	for _, env := range envs(t) {
		for _, svc := range serviceNames(t) {
			cases[env+" "+svc] = render(t, env, svc, nil)
		}
	}
	cases["dev api with every option"] = render(t, "dev", "api", everything())
	cases["dev api with secret.existingSecret"] = render(t, "dev", "api", map[string]any{"secret": map[string]any{"existingSecret": "api-secrets-1"}})
	cases["dev api behind a node port"] = render(t, "dev", "api", map[string]any{
		"service":       map[string]any{"nodePort": 30080},
		"networkPolicy": map[string]any{"frontDoor": "cidrs", "sourceCIDRs": []any{"172.18.0.2/32"}},
	})
	cases["prod status with discovered services"] = render(t, "prod", "status", discoveredServices())
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			for _, o := range m.Objects {
				if _, err := decode(o); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// intent is what the issue asks of each service in each environment.
type intent struct {
	minReplicas          int32
	hpa                  bool
	requiredAntiAffinity bool
	tls                  bool
	discovery            bool // SERVICE_URLS is set
}

// intents are keyed by environment, then service.
var intents = map[string]map[string]intent{
	"dev": {
		"api":    {minReplicas: 1},
		"status": {minReplicas: 1, discovery: true},
	},
	"test": {
		"api":    {minReplicas: 2},
		"status": {minReplicas: 2, discovery: true},
	},
	"staging": {
		"api": {minReplicas: 2, hpa: true, requiredAntiAffinity: true, tls: true},
		// services/status/values-staging.yaml, shaped like prod: no autoscaler, two replicas.
		"status": {minReplicas: 2, requiredAntiAffinity: true, tls: true, discovery: true},
	},
	"prod": {
		"api": {minReplicas: 3, hpa: true, requiredAntiAffinity: true, tls: true},
		// services/status/values-prod.yaml: no autoscaler, two replicas.
		"status": {minReplicas: 2, requiredAntiAffinity: true, tls: true, discovery: true},
	},
}

func TestEachServiceKeepsItsInvariantsInEachEnvironment(t *testing.T) {
	eachRelease(t, func(t *testing.T, env, svc string) {
		want, ok := intents[env][svc]
		if !ok {
			t.Fatalf("%s in %s has no intent in this test: add it", svc, env)
		}
		checkServer(t, render(t, env, svc, nil), env, svc, want)
	})
	t.Run("dev api with every option", func(t *testing.T) {
		checkServer(t, render(t, "dev", "api", everything()), "dev", "api", intent{minReplicas: 2, hpa: true})
	})
	t.Run("prod status with discovered services", func(t *testing.T) {
		checkServer(t, render(t, "prod", "status", discoveredServices()), "prod", "status", intents["prod"]["status"])
	})
}

// checkServer asserts the invariants every rendering keeps, and the environment's intent.
func checkServer(t *testing.T, m *chart.Manifest, env, release string, want intent) {
	t.Helper()
	d := decodeAs[*appsv1.Deployment](t, m, "Deployment", release)
	pod := d.Spec.Template
	podLabels := labels.Set(pod.Labels)

	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("Deployment selector %v does not select its pods %v (%v)", d.Spec.Selector, pod.Labels, err)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update maxUnavailable = %v, want 0", ru)
	}
	checkRestricted(t, "Deployment", pod.Spec)

	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	checkImage(t, c.Image)
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("root filesystem is not read-only")
	}
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
		t.Error("container does not run as UID 65532, the image's user")
	}

	// Probes, port and environment agree with the service's own constants.
	if len(c.Ports) != 1 || c.Ports[0].Name != server.PortName || c.Ports[0].ContainerPort != config.DefaultPort {
		t.Errorf("container ports = %+v, want %s:%d", c.Ports, server.PortName, config.DefaultPort)
	}
	type probeCheck struct {
		probe *corev1.Probe
		path  string
	}
	probes := map[string]probeCheck{
		"liveness":  {c.LivenessProbe, server.PathHealthz},
		"readiness": {c.ReadinessProbe, server.PathReadyz},
	}
	// dev and test drop the startup probe for speed; staging and prod keep it for slow starters.
	if env == "dev" || env == "test" {
		if c.StartupProbe != nil {
			t.Errorf("%s has a startup probe; values-%s.yaml turns it off", env, env)
		}
	} else {
		probes["startup"] = probeCheck{c.StartupProbe, server.PathHealthz}
	}
	for name, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe is missing", name)
			continue
		}
		if g := p.probe.HTTPGet; g.Path != p.path || g.Port != intstr.FromString(server.PortName) {
			t.Errorf("%s probe GETs %s on port %s, want %s on %s", name, g.Path, g.Port.String(), p.path, server.PortName)
		}
	}
	envVars := map[string]string{}
	for _, e := range c.Env {
		envVars[e.Name] = e.Value
	}
	wantEnv := map[string]string{
		config.EnvPort:            strconv.Itoa(config.DefaultPort),
		config.EnvEnvironment:     env,
		config.EnvRelease:         release,
		config.EnvShutdownDrain:   config.DefaultShutdownDrain.String(),
		config.EnvShutdownTimeout: config.DefaultShutdownTimeout.String(),
	}
	for k, v := range wantEnv {
		if envVars[k] != v {
			t.Errorf("env %s = %q, want %q", k, envVars[k], v)
		}
	}
	if _, ok := envVars[config.EnvLogLevel]; !ok {
		t.Errorf("env %s is not set", config.EnvLogLevel)
	}
	if _, ok := envVars[envServiceURLs]; ok != want.discovery {
		t.Errorf("env %s set = %v, want %v", envServiceURLs, ok, want.discovery)
	}
	checkMounted(t, c, envVars, config.EnvConfigDir, "config")
	checkMounted(t, c, envVars, config.EnvSecretsDir, "secrets")
	grace := pod.Spec.TerminationGracePeriodSeconds
	if drain := config.DefaultShutdownDrain + config.DefaultShutdownTimeout; grace == nil || time.Duration(*grace)*time.Second <= drain {
		t.Errorf("terminationGracePeriodSeconds = %v, want more than drain + shutdown timeout (%s)", grace, drain)
	}

	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
		t.Errorf("resources = %+v, want cpu and memory requests and a memory limit", c.Resources)
	}

	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Error("the pods mount a service account token by default")
	}

	// Scaling: the HPA owns the replicas when it is on; a PDB exactly when min replicas > 1.
	_, hasHPA := m.Find("HorizontalPodAutoscaler", release)
	if hasHPA != want.hpa {
		t.Errorf("HorizontalPodAutoscaler rendered = %v, want %v", hasHPA, want.hpa)
	}
	minReplicas := int32(1)
	if d.Spec.Replicas != nil {
		minReplicas = *d.Spec.Replicas
	}
	if hasHPA {
		hpa := decodeAs[*autoscalingv2.HorizontalPodAutoscaler](t, m, "HorizontalPodAutoscaler", release)
		if d.Spec.Replicas != nil {
			t.Error("the Deployment sets replicas although the HPA is on")
		}
		if hpa.Spec.ScaleTargetRef.Name != d.Name || hpa.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("HPA targets %+v, want Deployment %s", hpa.Spec.ScaleTargetRef, d.Name)
		}
		if hpa.Spec.MinReplicas == nil {
			t.Fatal("HPA has no minReplicas")
		}
		minReplicas = *hpa.Spec.MinReplicas
		if hpa.Spec.Behavior == nil || hpa.Spec.Behavior.ScaleDown == nil {
			t.Error("HPA has no scale-down behavior")
		}
	}
	if minReplicas != want.minReplicas {
		t.Errorf("minimum replicas = %d, want %d", minReplicas, want.minReplicas)
	}
	_, hasPDB := m.Find("PodDisruptionBudget", release)
	if hasPDB != (minReplicas > 1) {
		t.Errorf("PodDisruptionBudget rendered = %v with min replicas %d, want it exactly when above 1", hasPDB, minReplicas)
	}
	if hasPDB {
		pdb := decodeAs[*policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget", release)
		if s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !s.Matches(podLabels) {
			t.Errorf("PDB selector %v does not select the pods", pdb.Spec.Selector)
		}
	}

	aff := pod.Spec.Affinity
	required := aff != nil && aff.PodAntiAffinity != nil && len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0
	if required != want.requiredAntiAffinity {
		t.Errorf("required pod anti-affinity = %v, want %v", required, want.requiredAntiAffinity)
	}
	if len(pod.Spec.TopologySpreadConstraints) == 0 {
		t.Error("no topologySpreadConstraints")
	}

	// The Service, NetworkPolicy and Ingress point at these pods and this port.
	svc := decodeAs[*corev1.Service](t, m, "Service", release)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service selector %v does not select the pods", svc.Spec.Selector)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != server.PortName || svc.Spec.Ports[0].TargetPort != intstr.FromString(server.PortName) {
		t.Errorf("Service ports = %+v, want one named %s", svc.Spec.Ports, server.PortName)
	}
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.Ports[0].NodePort != 0 {
		t.Errorf("Service type %s, node port %d; want ClusterIP with no node port unless service.nodePort is set", svc.Spec.Type, svc.Spec.Ports[0].NodePort)
	}
	np := decodeAs[*networkingv1.NetworkPolicy](t, m, "NetworkPolicy", release)
	if s, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || !s.Matches(podLabels) {
		t.Errorf("NetworkPolicy selects %v, not the pods %v", np.Spec.PodSelector, pod.Labels)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || len(np.Spec.Egress) == 0 {
		t.Error("NetworkPolicy does not limit egress")
	}

	if _, ok := m.Find("Ingress", release); ok {
		in := decodeAs[*networkingv1.Ingress](t, m, "Ingress", release)
		b := in.Spec.Rules[0].HTTP.Paths[0].Backend.Service
		if b.Name != svc.Name || b.Port.Name != server.PortName {
			t.Errorf("Ingress backend %+v, want Service %s port %s", b, svc.Name, server.PortName)
		}
		if hasTLS := len(in.Spec.TLS) > 0; hasTLS != want.tls {
			t.Errorf("Ingress TLS = %v, want %v", hasTLS, want.tls)
		}
	} else if want.tls {
		t.Error("no Ingress, so no TLS")
	}

	// The helm test hook probes the Service's /readyz and /config, restricted like the server.
	test := decodeAs[*corev1.Pod](t, m, "Pod", release+"-test")
	checkRestricted(t, "test Pod", test.Spec)
	args := strings.Join(test.Spec.Containers[0].Args, " ")
	base := fmt.Sprintf("http://%s.%s.svc:%d", svc.Name, namespace(env), svc.Spec.Ports[0].Port)
	for _, path := range []string{server.PathReadyz, server.PathConfig} {
		if !strings.Contains(args, base+path) {
			t.Errorf("test pod args %q do not probe %s", args, base+path)
		}
	}
	if test.Spec.Containers[0].Image != c.Image {
		t.Errorf("test pod image %s, want the service's %s", test.Spec.Containers[0].Image, c.Image)
	}
	if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(test.Labels)) {
		t.Error("the Service selects the test pod")
	}
	if s, _ := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); s.Matches(labels.Set(test.Labels)) {
		t.Error("the NetworkPolicy selects the test pod, so it would block its egress")
	}
}

func checkMounted(t *testing.T, c corev1.Container, env map[string]string, name, volume string) {
	t.Helper()
	dir, set := env[name]
	idx := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == volume })
	switch {
	case set && (idx < 0 || c.VolumeMounts[idx].MountPath != dir):
		t.Errorf("%s=%s but volume %q is not mounted there", name, dir, volume)
	case !set && idx >= 0:
		t.Errorf("volume %q is mounted but %s is not set", volume, name)
	case idx >= 0 && !c.VolumeMounts[idx].ReadOnly:
		t.Errorf("volume %q is writable", volume)
	}
}

var tagged = regexp.MustCompile(`^[^@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]*|@sha256:[a-f0-9]{64})$`)

func checkImage(t *testing.T, image string) {
	t.Helper()
	if !tagged.MatchString(image) || strings.HasSuffix(image, ":latest") {
		t.Errorf("image %q: want a pinned tag (not latest) or a digest", image)
	}
}

// checkRestricted asserts the rules of Pod Security Standard "restricted" (v1.34) that a pod
// spec can break, so that the pods are admitted where the namespace enforces it.
func checkRestricted(t *testing.T, what string, spec corev1.PodSpec) {
	t.Helper()
	fail := func(format string, args ...any) { t.Errorf(what+": restricted: "+format, args...) }
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		fail("uses host namespaces")
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap == nil && v.Secret == nil && v.EmptyDir == nil && v.Projected == nil &&
			v.DownwardAPI == nil && v.PersistentVolumeClaim == nil && v.CSI == nil && v.Ephemeral == nil {
			fail("volume %s has a type restricted does not allow", v.Name)
		}
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	podSeccomp := psc.SeccompProfile != nil && psc.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined
	podNonRoot := psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		fail("pod runs as UID 0")
	}
	for _, s := range psc.Sysctls {
		fail("sysctl %s", s.Name)
	}
	containers := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range containers {
		sc := c.SecurityContext
		if sc == nil {
			fail("container %s has no securityContext", c.Name)
			continue
		}
		if sc.Privileged != nil && *sc.Privileged {
			fail("container %s is privileged", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			fail("container %s does not set allowPrivilegeEscalation: false", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			fail("container %s does not drop ALL capabilities", c.Name)
		}
		if sc.Capabilities != nil {
			for _, add := range sc.Capabilities.Add {
				if add != "NET_BIND_SERVICE" {
					fail("container %s adds capability %s", c.Name, add)
				}
			}
		}
		if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			fail("container %s may run as root (runAsNonRoot)", c.Name)
		}
		if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
			fail("container %s sets runAsNonRoot: false", c.Name)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			fail("container %s runs as UID 0", c.Name)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined {
			fail("container %s is seccomp Unconfined", c.Name)
		}
		if !podSeccomp && sc.SeccompProfile == nil {
			fail("container %s has no seccomp profile", c.Name)
		}
		if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
			fail("container %s unmasks /proc", c.Name)
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				fail("container %s uses host port %d", c.Name, p.HostPort)
			}
		}
	}
}

// The paths the chart mounts the service's directories at.
const (
	configDir  = "/etc/service/config"
	secretsDir = "/etc/service/secrets"
)

func TestTheServiceDirectoriesAreMountedFromTheirSources(t *testing.T) {
	for _, tc := range []struct {
		name, svc  string
		overrides  map[string]any
		configMap  string // the ConfigMap mounted at configDir, "" for none
		secretName string // the Secret mounted at secretsDir, "" for none
	}{
		// Every environment file sets config (dtap-stage); null removes it, as with helm --set config=null.
		{name: "nothing to mount", svc: "api", overrides: map[string]any{"config": nil}},
		{name: "the environment's config files", svc: "status", configMap: "status"},
		{name: "a Secret without config", svc: "api", overrides: map[string]any{"config": nil, "secret": map[string]any{"existingSecret": "api-secrets-1"}}, secretName: "api-secrets-1"},
		{name: "the Secret deploy writes", svc: "api", overrides: map[string]any{"secret": map[string]any{"existingSecret": "api-secrets-7"}}, configMap: "api", secretName: "api-secrets-7"},
		{name: "a Secret of the status page", svc: "status", overrides: map[string]any{"secret": map[string]any{"existingSecret": "status-secrets-2"}}, configMap: "status", secretName: "status-secrets-2"},
		{name: "the Secret an ExternalSecret fills", svc: "api", overrides: map[string]any{"externalSecret": map[string]any{
			"enabled": true, "secretStoreRef": map[string]any{"name": "aws"},
			"data": []any{map[string]any{"secretKey": "token", "remoteRef": map[string]any{"key": "dev/api/token"}}},
		}}, configMap: "api", secretName: "api"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := render(t, "dev", tc.svc, tc.overrides)
			d := decodeAs[*appsv1.Deployment](t, m, "Deployment", tc.svc)
			spec := d.Spec.Template.Spec
			c := spec.Containers[0]
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			checkDir(t, spec, env, config.EnvConfigDir, "config", configDir, tc.configMap, func(v corev1.Volume) string {
				if v.ConfigMap == nil {
					return ""
				}
				return v.ConfigMap.Name
			})
			checkDir(t, spec, env, config.EnvSecretsDir, "secrets", secretsDir, tc.secretName, func(v corev1.Volume) string {
				if v.Secret == nil {
					return ""
				}
				if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440 {
					t.Errorf("secret volume defaultMode = %v, want 0440 (the pod's group only)", v.Secret.DefaultMode)
				}
				return v.Secret.SecretName
			})
			if tc.configMap != "" {
				if _, ok := m.Find("ConfigMap", tc.configMap); !ok {
					t.Errorf("no ConfigMap %s rendered", tc.configMap)
				}
			}
			// Secret values never pass through Helm: the chart renders no Secret, whatever the source.
			for _, o := range m.Objects {
				if o.Kind == "Secret" {
					t.Errorf("the chart rendered Secret %s", o.Name)
				}
			}
			if existing := tc.overrides["secret"]; existing != nil && !strings.Contains(m.Notes, tc.secretName) {
				t.Errorf("NOTES do not name the mounted Secret %s:\n%s", tc.secretName, m.Notes)
			}
		})
	}
}

// checkDir asserts that variable (CONFIG_DIR or SECRETS_DIR) is dir exactly when a volume
// named volume from source (a ConfigMap or Secret name, "" for none) is mounted there read-only.
func checkDir(t *testing.T, spec corev1.PodSpec, env map[string]string, variable, volume, dir, source string, sourceOf func(corev1.Volume) string) {
	t.Helper()
	c := spec.Containers[0]
	got, set := env[variable]
	vi := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == volume })
	mi := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == volume })
	if source == "" {
		if set || vi >= 0 || mi >= 0 {
			t.Errorf("%s = %q, volume %q at %d, mount at %d; want none of them", variable, got, volume, vi, mi)
		}
		return
	}
	if got != dir {
		t.Errorf("%s = %q (set %v), want %s", variable, got, set, dir)
	}
	if vi < 0 || sourceOf(spec.Volumes[vi]) != source {
		t.Errorf("volume %q is not %s: %+v", volume, source, spec.Volumes)
	}
	if mi < 0 || c.VolumeMounts[mi].MountPath != dir || !c.VolumeMounts[mi].ReadOnly {
		t.Errorf("volume %q is not mounted read-only at %s: %+v", volume, dir, c.VolumeMounts)
	}
}

func TestThePodsRollWhenConfigOrSecretsChange(t *testing.T) {
	podTemplate := func(t *testing.T, overrides map[string]any) corev1.PodTemplateSpec {
		t.Helper()
		return decodeAs[*appsv1.Deployment](t, render(t, "dev", "api", overrides), "Deployment", "api").Spec.Template
	}
	withConfig := func(v string) map[string]any {
		return map[string]any{"config": map[string]any{"greeting": v}}
	}
	withSecret := func(name string) map[string]any {
		return map[string]any{"secret": map[string]any{"existingSecret": name}}
	}
	withExternalSecret := func(key string) map[string]any {
		return map[string]any{"externalSecret": map[string]any{
			"enabled": true, "secretStoreRef": map[string]any{"name": "aws"},
			"data": []any{map[string]any{"secretKey": "token", "remoteRef": map[string]any{"key": key}}},
		}}
	}
	for _, tc := range []struct {
		name string
		key  string // the checksum annotation that changes, "" when the change is by name
		a, b map[string]any
	}{
		{"config content", "checksum/config", withConfig("hello"), withConfig("hi")},
		// deploy writes a new Secret (a new name) when a SECRET_* value changes.
		{"a new version of the existing Secret", "", withSecret("api-secrets-1"), withSecret("api-secrets-2")},
		{"the ExternalSecret's keys", "checksum/secret", withExternalSecret("dev/api/one"), withExternalSecret("dev/api/two")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, again, b := podTemplate(t, tc.a), podTemplate(t, tc.a), podTemplate(t, tc.b)
			if !reflect.DeepEqual(a, again) {
				t.Error("the pod template differs between two renderings of the same values")
			}
			if reflect.DeepEqual(a, b) {
				t.Errorf("the pod template did not change when the %s changed, so the pods would not roll", tc.name)
			}
			if tc.key == "" {
				return
			}
			if a.Annotations[tc.key] == "" {
				t.Fatalf("no %s annotation", tc.key)
			}
			if a.Annotations[tc.key] == b.Annotations[tc.key] {
				t.Errorf("%s did not change when the %s changed", tc.key, tc.name)
			}
		})
	}
}

func TestOptionalObjectsRenderAsAsked(t *testing.T) {
	const release = "api"
	m := render(t, "dev", release, everything())

	d := decodeAs[*appsv1.Deployment](t, m, "Deployment", release)
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "api@sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("image = %s, want repository@digest", img)
	}
	if got := d.Labels["app.kubernetes.io/version"]; got != "3f2a9c1" {
		t.Errorf("version label = %q, want the image tag", got)
	}
	if d.Spec.Template.Labels["team"] != "platform" || d.Spec.Template.Spec.PriorityClassName != "high" ||
		len(d.Spec.Template.Spec.Tolerations) != 1 || d.Spec.Template.Spec.NodeSelector["kubernetes.io/os"] != "linux" ||
		len(d.Spec.Template.Spec.ImagePullSecrets) != 1 {
		t.Error("pod labels, priorityClassName, tolerations, nodeSelector or imagePullSecrets are missing")
	}

	route := decodeAs[*gatewayv1.HTTPRoute](t, m, "HTTPRoute", release)
	if len(route.Spec.ParentRefs) != 1 || route.Spec.ParentRefs[0].Name != "public" {
		t.Errorf("HTTPRoute parentRefs = %+v", route.Spec.ParentRefs)
	}
	if len(route.Spec.Hostnames) != 1 || route.Spec.Hostnames[0] != "api.dev.localhost" {
		t.Errorf("HTTPRoute hostnames = %v, want <release>.<domain>", route.Spec.Hostnames)
	}
	if br := route.Spec.Rules[0].BackendRefs[0]; string(br.Name) != release || br.Port == nil || int(*br.Port) != config.DefaultPort {
		t.Errorf("HTTPRoute backend = %+v, want the Service on port %d", br, config.DefaultPort)
	}

	es := decodeAs[*externalSecret](t, m, "ExternalSecret", release)
	if es.Spec.Target.Name != release || es.Spec.SecretStoreRef.Name != "aws" || es.Spec.Data[0].RemoteRef.Key != "dev/api/db" {
		t.Errorf("ExternalSecret spec = %+v", es.Spec)
	}
	if d.Spec.Template.Annotations["checksum/secret"] == "" {
		t.Error("no checksum/secret for the ExternalSecret")
	}

	sm := decodeAs[*serviceMonitor](t, m, "ServiceMonitor", release)
	if ep := sm.Spec.Endpoints[0]; ep.Port != server.PortName || ep.Path != server.PathMetrics {
		t.Errorf("ServiceMonitor endpoint = %+v, want %s on %s", ep, server.PathMetrics, server.PortName)
	}

	sa := decodeAs[*corev1.ServiceAccount](t, m, "ServiceAccount", release)
	if sa.Annotations["eks.amazonaws.com/role-arn"] != "arn:aws:iam::123456789012:role/api" {
		t.Errorf("ServiceAccount annotations = %v, want the IRSA role", sa.Annotations)
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("the ServiceAccount automounts its token")
	}

	np := decodeAs[*networkingv1.NetworkPolicy](t, m, "NetworkPolicy", release)
	if len(np.Spec.Ingress) != 3 || len(np.Spec.Egress) != 2 {
		t.Errorf("NetworkPolicy has %d ingress and %d egress rules, want 3 (controller, namespace, monitoring) and 2 (DNS, extra)", len(np.Spec.Ingress), len(np.Spec.Egress))
	}
}

func TestObjectsAreNamedAfterTheReleaseUnlessOverridden(t *testing.T) {
	for _, tc := range []struct {
		name, svc          string
		overrides          map[string]any
		objects, nameLabel string
	}{
		{"the api", "api", nil, "api", "api"},
		{"the status page", "status", nil, "status", "status"},
		{"fullnameOverride renames the objects only", "status", map[string]any{"fullnameOverride": "board"}, "board", "status"},
		{"nameOverride renames the name label only", "status", map[string]any{"nameOverride": "page"}, "status", "page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := render(t, "test", tc.svc, tc.overrides)
			for _, o := range m.Objects {
				want := tc.objects
				if o.Hook {
					want += "-test"
				}
				if o.Name != want {
					t.Errorf("%s is named %s, want %s", o.Kind, o.Name, want)
				}
				meta := objectMeta(t, o)
				if got := meta.Labels["app.kubernetes.io/name"]; got != tc.nameLabel {
					t.Errorf("%s %s: app.kubernetes.io/name = %q, want %q", o.Kind, o.Name, got, tc.nameLabel)
				}
				if got := meta.Labels["app.kubernetes.io/instance"]; got != tc.svc {
					t.Errorf("%s %s: app.kubernetes.io/instance = %q, want the release %q", o.Kind, o.Name, got, tc.svc)
				}
			}
		})
	}
}

// objectMeta reads an object's metadata.
func objectMeta(t *testing.T, o chart.Object) metav1.ObjectMeta {
	t.Helper()
	var v struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal([]byte(o.YAML), &v); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Name, err)
	}
	return v.Metadata
}

func TestIngressClassIsTheClustersDefaultUnlessAnEnvironmentPicksOne(t *testing.T) {
	want := map[string]string{"dev": "nginx", "test": "", "staging": "", "prod": ""}
	eachRelease(t, func(t *testing.T, env, svc string) {
		in := decodeAs[*networkingv1.Ingress](t, render(t, env, svc, nil), "Ingress", svc)
		got := ""
		if in.Spec.IngressClassName != nil {
			got = *in.Spec.IngressClassName
		}
		if w, ok := want[env]; !ok || got != w {
			t.Errorf("ingressClassName = %q, want %q (known: %v)", got, w, ok)
		}
	})
}

func TestAPortSetByValueReachesEveryObject(t *testing.T) {
	for _, svc := range serviceNames(t) {
		t.Run(svc, func(t *testing.T) {
			m := render(t, "prod", svc, map[string]any{"service": map[string]any{"port": 9090}})
			d := decodeAs[*appsv1.Deployment](t, m, "Deployment", svc)
			c := d.Spec.Template.Spec.Containers[0]
			port := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == config.EnvPort && e.Value == "9090" })
			if c.Ports[0].ContainerPort != 9090 || port < 0 {
				t.Errorf("container port %d and env %v, want 9090", c.Ports[0].ContainerPort, c.Env)
			}
			if s := decodeAs[*corev1.Service](t, m, "Service", svc); s.Spec.Ports[0].Port != 9090 {
				t.Errorf("Service port = %d, want 9090", s.Spec.Ports[0].Port)
			}
			test := decodeAs[*corev1.Pod](t, m, "Pod", svc+"-test")
			if args := strings.Join(test.Spec.Containers[0].Args, " "); !strings.Contains(args, ":9090"+server.PathReadyz) {
				t.Errorf("test pod args %q do not use port 9090", args)
			}
		})
	}
}

func TestTheGracePeriodOutlastsACustomDrain(t *testing.T) {
	m := render(t, "dev", "api", map[string]any{"shutdown": map[string]any{"drainSeconds": 20, "timeoutSeconds": 25}})
	d := decodeAs[*appsv1.Deployment](t, m, "Deployment", "api")
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g <= 45 {
		t.Errorf("terminationGracePeriodSeconds = %v, want more than 45", g)
	}
}

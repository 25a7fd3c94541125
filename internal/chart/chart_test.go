package chart_test

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
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

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/services/api/config"
	"github.com/dtap-platform/monorepo/services/api/server"
)

// chartDir is the repository's chart, seen from this package.
var chartDir = filepath.Join("..", "..", environments.ChartDir)

// release is the release name the tests render with; with the chart named "api", every object
// is named "api" too.
const release = "api"

func envs(t *testing.T) []string {
	t.Helper()
	list, err := environments.List(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func render(t *testing.T, env string, overrides map[string]any) *chart.Manifest {
	t.Helper()
	m, err := chart.Render(t.Context(), chartDir, env, release, "api-"+env, overrides)
	if err != nil {
		t.Fatalf("render %s: %v", env, err)
	}
	return m
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

func TestEveryEnvironmentRendersAndLintsClean(t *testing.T) {
	for _, env := range envs(t) {
		t.Run(env, func(t *testing.T) {
			m := render(t, env, nil)
			if len(m.Objects) == 0 {
				t.Fatal("rendered no object")
			}
			if err := chart.Lint(chartDir, env); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestEveryRenderedObjectDecodesStrictly(t *testing.T) {
	cases := map[string]*chart.Manifest{}
	for _, env := range envs(t) {
		cases[env] = render(t, env, nil)
	}
	cases["dev with every option"] = render(t, "dev", everything())
	cases["dev with secret.create"] = render(t, "dev", map[string]any{"secret": map[string]any{"create": true, "data": map[string]any{"k": "v"}}})
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

// intent is what the issue asks of each environment.
type intent struct {
	minReplicas          int32
	hpa                  bool
	requiredAntiAffinity bool
	tls                  bool
}

var intents = map[string]intent{
	"dev":     {minReplicas: 1},
	"test":    {minReplicas: 2},
	"staging": {minReplicas: 2, hpa: true, requiredAntiAffinity: true, tls: true},
	"prod":    {minReplicas: 3, hpa: true, requiredAntiAffinity: true, tls: true},
}

func TestEachEnvironmentKeepsItsInvariants(t *testing.T) {
	for _, env := range envs(t) {
		t.Run(env, func(t *testing.T) {
			want, ok := intents[env]
			if !ok {
				t.Fatalf("environment %s has no intent in this test: add it", env)
			}
			m := render(t, env, nil)
			checkServer(t, m, env, want)
		})
	}
	t.Run("dev with every option", func(t *testing.T) {
		checkServer(t, render(t, "dev", everything()), "dev", intent{minReplicas: 2, hpa: true})
	})
}

// checkServer asserts the invariants every rendering keeps, and the environment's intent.
func checkServer(t *testing.T, m *chart.Manifest, env string, want intent) {
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
	for name, p := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{
		"startup":   {c.StartupProbe, server.PathHealthz},
		"liveness":  {c.LivenessProbe, server.PathHealthz},
		"readiness": {c.ReadinessProbe, server.PathReadyz},
	} {
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
	base := fmt.Sprintf("http://%s.api-%s.svc:%d", svc.Name, env, svc.Spec.Ports[0].Port)
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

func TestTheSecretValueIsOnlyInTheSecret(t *testing.T) {
	const value = "s3cr3t-Value-7d9f" // the raw value, and its base64, must not leak
	encoded := base64.StdEncoding.EncodeToString([]byte(value))
	m := render(t, "dev", map[string]any{"secret": map[string]any{"create": true, "data": map[string]any{"db-password": value}}})

	s := decodeAs[*corev1.Secret](t, m, "Secret", release)
	if string(s.Data["db-password"]) != value {
		t.Errorf("Secret data[db-password] = %q, want the value", s.Data["db-password"])
	}
	for _, o := range m.Objects {
		if o.Kind == "Secret" {
			continue
		}
		if strings.Contains(o.YAML, value) || strings.Contains(o.YAML, encoded) {
			t.Errorf("%s %s contains the secret value", o.Kind, o.Name)
		}
	}
	if strings.Contains(m.Notes, value) || strings.Contains(m.Notes, encoded) {
		t.Error("NOTES contain the secret value")
	}
	if !strings.Contains(m.Notes, "WARNING: secret.create") || !strings.Contains(m.Notes, "db-password") {
		t.Errorf("NOTES do not warn about secret.create naming its keys:\n%s", m.Notes)
	}

	d := decodeAs[*appsv1.Deployment](t, m, "Deployment", release)
	sum := d.Spec.Template.Annotations["checksum/secret"]
	if !regexp.MustCompile(`^[a-f0-9]{64}$`).MatchString(sum) {
		t.Errorf("checksum/secret = %q, want a sha256", sum)
	}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Value == value || e.ValueFrom != nil {
			t.Errorf("env %s carries the secret", e.Name)
		}
	}
	vol := slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Secret != nil })
	if vol < 0 || d.Spec.Template.Spec.Volumes[vol].Secret.SecretName != s.Name {
		t.Errorf("the Secret %s is not mounted", s.Name)
	}
}

func TestChecksumsRollThePodsWhenConfigOrSecretsChange(t *testing.T) {
	annotations := func(overrides map[string]any) map[string]string {
		d := decodeAs[*appsv1.Deployment](t, render(t, "dev", overrides), "Deployment", release)
		return d.Spec.Template.Annotations
	}
	withConfig := func(v string) map[string]any {
		return map[string]any{"config": map[string]any{"greeting": v}}
	}
	withSecret := func(v string) map[string]any {
		return map[string]any{"secret": map[string]any{"create": true, "data": map[string]any{"token": v}}}
	}
	for _, tc := range []struct {
		name, key string
		a, b      map[string]any
	}{
		{"config", "checksum/config", withConfig("hello"), withConfig("hi")},
		{"created secret", "checksum/secret", withSecret("one"), withSecret("two")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, again, b := annotations(tc.a)[tc.key], annotations(tc.a)[tc.key], annotations(tc.b)[tc.key]
			if a == "" {
				t.Fatalf("no %s annotation", tc.key)
			}
			if a != again {
				t.Errorf("%s differs between two renderings of the same values", tc.key)
			}
			if a == b {
				t.Errorf("%s did not change when the %s changed", tc.key, tc.name)
			}
		})
	}
}

func TestOptionalObjectsRenderAsAsked(t *testing.T) {
	m := render(t, "dev", everything())

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
		t.Errorf("HTTPRoute hostnames = %v, want baseUrl's host", route.Spec.Hostnames)
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

func TestIngressClassIsTheClustersDefaultUnlessAnEnvironmentPicksOne(t *testing.T) {
	for env, want := range map[string]string{"dev": "nginx", "test": "", "staging": "", "prod": ""} {
		in := decodeAs[*networkingv1.Ingress](t, render(t, env, nil), "Ingress", release)
		got := ""
		if in.Spec.IngressClassName != nil {
			got = *in.Spec.IngressClassName
		}
		if got != want {
			t.Errorf("%s: ingressClassName = %q, want %q", env, got, want)
		}
	}
}

func TestAPortSetByValueReachesEveryObject(t *testing.T) {
	m := render(t, "prod", map[string]any{"service": map[string]any{"port": 9090}})
	d := decodeAs[*appsv1.Deployment](t, m, "Deployment", release)
	c := d.Spec.Template.Spec.Containers[0]
	port := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == config.EnvPort && e.Value == "9090" })
	if c.Ports[0].ContainerPort != 9090 || port < 0 {
		t.Errorf("container port %d and env %v, want 9090", c.Ports[0].ContainerPort, c.Env)
	}
	if svc := decodeAs[*corev1.Service](t, m, "Service", release); svc.Spec.Ports[0].Port != 9090 {
		t.Errorf("Service port = %d, want 9090", svc.Spec.Ports[0].Port)
	}
	test := decodeAs[*corev1.Pod](t, m, "Pod", release+"-test")
	if args := strings.Join(test.Spec.Containers[0].Args, " "); !strings.Contains(args, ":9090"+server.PathReadyz) {
		t.Errorf("test pod args %q do not use port 9090", args)
	}
}

func TestTheGracePeriodOutlastsACustomDrain(t *testing.T) {
	m := render(t, "dev", map[string]any{"shutdown": map[string]any{"drainSeconds": 20, "timeoutSeconds": 25}})
	d := decodeAs[*appsv1.Deployment](t, m, "Deployment", release)
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g <= 45 {
		t.Errorf("terminationGracePeriodSeconds = %v, want more than 45", g)
	}
}

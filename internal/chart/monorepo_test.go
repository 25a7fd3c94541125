package chart_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/services/kit/server"
	"github.com/dtap-platform/monorepo/services/status/board"
)

// The labels deploy checks before it adopts a release or destroys anything.
const (
	labelService     = "dtap.dev/service"
	labelEnvironment = "dtap.dev/environment"
)

// withRoute turns the HTTPRoute on, attached to a Gateway.
func withRoute(overrides map[string]any) map[string]any {
	out := map[string]any{"httpRoute": map[string]any{
		"enabled":    true,
		"parentRefs": []any{map[string]any{"name": "public", "namespace": "gateway-system"}},
	}}
	for k, v := range overrides {
		out[k] = v
	}
	return out
}

func TestThePublicHostIsTheReleaseUnderTheDomainUnlessBaseUrlIsSet(t *testing.T) {
	for _, tc := range []struct {
		name, env, svc string
		overrides      map[string]any
		host           string // Ingress rule host and HTTPRoute hostname; "" for any host
		url            string // the public URL NOTES show
		tlsSecret      string // the Ingress TLS secret; "" for no TLS
		issuer         string // the cert-manager.io/cluster-issuer annotation
	}{
		{name: "dev api over http", env: "dev", svc: "api", host: "api.dev.localhost", url: "http://api.dev.localhost"},
		{name: "dev status over http", env: "dev", svc: "status", host: "status.dev.localhost", url: "http://status.dev.localhost"},
		{name: "test api over http", env: "test", svc: "api", host: "api.test.example.com", url: "http://api.test.example.com"},
		{name: "staging api over https", env: "staging", svc: "api", host: "api.staging.example.com", url: "https://api.staging.example.com", tlsSecret: "api-tls", issuer: "letsencrypt-staging"},
		{name: "prod api over https", env: "prod", svc: "api", host: "api.example.com", url: "https://api.example.com", tlsSecret: "api-tls", issuer: "letsencrypt-prod"},
		{name: "prod status over https", env: "prod", svc: "status", host: "status.example.com", url: "https://status.example.com", tlsSecret: "status-tls", issuer: "letsencrypt-prod"},
		{
			name: "baseUrl wins over the domain in dev", env: "dev", svc: "api",
			overrides: map[string]any{"baseUrl": "http://shop.local:8080"},
			host:      "shop.local", url: "http://shop.local:8080",
		},
		{
			name: "baseUrl wins over the domain in prod", env: "prod", svc: "status",
			overrides: map[string]any{"baseUrl": "https://status.example.org"},
			host:      "status.example.org", url: "https://status.example.org", tlsSecret: "status-tls", issuer: "letsencrypt-prod",
		},
		{
			name: "the domain follows the fullname's release, not fullnameOverride", env: "test", svc: "status",
			overrides: map[string]any{"fullnameOverride": "board"},
			host:      "status.test.example.com", url: "http://status.test.example.com",
		},
		{
			name: "no domain and no baseUrl: any host", env: "dev", svc: "api",
			overrides: map[string]any{"domain": ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := render(t, tc.env, tc.svc, withRoute(tc.overrides))
			name := tc.svc
			if o, ok := tc.overrides["fullnameOverride"].(string); ok {
				name = o
			}

			in := decodeAs[*networkingv1.Ingress](t, m, "Ingress", name)
			if len(in.Spec.Rules) != 1 || in.Spec.Rules[0].Host != tc.host {
				t.Errorf("Ingress rules = %+v, want one for host %q", in.Spec.Rules, tc.host)
			}
			var tlsSecret string
			var tlsHosts []string
			for _, tls := range in.Spec.TLS {
				tlsSecret = tls.SecretName
				tlsHosts = append(tlsHosts, tls.Hosts...)
			}
			if tlsSecret != tc.tlsSecret {
				t.Errorf("Ingress TLS secret = %q, want %q", tlsSecret, tc.tlsSecret)
			}
			if tc.tlsSecret != "" && !slices.Equal(tlsHosts, []string{tc.host}) {
				t.Errorf("Ingress TLS hosts = %v, want [%s]", tlsHosts, tc.host)
			}
			if got := in.Annotations["cert-manager.io/cluster-issuer"]; got != tc.issuer {
				t.Errorf("cluster-issuer annotation = %q, want %q", got, tc.issuer)
			}

			route := decodeAs[*gatewayv1.HTTPRoute](t, m, "HTTPRoute", name)
			var hostnames []string
			for _, h := range route.Spec.Hostnames {
				hostnames = append(hostnames, string(h))
			}
			if want := []string{tc.host}; tc.host != "" && !slices.Equal(hostnames, want) || tc.host == "" && len(hostnames) != 0 {
				t.Errorf("HTTPRoute hostnames = %v, want %q", hostnames, tc.host)
			}

			if tc.url != "" && !strings.Contains(m.Notes, "Ingress:      "+tc.url+" ") {
				t.Errorf("NOTES do not show the public URL %s:\n%s", tc.url, m.Notes)
			}
		})
	}
}

func TestExplicitHTTPRouteHostnamesWinOverTheDomain(t *testing.T) {
	m := render(t, "prod", "api", map[string]any{"httpRoute": map[string]any{
		"enabled":    true,
		"parentRefs": []any{map[string]any{"name": "public"}},
		"hostnames":  []any{"api.example.net", "www.example.net"},
	}})
	route := decodeAs[*gatewayv1.HTTPRoute](t, m, "HTTPRoute", "api")
	if got := fmt.Sprint(route.Spec.Hostnames); got != "[api.example.net www.example.net]" {
		t.Errorf("HTTPRoute hostnames = %s, want the ones given", got)
	}
}

func TestANodePortMakesANodePortServiceAndZeroAClusterIP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		svc      string
		nodePort any // nil: the default
		typ      corev1.ServiceType
		want     int32
	}{
		{"the default", "api", nil, corev1.ServiceTypeClusterIP, 0},
		{"zero", "status", 0, corev1.ServiceTypeClusterIP, 0},
		{"the bottom of the range", "api", 30000, corev1.ServiceTypeNodePort, 30000},
		{"a port of the embedded cluster", "status", 30081, corev1.ServiceTypeNodePort, 30081},
		{"the top of the range", "api", 32767, corev1.ServiceTypeNodePort, 32767},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var overrides map[string]any
			if tc.nodePort != nil {
				overrides = map[string]any{"service": map[string]any{"nodePort": tc.nodePort}}
			}
			m := render(t, "dev", tc.svc, overrides)
			s := decodeAs[*corev1.Service](t, m, "Service", tc.svc)
			if s.Spec.Type != tc.typ || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].NodePort != tc.want {
				t.Errorf("Service type %s, ports %+v; want %s with node port %d", s.Spec.Type, s.Spec.Ports, tc.typ, tc.want)
			}
			if s.Spec.Ports[0].Name != server.PortName || s.Spec.Ports[0].Port != 8080 {
				t.Errorf("Service port = %+v, want %s on 8080 whatever the node port", s.Spec.Ports[0], server.PortName)
			}
			if mentioned := strings.Contains(m.Notes, "NodePort:"); mentioned != (tc.want != 0) {
				t.Errorf("NOTES mention a NodePort = %v, want %v:\n%s", mentioned, tc.want != 0, m.Notes)
			}
		})
	}
	for _, bad := range []int{-1, 1, 8080, 29999, 32768} {
		t.Run(fmt.Sprintf("%d is refused", bad), func(t *testing.T) {
			_, err := renderE(t, "dev", "api", map[string]any{"service": map[string]any{"nodePort": bad}})
			if err == nil || !strings.Contains(err.Error(), "/service/nodePort") {
				t.Errorf("render = %v, want a schema error naming /service/nodePort", err)
			}
		})
	}
}

// discoveryRule is the NetworkPolicy's egress rule to the discovered services: the one whose
// peer selects pods by a podSelector alone (the DNS rule also names a namespace).
func discoveryRule(np *networkingv1.NetworkPolicy) (networkingv1.NetworkPolicyEgressRule, bool) {
	for _, r := range np.Spec.Egress {
		if len(r.To) == 1 && r.To[0].PodSelector != nil && r.To[0].NamespaceSelector == nil && r.To[0].IPBlock == nil {
			return r, true
		}
	}
	return networkingv1.NetworkPolicyEgressRule{}, false
}

func envOf(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func TestDiscoveryPassesTheServiceURLsAndOpensEgressToExactlyThem(t *testing.T) {
	svcList := func(pairs ...any) map[string]any {
		var list []any
		for i := 0; i < len(pairs); i += 2 {
			list = append(list, map[string]any{"name": pairs[i], "port": pairs[i+1]})
		}
		return map[string]any{"discovery": map[string]any{"services": list}}
	}
	for _, tc := range []struct {
		name, env, svc string
		overrides      map[string]any
		urls           *string  // SERVICE_URLS; nil: not set
		names          []string // the egress rule's services; nil: no rule
		ports          []int32  // its ports, each once
	}{
		{
			name: "status, whose values.yaml enables discovery, with the services deploy lists", env: "dev", svc: "status",
			overrides: svcList("api", 8080, "billing", 9090, "search", 8080),
			urls:      ptr("api=http://api.dtap-dev.svc.cluster.local:8080,billing=http://billing.dtap-dev.svc.cluster.local:9090,search=http://search.dtap-dev.svc.cluster.local:8080"),
			names:     []string{"api", "billing", "search"},
			ports:     []int32{8080, 9090},
		},
		{
			name: "status in prod, in prod's namespace", env: "prod", svc: "status",
			overrides: svcList("api", 8080),
			urls:      ptr("api=http://api.dtap-prod.svc.cluster.local:8080"),
			names:     []string{"api"},
			ports:     []int32{8080},
		},
		{
			name: "status with no other service yet", env: "dev", svc: "status",
			urls: ptr(""),
		},
		{
			name: "api, which does not enable discovery, ignores the list", env: "dev", svc: "api",
			overrides: svcList("status", 8080),
		},
		{
			name: "api with discovery enabled by value", env: "test", svc: "api",
			overrides: map[string]any{"discovery": map[string]any{"enabled": true, "services": []any{map[string]any{"name": "status", "port": 8081}}}},
			urls:      ptr("status=http://status.dtap-test.svc.cluster.local:8081"),
			names:     []string{"status"},
			ports:     []int32{8081},
		},
		{
			name: "status with discovery turned off", env: "dev", svc: "status",
			overrides: map[string]any{"discovery": map[string]any{"enabled": false, "services": []any{map[string]any{"name": "api", "port": 8080}}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := render(t, tc.env, tc.svc, tc.overrides)
			d := decodeAs[*appsv1.Deployment](t, m, "Deployment", tc.svc)
			got, set := envOf(d.Spec.Template.Spec.Containers[0], envServiceURLs)
			switch {
			case tc.urls == nil && set:
				t.Errorf("%s = %q, want it unset", envServiceURLs, got)
			case tc.urls != nil && (!set || got != *tc.urls):
				t.Errorf("%s = %q (set %v), want %q", envServiceURLs, got, set, *tc.urls)
			}
			if tc.urls != nil {
				// The status page reads the list in this very format.
				targets, err := board.ParseTargets(got)
				if err != nil {
					t.Errorf("the status page cannot read %s: %v", envServiceURLs, err)
				}
				if len(targets) != len(tc.names) {
					t.Errorf("the status page reads %d services from %q, want %d", len(targets), got, len(tc.names))
				}
			}

			np := decodeAs[*networkingv1.NetworkPolicy](t, m, "NetworkPolicy", tc.svc)
			rule, ok := discoveryRule(np)
			if ok != (tc.names != nil) {
				t.Fatalf("egress rule to discovered services = %v, want %v: %+v", ok, tc.names != nil, np.Spec.Egress)
			}
			if !ok {
				if len(np.Spec.Egress) != 1 {
					t.Errorf("egress rules = %+v, want DNS only", np.Spec.Egress)
				}
				return
			}
			wantSel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app.kubernetes.io/instance", Operator: metav1.LabelSelectorOpIn, Values: tc.names},
				{Key: "app.kubernetes.io/component", Operator: metav1.LabelSelectorOpIn, Values: []string{"server"}},
			}}
			if got := metav1.FormatLabelSelector(rule.To[0].PodSelector); got != metav1.FormatLabelSelector(wantSel) {
				t.Errorf("egress peer = %s, want %s", got, metav1.FormatLabelSelector(wantSel))
			}
			var ports []int32
			for _, p := range rule.Ports {
				if p.Protocol == nil || *p.Protocol != corev1.ProtocolTCP || p.Port == nil || p.EndPort != nil {
					t.Errorf("egress port %+v, want one TCP port", p)
					continue
				}
				ports = append(ports, p.Port.IntVal)
			}
			if !slices.Equal(ports, tc.ports) {
				t.Errorf("egress ports = %v, want %v", ports, tc.ports)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestTheStatusPageMayReachTheAPIServerButNotItsTestPod(t *testing.T) {
	for _, env := range envs(t) {
		t.Run(env, func(t *testing.T) {
			api := render(t, env, "api", nil)
			apiPods := decodeAs[*appsv1.Deployment](t, api, "Deployment", "api").Spec.Template
			apiTest := decodeAs[*corev1.Pod](t, api, "Pod", "api-test")
			apiPort := apiPods.Spec.Containers[0].Ports[0].ContainerPort

			// As deploy fills it: every other service of the environment, on its port.
			status := render(t, env, "status", map[string]any{"discovery": map[string]any{"services": []any{
				map[string]any{"name": "api", "port": int(apiPort)},
			}}})
			np := decodeAs[*networkingv1.NetworkPolicy](t, status, "NetworkPolicy", "status")
			rule, ok := discoveryRule(np)
			if !ok {
				t.Fatalf("the status page has no egress rule to the api: %+v", np.Spec.Egress)
			}
			sel, err := metav1.LabelSelectorAsSelector(rule.To[0].PodSelector)
			if err != nil {
				t.Fatal(err)
			}
			if !sel.Matches(labels.Set(apiPods.Labels)) {
				t.Errorf("the egress rule %s does not select the api's pods %v", sel, apiPods.Labels)
			}
			if sel.Matches(labels.Set(apiTest.Labels)) {
				t.Errorf("the egress rule %s selects the api's test pod", sel)
			}
			if len(rule.Ports) != 1 || rule.Ports[0].Port.IntVal != apiPort {
				t.Errorf("egress ports %+v, want the api's container port %d", rule.Ports, apiPort)
			}
			// And the api admits it: the same-namespace rule of the api's NetworkPolicy.
			apiNP := decodeAs[*networkingv1.NetworkPolicy](t, api, "NetworkPolicy", "api")
			if !slices.ContainsFunc(apiNP.Spec.Ingress, func(r networkingv1.NetworkPolicyIngressRule) bool {
				return len(r.From) == 1 && r.From[0].PodSelector != nil && r.From[0].NamespaceSelector == nil &&
					len(r.From[0].PodSelector.MatchLabels) == 0 && len(r.From[0].PodSelector.MatchExpressions) == 0
			}) {
				t.Errorf("the api's NetworkPolicy does not admit its own namespace's pods: %+v", apiNP.Spec.Ingress)
			}
		})
	}
}

// describeIngress describes each ingress rule of np as "peers -> ports", for example
// "ns{kubernetes.io/metadata.name=monitoring} -> http/TCP".
func describeIngress(np *networkingv1.NetworkPolicy) []string {
	var out []string
	for _, r := range np.Spec.Ingress {
		var peers, ports []string
		for _, p := range r.From {
			var parts []string
			if p.IPBlock != nil {
				parts = append(parts, "ip{"+p.IPBlock.CIDR+"}")
			}
			if p.NamespaceSelector != nil {
				parts = append(parts, "ns{"+metav1.FormatLabelSelector(p.NamespaceSelector)+"}")
			}
			if p.PodSelector != nil {
				parts = append(parts, "pods{"+metav1.FormatLabelSelector(p.PodSelector)+"}")
			}
			peers = append(peers, strings.Join(parts, " "))
		}
		for _, p := range r.Ports {
			ports = append(ports, fmt.Sprintf("%s/%s", p.Port, *p.Protocol))
		}
		out = append(out, strings.Join(peers, ", ")+" -> "+strings.Join(ports, ", "))
	}
	return out
}

func TestTheFrontDoorDecidesWhoMayReachThePodsFromOutside(t *testing.T) {
	const (
		controller = "ns{kubernetes.io/metadata.name=ingress-nginx} -> http/TCP"
		namespace  = "pods{<none>} -> http/TCP" // every pod of the release's namespace
		monitoring = "ns{kubernetes.io/metadata.name=monitoring} -> http/TCP"
	)
	for _, tc := range []struct {
		name, env string
		np        map[string]any // networkPolicy values
		want      []string       // the ingress rules
		fails     string         // a rendering error naming this
	}{
		{name: "controller, the default", env: "dev", want: []string{controller, namespace}},
		{name: "controller in prod, with monitoring", env: "prod", want: []string{controller, namespace, monitoring}},
		{
			name: "controller with a pod selector", env: "dev",
			np:   map[string]any{"frontDoor": "controller", "ingressControllerPodSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "ingress-nginx"}}},
			want: []string{"ns{kubernetes.io/metadata.name=ingress-nginx} pods{app.kubernetes.io/name=ingress-nginx} -> http/TCP", namespace},
		},
		{
			name: "nodePort admits the node CIDRs", env: "dev",
			np:   map[string]any{"frontDoor": "cidrs", "sourceCIDRs": []any{"172.18.0.2/32", "10.244.0.1/32"}},
			want: []string{"ip{172.18.0.2/32}, ip{10.244.0.1/32} -> http/TCP", namespace},
		},
		{
			name: "nodePort in prod keeps monitoring", env: "prod",
			np:   map[string]any{"frontDoor": "cidrs", "sourceCIDRs": []any{"fd00::/64"}},
			want: []string{"ip{fd00::/64} -> http/TCP", namespace, monitoring},
		},
		{name: "nodePort with no CIDRs fails", env: "dev", np: map[string]any{"frontDoor": "cidrs"}, fails: "networkPolicy.sourceCIDRs is empty"},
		{name: "nodePort with an empty CIDR list fails", env: "prod", np: map[string]any{"frontDoor": "cidrs", "sourceCIDRs": []any{}}, fails: "networkPolicy.sourceCIDRs is empty"},
		{name: "none admits no public traffic", env: "dev", np: map[string]any{"frontDoor": "none"}, want: []string{namespace}},
		{name: "none in prod keeps monitoring", env: "prod", np: map[string]any{"frontDoor": "none"}, want: []string{namespace, monitoring}},
		{
			name: "none ignores node CIDRs", env: "dev",
			np:   map[string]any{"frontDoor": "none", "sourceCIDRs": []any{"172.18.0.2/32"}},
			want: []string{namespace},
		},
	} {
		for _, svc := range serviceNames(t) {
			t.Run(tc.name+"/"+svc, func(t *testing.T) {
				var overrides map[string]any
				if tc.np != nil {
					overrides = map[string]any{"networkPolicy": tc.np}
				}
				m, err := renderE(t, tc.env, svc, overrides)
				if tc.fails != "" {
					if err == nil || !strings.Contains(err.Error(), tc.fails) {
						t.Errorf("render = %v, want an error naming %q", err, tc.fails)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				np := decodeAs[*networkingv1.NetworkPolicy](t, m, "NetworkPolicy", svc)
				if got := describeIngress(np); !slices.Equal(got, tc.want) {
					t.Errorf("ingress rules:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
				}
			})
		}
	}
}

// selectorKeys are the fields that hold label selectors (or, for a Service, the selector map).
var selectorKeys = []string{"selector", "podSelector", "labelSelector", "namespaceSelector"}

// selectorsOf collects, by path, every selector in a decoded object.
func selectorsOf(path string, v any, out map[string]any) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if slices.Contains(selectorKeys, k) {
				out[path+"."+k] = child
			}
			selectorsOf(path+"."+k, child, out)
		}
	case []any:
		for i, child := range v {
			selectorsOf(fmt.Sprintf("%s[%d]", path, i), child, out)
		}
	}
}

func TestEveryObjectCarriesTheServiceAndEnvironmentLabelsAndNoSelectorUsesThem(t *testing.T) {
	type rendering struct{ env, svc string }
	cases := map[string]struct {
		rendering
		overrides map[string]any
	}{
		"dev api with every option":            {rendering{"dev", "api"}, everything()},
		"prod status with discovered services": {rendering{"prod", "status"}, discoveredServices()},
		"staging api with an existing Secret":  {rendering{"staging", "api"}, map[string]any{"secret": map[string]any{"existingSecret": "api-secrets-2"}}},
	}
	for _, env := range envs(t) {
		for _, svc := range serviceNames(t) {
			cases[env+" "+svc] = struct {
				rendering
				overrides map[string]any
			}{rendering{env, svc}, nil}
		}
	}
	// The selector labels: a Deployment's selector is immutable, so it never gains a label.
	selectorLabels := func(svc string) map[string]any {
		return map[string]any{"app.kubernetes.io/name": svc, "app.kubernetes.io/instance": svc, "app.kubernetes.io/component": "server"}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := render(t, tc.env, tc.svc, tc.overrides)
			for _, o := range m.Objects {
				meta := objectMeta(t, o)
				if meta.Labels[labelService] != tc.svc || meta.Labels[labelEnvironment] != tc.env {
					t.Errorf("%s %s: %s=%q, %s=%q; want %s and %s", o.Kind, o.Name,
						labelService, meta.Labels[labelService], labelEnvironment, meta.Labels[labelEnvironment], tc.svc, tc.env)
				}
				var doc map[string]any
				if err := yaml.Unmarshal([]byte(o.YAML), &doc); err != nil {
					t.Fatal(err)
				}
				selectors := map[string]any{}
				selectorsOf(o.Kind, doc, selectors)
				for path, sel := range selectors {
					b, err := yaml.Marshal(sel)
					if err != nil {
						t.Fatal(err)
					}
					if strings.Contains(string(b), "dtap.dev/") {
						t.Errorf("%s %s: %s uses a dtap.dev label:\n%s", o.Kind, o.Name, path, b)
					}
				}
				if o.Kind == "Deployment" {
					got, _ := lookupAny(doc, "spec", "selector", "matchLabels")
					if fmt.Sprint(got) != fmt.Sprint(selectorLabels(tc.svc)) {
						t.Errorf("Deployment selector = %v, want exactly %v", got, selectorLabels(tc.svc))
					}
					pod, _ := lookupAny(doc, "spec", "template", "metadata", "labels")
					if pl, _ := pod.(map[string]any); pl[labelService] != tc.svc || pl[labelEnvironment] != tc.env {
						t.Errorf("pod labels %v, want %s=%s and %s=%s", pod, labelService, tc.svc, labelEnvironment, tc.env)
					}
				}
			}
		})
	}
}

// lookupAny is the value at keys of a decoded document.
func lookupAny(v any, keys ...string) (any, bool) {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func TestTheChartDigestFollowsTheChartsFilesButNotTheEnvironmentFiles(t *testing.T) {
	original, err := chart.Digest(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	appendTo := func(name, text string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			t.Helper()
			f, err := os.OpenFile(filepath.Join(dir, name), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.WriteString(text)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		change  func(t *testing.T, dir string)
		changes bool
	}{
		{"an unchanged copy", func(*testing.T, string) {}, false},
		{"a template", appendTo("templates/service.yaml", "\n# changed\n"), true},
		{"a test template", appendTo("templates/tests/test-connection.yaml", "\n# changed\n"), true},
		{"a new template", appendTo("templates/extra.yaml", "# new\n"), true},
		{"the helpers", appendTo("templates/_helpers.tpl", "\n{{/* changed */}}\n"), true},
		{"the chart's defaults", appendTo("values.yaml", "\n# changed\n"), true},
		{"the schema", appendTo("values.schema.json", "\n"), true},
		{"Chart.yaml", appendTo("Chart.yaml", "\n# changed\n"), true},
		{"an environment's values file", appendTo("values-prod.yaml", "\nreplicaCount: 5\n"), false},
		{"every environment's values file", func(t *testing.T, dir string) {
			for _, env := range envs(t) {
				appendTo("values-"+env+".yaml", "\nlogLevel: warn\n")(t, dir)
			}
		}, false},
		{"a new environment", appendTo("values-qa.yaml", "environment: qa\n"), false},
		{"the README", appendTo("README.md", "\nchanged\n"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyChart(t)
			tc.change(t, dir)
			got, err := chart.Digest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if changed := got != original; changed != tc.changes {
				t.Errorf("digest changed = %v (%s -> %s), want %v", changed, original, got, tc.changes)
			}
		})
	}
}

func TestTheChartDigestIsAValidChartDigestRenderedNowhere(t *testing.T) {
	digest, err := chart.Digest(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := chart.Digest(chartDir)
	if err != nil || again != digest {
		t.Errorf("Digest twice = %s then %s (%v), want the same", digest, again, err)
	}
	for _, svc := range serviceNames(t) {
		t.Run(svc, func(t *testing.T) {
			with := render(t, "prod", svc, map[string]any{"chartDigest": digest})
			without := render(t, "prod", svc, nil)
			if with.String() != without.String() || with.Notes != without.Notes {
				t.Error("chartDigest changes the rendered manifest; it must be rendered nowhere")
			}
			if strings.Contains(with.String(), digest) {
				t.Error("the manifest contains the chart digest")
			}
		})
	}
}

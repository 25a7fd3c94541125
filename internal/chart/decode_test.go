package chart_test

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/chart"
)

// strictCodec decodes YAML into the typed Kubernetes structs of client-go's scheme and of the
// Gateway API, refusing unknown and duplicate fields: a misspelled field fails.
var strictCodec = func() *kjson.Serializer {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := gatewayv1.Install(s); err != nil {
		panic(err)
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s, kjson.SerializerOptions{Yaml: true, Strict: true})
}()

// ExternalSecret and ServiceMonitor have no Go types in go.mod: their modules
// (github.com/external-secrets/external-secrets, github.com/prometheus-operator/prometheus-operator)
// would bring large dependency trees for two structs. So the chart's objects are decoded strictly
// (unknown fields refused, field names case-sensitive) into the local mirrors below. Each mirrors
// the upstream Go type, with its JSON names and types, limited to the fields the chart emits:
// a misspelled field, or one the CRD does not have, fails like it does for the typed objects.

// externalSecret mirrors external-secrets.io/v1 ExternalSecret (apis/externalsecrets/v1).
type externalSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`
		SecretStoreRef  struct {
			Name string `json:"name"`
			Kind string `json:"kind,omitempty"`
		} `json:"secretStoreRef"`
		Target struct {
			Name           string `json:"name,omitempty"`
			CreationPolicy string `json:"creationPolicy,omitempty"`
		} `json:"target"`
		Data []struct {
			SecretKey string `json:"secretKey"`
			RemoteRef struct {
				Key      string `json:"key"`
				Property string `json:"property,omitempty"`
				Version  string `json:"version,omitempty"`
			} `json:"remoteRef"`
		} `json:"data,omitempty"`
	} `json:"spec"`
}

// serviceMonitor mirrors monitoring.coreos.com/v1 ServiceMonitor (pkg/apis/monitoring/v1).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port,omitempty"`
			Path          string `json:"path,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// decode decodes one rendered object strictly into its Go type.
func decode(o chart.Object) (any, error) {
	switch o.APIVersion + "/" + o.Kind {
	case "external-secrets.io/v1/ExternalSecret":
		var es externalSecret
		return &es, decodeLocal(o, &es)
	case "monitoring.coreos.com/v1/ServiceMonitor":
		var sm serviceMonitor
		return &sm, decodeLocal(o, &sm)
	}
	obj, _, err := strictCodec.Decode([]byte(o.YAML), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s (%s): %w", o.Kind, o.Name, o.Source, err)
	}
	return obj, nil
}

func decodeLocal(o chart.Object, into any) error {
	j, err := yaml.YAMLToJSONStrict([]byte(o.YAML))
	if err == nil {
		var strict []error
		if strict, err = sigsjson.UnmarshalStrict(j, into); err == nil && len(strict) > 0 {
			err = fmt.Errorf("strict decoding: %v", strict)
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s (%s): %w", o.Kind, o.Name, o.Source, err)
	}
	return nil
}

// decodeAs decodes the object of that kind and name in m into T, failing the test otherwise.
func decodeAs[T any](t *testing.T, m *chart.Manifest, kind, name string) T {
	t.Helper()
	o, ok := m.Find(kind, name)
	if !ok {
		var zero T
		t.Fatalf("no %s %q rendered", kind, name)
		return zero
	}
	obj, err := decode(o)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := obj.(T)
	if !ok {
		t.Fatalf("%s %q decoded as %T, want %T", kind, name, obj, v)
	}
	return v
}

func TestStrictDecodingRefusesAMisspelledField(t *testing.T) {
	for _, o := range []chart.Object{
		{APIVersion: "apps/v1", Kind: "Deployment", Name: "x", YAML: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 1, minReadySecond: 5}\n"},
		{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute", Name: "x", YAML: "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: x}\nspec: {parentRef: []}\n"},
		{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Name: "x", YAML: "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: x}\nspec: {secretStoreRef: {name: s}, refreshInterval: 1h, targt: {}}\n"},
		{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Name: "x", YAML: "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: x}\nspec: {SecretStoreRef: {name: s}}\n"},
		{APIVersion: "monitoring.coreos.com/v1", Kind: "ServiceMonitor", Name: "x", YAML: "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {endpoints: [{port: http, scrapeInterval: 1m}]}\n"},
	} {
		if _, err := decode(o); err == nil {
			t.Errorf("%s with a misspelled field decoded without error:\n%s", o.Kind, o.YAML)
		}
	}
}

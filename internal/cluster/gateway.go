package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/dtap-platform/monorepo/internal/image"
)

// Another Gateway API implementation for the embedded cluster, where images can be pulled
// (LOCAL_GATEWAY=cloud-provider-kind; the default is Traefik, see frontdoor.go).
// cloud-provider-kind runs beside the cluster, on the host's Docker: it installs the Gateway API
// CRDs and its GatewayClass, and serves each Gateway (and Ingress, by translating it) with an
// Envoy container on the kind network, reached at the Gateway's address on that network.
const (
	GatewayNone              = "none"
	GatewayCloudProviderKind = "cloud-provider-kind"

	// CloudProviderKindImage is the pinned release (v0.9.0: Gateway API v1.4 standard channel).
	CloudProviderKindImage = "registry.k8s.io/cloud-provider-kind/cloud-controller-manager:v0.9.0"
	// GatewayClassName is the class cloud-provider-kind creates and serves.
	GatewayClassName = "cloud-provider-kind"
	// GatewayNamespace and GatewayName are the one Gateway of the embedded cluster, which every
	// environment's HTTPRoutes attach to.
	GatewayNamespace = "dtap-gateway"
	GatewayName      = "dtap"
)

// Gateways are the values LOCAL_GATEWAY takes.
var Gateways = []string{GatewayTraefik, GatewayCloudProviderKind, GatewayNone}

func (o Options) gatewayContainer() string { return o.Name + "-cloud-provider" }

// CloudProviderArgs are the `docker run` arguments of cloud-provider-kind for the cluster: on the
// kind network, with the host's Docker socket (it starts the Envoy containers), restarted with
// Docker.
func (o Options) CloudProviderArgs() []string {
	return []string{"run", "-d", "--name", o.gatewayContainer(), "--restart=always", "--network", "kind",
		"--label", "dtap.dev/cluster=" + o.Name,
		"-v", "/var/run/docker.sock:/var/run/docker.sock", CloudProviderKindImage}
}

// GatewayManifest is the embedded cluster's Gateway: plain HTTP on port 80, routes admitted from
// every namespace (each environment has its own).
func GatewayManifest() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1",
		"kind":       "Gateway",
		"metadata":   map[string]any{"name": GatewayName, "namespace": GatewayNamespace},
		"spec": map[string]any{
			"gatewayClassName": GatewayClassName,
			"listeners": []any{map[string]any{
				"name": "http", "protocol": "HTTP", "port": int64(80),
				"allowedRoutes": map[string]any{"namespaces": map[string]any{"from": "All"}},
			}},
		},
	}}
}

var (
	gatewayGVR      = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}
	gatewayClassGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}
)

// ensureGateway starts cloud-provider-kind (pulling its image) and creates the Gateway, once
// its GatewayClass is there. Nothing is done with LOCAL_GATEWAY=none.
func ensureGateway(ctx context.Context, o Options) error {
	if o.Gateway == "" || o.Gateway == GatewayNone {
		return nil
	}
	name := o.gatewayContainer()
	state, err := image.DockerOutput(ctx, "inspect", "--format", "{{.State.Running}}", name)
	switch {
	case err == nil && state != "true":
		if err := image.Docker(ctx, nil, "start", name); err != nil {
			return err
		}
	case err != nil:
		fmt.Fprintf(o.Out, "starting %s (%s)\n", name, CloudProviderKindImage)
		if err := image.Docker(ctx, o.Out, o.CloudProviderArgs()...); err != nil {
			return fmt.Errorf("LOCAL_GATEWAY=%s: start %s: %w; it needs access to registry.k8s.io, or use the default LOCAL_GATEWAY=traefik", o.Gateway, CloudProviderKindImage, err)
		}
	}
	cfg, err := o.RESTConfig()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := createNamespace(ctx, o, GatewayNamespace); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := dyn.Resource(gatewayClassGVR).Get(ctx, GatewayClassName, metav1.GetOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("LOCAL_GATEWAY=%s: the GatewayClass %s did not appear within 2m (see docker logs %s)", o.Gateway, GatewayClassName, name)
		}
		time.Sleep(2 * time.Second)
	}
	_, err = dyn.Resource(gatewayGVR).Namespace(GatewayNamespace).Create(ctx, GatewayManifest(), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create the Gateway %s/%s: %w", GatewayNamespace, GatewayName, err)
	}
	return nil
}

// GatewayAddress is the address the embedded cluster's Gateway was given, "" until it has one.
func GatewayAddress(ctx context.Context, o Options) (string, error) {
	cfg, err := o.RESTConfig()
	if err != nil {
		return "", err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	gw, err := dyn.Resource(gatewayGVR).Namespace(GatewayNamespace).Get(ctx, GatewayName, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	addrs, _, _ := unstructured.NestedSlice(gw.Object, "status", "addresses")
	for _, a := range addrs {
		if m, ok := a.(map[string]any); ok {
			if v, _ := m["value"].(string); v != "" {
				return v, nil
			}
		}
	}
	return "", nil
}

// KindNetworkCIDRs are the subnets of Docker's kind network, where cloud-provider-kind's Envoy
// proxies run: the NetworkPolicy admits traffic from there when the Gateway is the front door.
func KindNetworkCIDRs(ctx context.Context) ([]string, error) {
	out, err := image.DockerOutput(ctx, "network", "inspect", "kind", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}")
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

func createNamespace(ctx context.Context, o Options, name string) error {
	cs, err := o.clientset()
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{"dtap.dev/managed-by": "kind-up"}}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

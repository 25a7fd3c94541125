package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/dtap-platform/monorepo/internal/drift"
	"github.com/dtap-platform/monorepo/internal/image"
)

// The embedded cluster's front door (LOCAL_GATEWAY=traefik, the default): Traefik, a real
// ingress and Gateway API controller, runs in the cluster and serves every environment's
// Ingress and HTTPRoute objects by host name (<service>.<env>.localhost) on one port of
// 127.0.0.1, and HTTPS on a second with a certificate from a CA of the cluster's own. Its two
// node ports are the cluster's only port mappings, fixed when kind creates the node.
const (
	GatewayTraefik = "traefik"
	// DefaultTraefikImage is pulled by the node when no local image is named (TRAEFIK_IMAGE).
	DefaultTraefikImage = "docker.io/library/traefik:v3.6.12"
	// LabTraefikImage is .ci/lab's build of the same version, used when TRAEFIK_IMAGE is not set
	// and the default is not in the local Docker store.
	LabTraefikImage = "local/traefik:v3.6.12"
	// GatewayAPIVersion is the Gateway API release Traefik v3.6 implements: kind:up installs its
	// standard CRDs from the Go module of that version.
	GatewayAPIVersion = "v1.4.0"
	IngressClassName  = "traefik"
	DefaultHTTPPort   = 8080
	DefaultHTTPSPort  = 8443
	// Traefik's entry points: the Gateway's listeners are matched to them by port.
	EntryHTTP  = "web"
	EntryHTTPS = "websecure"

	nodePortHTTP  = 30080
	nodePortHTTPS = 30443
	tlsSecret     = "front-door-tls"
	// CAConfigMap, in GatewayNamespace, holds the front door's CA certificate (ca.crt).
	CAConfigMap  = "front-door-ca"
	caSecret     = "local-ca"
	traefikClass = "traefik"
	fieldManager = "dtap-kind-up"
)

// DefaultProject is the project of namespaces <project>-<env> when none is named (PROJECT).
const DefaultProject = "dtap"

// LocalDomain is an environment's domain on the embedded cluster: <env>.localhost for the
// default project, <env>.<project>.localhost for any other, so that projects sharing the
// cluster never claim one host.
func LocalDomain(project, env string) string {
	if project == DefaultProject || project == "" {
		return env + ".localhost"
	}
	return env + "." + project + ".localhost"
}

// LocalDomains is LocalDomain of each environment.
func LocalDomains(envs []string, project string) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = LocalDomain(project, e)
	}
	return out
}

// FrontDoorAnnotation, on the node, records the front door's ports on 127.0.0.1
// ("http=8080,https=8443"), so that a deploy reads them with the node list.
const FrontDoorAnnotation = "dtap.dev/front-door"

//go:embed traefik.yaml
var traefikManifest string

// FrontDoor is where the embedded cluster's front door listens on 127.0.0.1; zero ports mean
// there is none (another LOCAL_GATEWAY, or a cluster created before it had one).
type FrontDoor struct{ HTTP, HTTPS int }

func (f FrontDoor) String() string { return fmt.Sprintf("http=%d,https=%d", f.HTTP, f.HTTPS) }

// ParseFrontDoor reads FrontDoorAnnotation's value.
func ParseFrontDoor(v string) FrontDoor {
	var f FrontDoor
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
		n, _ := strconv.Atoi(val)
		switch k {
		case "http":
			f.HTTP = n
		case "https":
			f.HTTPS = n
		}
	}
	if f.HTTP <= 0 || f.HTTPS <= 0 {
		return FrontDoor{}
	}
	return f
}

// URL is the address of host through the front door: https when tls.
func (f FrontDoor) URL(host string, tls bool) string {
	if tls {
		return fmt.Sprintf("https://%s:%d", host, f.HTTPS)
	}
	return fmt.Sprintf("http://%s:%d", host, f.HTTP)
}

// choosePorts settles the front door's ports before kind creates the node: a port asked for
// (LOCAL_HTTP_PORT, LOCAL_HTTPS_PORT) must be free; a default that is taken gives way to a free
// port, and the user is told.
func choosePorts(o *Options) error {
	for _, p := range []struct {
		port  *int
		asked bool
		env   string
	}{{&o.HTTPPort, o.HTTPPortAsked, "LOCAL_HTTP_PORT"}, {&o.HTTPSPort, o.HTTPSPortAsked, "LOCAL_HTTPS_PORT"}} {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*p.port)))
		if err == nil {
			ln.Close()
			continue
		}
		if p.asked {
			return fmt.Errorf("%s=%d: 127.0.0.1:%d is taken by another process (%v): stop it or choose another port", p.env, *p.port, *p.port, err)
		}
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		free := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		fmt.Fprintf(o.Out, "127.0.0.1:%d is taken: the front door uses 127.0.0.1:%d instead (set %s to choose)\n", *p.port, free, p.env)
		*p.port = free
	}
	return nil
}

// mappedFrontDoor reads, from Docker, the host ports the node maps to Traefik's node ports.
func mappedFrontDoor(ctx context.Context, o Options) FrontDoor {
	out, err := image.DockerOutput(ctx, "inspect", "--format", "{{json .HostConfig.PortBindings}}", o.controlPlane())
	if err != nil {
		return FrontDoor{}
	}
	var b map[string][]struct{ HostPort string }
	if json.Unmarshal([]byte(out), &b) != nil {
		return FrontDoor{}
	}
	port := func(node int) int {
		for _, m := range b[fmt.Sprintf("%d/tcp", node)] {
			if n, err := strconv.Atoi(m.HostPort); err == nil {
				return n
			}
		}
		return 0
	}
	return ParseFrontDoor(fmt.Sprintf("http=%d,https=%d", port(nodePortHTTP), port(nodePortHTTPS)))
}

// CAFile is where kind:up writes the front door's CA certificate, for curl --cacert and
// browsers: beside the kubeconfig.
func (o Options) CAFile() string {
	return filepath.Join(filepath.Dir(o.Kubeconfig), o.Name+"-ca.crt")
}

// WriteCAFile writes the front door's CA to path at once (a temporary file renamed), so that
// a reader never sees half of it.
func WriteCAFile(path string, ca []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(ca); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ensureFrontDoor installs or updates Traefik, the Gateway API CRDs, the IngressClass, the
// GatewayClass, the Gateway and the certificates, waits until Traefik serves and the Gateway is
// programmed, and records the ports on the node. Every step is an apply: a second run changes
// nothing that is right.
func ensureFrontDoor(ctx context.Context, o Options) (FrontDoor, error) {
	door := mappedFrontDoor(ctx, o)
	if door == (FrontDoor{}) {
		fmt.Fprintf(o.Out, "  front door: none, this cluster was created without its ports: `go run mage.go kind:down` then `kind:up` recreates it\n")
		return door, nil
	}
	start := time.Now()
	cfg, err := o.RESTConfig()
	if err != nil {
		return door, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return door, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return door, err
	}
	if err := createNamespace(ctx, o, GatewayNamespace); err != nil {
		return door, err
	}
	ca, certChanged, err := ensureCertificates(ctx, cs, o.Domains)
	if err != nil {
		return door, err
	}
	if err := WriteCAFile(o.CAFile(), ca); err != nil {
		return door, err
	}
	// Public: anyone may read the CA (kubectl -n dtap-gateway get configmap front-door-ca).
	caMap := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": CAConfigMap, "namespace": GatewayNamespace}, "data": map[string]any{"ca.crt": string(ca)}}}
	ref, err := traefikImage(ctx, o)
	if err != nil {
		return door, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
	if err := applyGatewayCRDs(ctx, dyn, mapper); err != nil {
		return door, err
	}
	objs, err := traefikObjects(ref)
	if err != nil {
		return door, err
	}
	for _, obj := range append(objs, caMap) {
		if err := apply(ctx, dyn, mapper, obj); err != nil {
			return door, err
		}
	}
	if err := waitFrontDoor(ctx, cs, dyn); err != nil {
		return door, err
	}
	if certChanged { // a running Traefik reloads the Secret a moment later
		if err := waitCertificateServed(ctx, door, ca, o.Domains); err != nil {
			return door, err
		}
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, FrontDoorAnnotation, door.String())
	if _, err := cs.CoreV1().Nodes().Patch(ctx, o.controlPlane(), "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		return door, fmt.Errorf("annotate the node with its front door: %w", err)
	}
	fmt.Fprintf(o.Out, "  front door: Traefik (%s) ready in %s\n", ref, time.Since(start).Round(100*time.Millisecond))
	return door, nil
}

// traefikImage is the image reference the node runs. An image in the local Docker store goes
// through the local registry, tagged by its ID so that a rebuilt image rolls the Deployment:
// TRAEFIK_IMAGE, else the default image, else the lab's build of the same version
// (LabTraefikImage). Anything else the node pulls itself.
func traefikImage(ctx context.Context, o Options) (string, error) {
	candidates := []string{o.TraefikImage}
	if !o.TraefikImageAsked {
		candidates = append(candidates, LabTraefikImage)
	}
	for _, local := range candidates {
		id, err := image.DockerOutput(ctx, "image", "inspect", "--format", "{{.Id}}", local)
		if err != nil {
			continue
		}
		ref := fmt.Sprintf("%s/%s/traefik:%s", o.Registry(), GatewayNamespace, strings.TrimPrefix(id, "sha256:")[:16])
		if err := image.Docker(ctx, nil, "tag", local, ref); err != nil {
			return "", err
		}
		if err := image.Docker(ctx, nil, "push", "--quiet", ref); err != nil {
			return "", fmt.Errorf("push %s (%s) to the local registry: %w", ref, local, err)
		}
		return ref, nil
	}
	return o.TraefikImage, nil
}

// traefikObjects renders traefik.yaml for the image.
func traefikObjects(imageRef string) ([]*unstructured.Unstructured, error) {
	t, err := template.New("traefik.yaml").Option("missingkey=error").Parse(traefikManifest)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = t.Execute(&buf, map[string]any{
		"Namespace": GatewayNamespace, "Image": imageRef, "NodePortHTTP": nodePortHTTP, "NodePortHTTPS": nodePortHTTPS,
		"TLSSecret": tlsSecret, "GatewayClass": traefikClass, "GatewayName": GatewayName, "IngressClass": IngressClassName,
		"EntryHTTP": EntryHTTP, "EntryHTTPS": EntryHTTPS,
	})
	if err != nil {
		return nil, err
	}
	return drift.Parse(buf.String())
}

// apply server-side applies obj, owning every field it sets.
func apply(ctx context.Context, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		mapper.Reset() // a CRD applied a moment ago
		if m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return fmt.Errorf("apply %s %s: %w", gvk.Kind, obj.GetName(), err)
		}
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if ns := obj.GetNamespace(); ns != "" {
		ri = dyn.Resource(m.Resource).Namespace(ns)
	}
	force := true
	if _, err := ri.Patch(ctx, obj.GetName(), "application/apply-patch+yaml", data, metav1.PatchOptions{FieldManager: fieldManager, Force: &force}); err != nil {
		return fmt.Errorf("apply %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	return nil
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// applyGatewayCRDs applies the standard channel CRDs of GatewayAPIVersion, read from that
// version's Go module (go mod download: the toolchain's proxy and cache), and waits until the
// API server serves them.
func applyGatewayCRDs(ctx context.Context, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper) error {
	dir, err := moduleDir(ctx, "sigs.k8s.io/gateway-api@"+GatewayAPIVersion)
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "config", "crd", "standard", "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no Gateway API CRDs in %s/config/crd/standard", dir)
	}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		objs, err := drift.Parse(string(data))
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, obj := range objs {
			if err := apply(ctx, dyn, mapper, obj); err != nil {
				return err
			}
			names = append(names, obj.GetName())
		}
	}
	return poll(ctx, time.Minute, "the Gateway API CRDs to be established", func() (bool, error) {
		for _, n := range names {
			crd, err := dyn.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{})
			if err != nil || !hasCondition(crd, "Established") {
				return false, nil
			}
		}
		return true, nil
	})
}

// moduleDir downloads (or finds in the module cache) a module version and returns its directory.
func moduleDir(ctx context.Context, modVersion string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", modVersion)
	cmd.Dir = os.TempDir() // outside any module: the version asked for, not this repo's
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	_ = json.Unmarshal(out, &m)
	if err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %v %s: the Gateway API CRDs come from that module; check the Go module proxy (GOPROXY)", modVersion, err, m.Error)
	}
	return m.Dir, nil
}

// waitFrontDoor waits until Traefik answers its readiness probe and the Gateway is programmed.
func waitFrontDoor(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface) error {
	err := poll(ctx, 3*time.Minute, "Traefik to be ready", func() (bool, error) {
		d, err := cs.AppsV1().Deployments(GatewayNamespace).Get(ctx, "traefik", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if deploymentDone(d) {
			return true, nil
		}
		return false, pullFailure(ctx, cs)
	})
	if err != nil {
		return fmt.Errorf("%w (kubectl -n %s describe pod -l app.kubernetes.io/name=traefik)", err, GatewayNamespace)
	}
	return poll(ctx, time.Minute, "the Gateway "+GatewayNamespace+"/"+GatewayName+" to be programmed", func() (bool, error) {
		gw, err := dyn.Resource(gatewayGVR).Namespace(GatewayNamespace).Get(ctx, GatewayName, metav1.GetOptions{})
		return err == nil && hasCondition(gw, "Programmed"), nil
	})
}

// pullFailure is an error when Traefik's pod cannot pull its image: no wait makes it come.
func pullFailure(ctx context.Context, cs kubernetes.Interface) error {
	pods, err := cs.CoreV1().Pods(GatewayNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=traefik"})
	if err != nil {
		return nil
	}
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			if w := c.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
				return fmt.Errorf("the node cannot pull %s (%s: %s); without registry access build it with .ci/lab/images (%s), or set TRAEFIK_IMAGE to an image the Docker engine has",
					c.Image, w.Reason, w.Message, LabTraefikImage)
			}
		}
	}
	return nil
}

func deploymentDone(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
		d.Status.AvailableReplicas == want && d.Status.Replicas == want
}

func hasCondition(obj *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}

func poll(ctx context.Context, timeout time.Duration, what string, done func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// LoopbackClient is an HTTP client that reaches localhost and *.localhost on 127.0.0.1, as
// browsers and curl do (Go's resolver would ask DNS for them), trusting the front door's CA
// (caPEM, when given) besides the system's.
func LoopbackClient(caPEM []byte, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	tr.Proxy = nil
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("the front door's CA file holds no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

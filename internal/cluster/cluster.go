// Package cluster is the embedded local Kubernetes: a kind cluster, created or reused through
// kind's Go API, with a local registry beside it (kind's documented local-registry pattern),
// so that the local deploy path pushes images to a registry exactly as production does.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kind "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindcmd "sigs.k8s.io/kind/pkg/cmd"

	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/image"
)

// Defaults. The node image is the one kind v0.30.0 pins, by digest.
const (
	DefaultName          = "dtap"
	DefaultNodeImage     = "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"
	DefaultRegistryImage = "registry:2"
	DefaultRegistryPort  = 5001
)

// Options say which cluster and registry to use. OptionsFromEnv fills them.
type Options struct {
	Name            string // kind cluster name (KIND_CLUSTER_NAME)
	NodeImage       string // KIND_NODE_IMAGE
	Kubeconfig      string // project-local kubeconfig file the cluster's credentials go to
	RegistryImage   string // LOCAL_REGISTRY_IMAGE
	RegistryPort    int    // LOCAL_REGISTRY_PORT: the registry listens on 127.0.0.1:<port>
	MergeKubeconfig bool   // KIND_EXPORT_KUBECONFIG=true also writes the context to ~/.kube/config
	// Gateway is LOCAL_GATEWAY: "traefik" (the default: Traefik in the cluster, on HTTPPort and
	// HTTPSPort of 127.0.0.1), "cloud-provider-kind" (Envoy containers beside the cluster, pulled
	// from registry.k8s.io) or "none" (no front door: kubectl port-forward).
	Gateway string
	// The front door's ports on 127.0.0.1 (LOCAL_HTTP_PORT, LOCAL_HTTPS_PORT), fixed when the
	// cluster is created; Asked: set by the user, so a taken port is an error, not replaced.
	HTTPPort, HTTPSPort           int
	HTTPPortAsked, HTTPSPortAsked bool
	TraefikImage                  string // TRAEFIK_IMAGE
	TraefikImageAsked             bool   // TRAEFIK_IMAGE is set
	// Domains are what the front door's certificate names with a wildcard: LocalDomain of each
	// environment, for the default project and for the repository's own (PROJECT), if another.
	Domains []string
	Out     io.Writer
}

// OptionsFromEnv reads the options from the environment, with the kubeconfig under
// <repoRoot>/.cache/kind/, so the user's ~/.kube/config is untouched unless asked.
func OptionsFromEnv(repoRoot string) (Options, error) {
	o := Options{
		Name:              envOr("KIND_CLUSTER_NAME", DefaultName),
		NodeImage:         envOr("KIND_NODE_IMAGE", DefaultNodeImage),
		RegistryImage:     envOr("LOCAL_REGISTRY_IMAGE", DefaultRegistryImage),
		RegistryPort:      DefaultRegistryPort,
		MergeKubeconfig:   os.Getenv("KIND_EXPORT_KUBECONFIG") == "true",
		Gateway:           envOr("LOCAL_GATEWAY", GatewayTraefik),
		HTTPPort:          DefaultHTTPPort,
		HTTPSPort:         DefaultHTTPSPort,
		TraefikImage:      envOr("TRAEFIK_IMAGE", DefaultTraefikImage),
		TraefikImageAsked: os.Getenv("TRAEFIK_IMAGE") != "",
		Out:               os.Stdout,
	}
	if !slices.Contains(Gateways, o.Gateway) {
		return o, fmt.Errorf("LOCAL_GATEWAY=%q: use one of %s", o.Gateway, strings.Join(Gateways, ", "))
	}
	if !clusterName.MatchString(o.Name) {
		return o, fmt.Errorf("KIND_CLUSTER_NAME=%q is not a valid kind cluster name: use at most 32 lowercase letters, digits and '-', starting with a letter", o.Name)
	}
	if p := os.Getenv("LOCAL_REGISTRY_PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return o, fmt.Errorf("LOCAL_REGISTRY_PORT=%q: not a port; use a free TCP port such as %d", p, DefaultRegistryPort)
		}
		o.RegistryPort = n
	}
	for _, p := range []struct {
		env   string
		port  *int
		asked *bool
	}{{"LOCAL_HTTP_PORT", &o.HTTPPort, &o.HTTPPortAsked}, {"LOCAL_HTTPS_PORT", &o.HTTPSPort, &o.HTTPSPortAsked}} {
		if v := os.Getenv(p.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return o, fmt.Errorf("%s=%q: not a port; use a free TCP port such as %d", p.env, v, *p.port)
			}
			*p.port, *p.asked = n, true
		}
	}
	if o.HTTPPort == o.HTTPSPort {
		return o, fmt.Errorf("LOCAL_HTTP_PORT and LOCAL_HTTPS_PORT are both %d: the front door needs two ports", o.HTTPPort)
	}
	envs := []string{"dev", "test", "staging", "prod"}
	if l, err := environments.List(filepath.Join(repoRoot, environments.ChartDir)); err == nil && len(l) > 0 {
		envs = l
	}
	project := os.Getenv("PROJECT")
	if tg, err := environments.LoadTargets(repoRoot); err == nil && project == "" {
		project = tg.Project
	}
	o.Domains = LocalDomains(envs, DefaultProject)
	if project != "" && project != DefaultProject {
		o.Domains = append(o.Domains, LocalDomains(envs, project)...)
	}
	o.Kubeconfig = filepath.Join(repoRoot, ".cache", "kind", o.Name+".kubeconfig")
	return o, nil
}

// clusterName keeps the node container (<name>-control-plane) and the registry
// (<name>-registry) valid names.
var clusterName = regexp.MustCompile(`^[a-z][-a-z0-9]{0,31}$`)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Registry is the host-side name of the local registry: images are pushed to and pulled from
// Registry()/<name>:<tag>, by the host's docker and by the cluster's containerd alike.
func (o Options) Registry() string { return "localhost:" + strconv.Itoa(o.RegistryPort) }

func (o Options) registryContainer() string { return o.Name + "-registry" }
func (o Options) controlPlane() string      { return o.Name + "-control-plane" }

// Timings of Up, for the user and the README.
type Timings struct {
	Created   bool // false when an existing cluster was reused
	Create    time.Duration
	Ready     time.Duration
	FrontDoor FrontDoor // where the front door listens (zero: none)
}

func provider(o Options) *kind.Provider {
	return kind.NewProvider(kind.ProviderWithDocker(), kind.ProviderWithLogger(kindcmd.NewLogger()))
}

// Up creates the cluster and its registry, or reuses them, and waits until the node is Ready
// and cluster DNS runs.
func Up(ctx context.Context, o Options) (Timings, error) {
	var t Timings
	if err := image.Ping(ctx); err != nil {
		return t, err
	}
	p := provider(o)
	exists, err := Exists(o)
	if err != nil {
		return t, err
	}
	if exists {
		if err := checkNodeImage(ctx, o); err != nil {
			return t, err
		}
		// A node that stopped (a Docker restart, a reboot) does not come back reliably: its
		// address may change under kubeadm's certificates. Recreate it instead.
		if running, _ := image.DockerOutput(ctx, "inspect", "--format", "{{.State.Running}}", o.controlPlane()); running != "true" {
			fmt.Fprintf(o.Out, "kind cluster %q exists but its node is stopped: recreating it\n", o.Name)
			if err := p.Delete(o.Name, o.Kubeconfig); err != nil {
				return t, fmt.Errorf("delete the stopped cluster %q: %w", o.Name, err)
			}
			exists = false
		}
	}

	if err := ensureRegistry(ctx, o); err != nil {
		return t, err
	}

	start := time.Now()
	if exists {
		fmt.Fprintf(o.Out, "reusing kind cluster %q\n", o.Name)
		if err := WriteKubeconfig(o); err != nil {
			return t, err
		}
	} else {
		if o.Gateway == GatewayTraefik {
			if err := choosePorts(&o); err != nil {
				return t, err
			}
		}
		fmt.Fprintf(o.Out, "creating kind cluster %q from %s\n", o.Name, o.NodeImage)
		t.Created = true
		if err := os.MkdirAll(filepath.Dir(o.Kubeconfig), 0o700); err != nil {
			return t, err
		}
		err := p.Create(o.Name,
			kind.CreateWithV1Alpha4Config(clusterConfig(o)),
			kind.CreateWithNodeImage(o.NodeImage),
			kind.CreateWithKubeconfigPath(o.Kubeconfig),
			kind.CreateWithDisplayUsage(false),
			kind.CreateWithDisplaySalutation(false),
		)
		if err != nil {
			return t, fmt.Errorf("create kind cluster %q: %w%s", o.Name, err, createHint(err))
		}
		t.Create = time.Since(start)
	}
	if o.MergeKubeconfig {
		if err := p.ExportKubeConfig(o.Name, "", false); err != nil {
			return t, err
		}
	}
	if err := connectRegistry(ctx, o, p); err != nil {
		return t, err
	}
	start = time.Now()
	if err := waitReady(ctx, o); err != nil {
		return t, err
	}
	switch o.Gateway {
	case GatewayTraefik:
		if t.FrontDoor, err = ensureFrontDoor(ctx, o); err != nil {
			return t, fmt.Errorf("the front door (LOCAL_GATEWAY=%s): %w", o.Gateway, err)
		}
	case GatewayCloudProviderKind:
		if err := ensureGateway(ctx, o); err != nil {
			return t, err
		}
	}
	t.Ready = time.Since(start)
	return t, nil
}

// MaxPods is the node's pod limit: 50 services in each of dev and test (test runs two replicas)
// and the cluster's own pods, within the node's /24 pod range.
const MaxPods = 250

// clusterConfig points containerd at /etc/containerd/certs.d, where the registry's hosts.toml
// goes, and maps the front door's node ports to 127.0.0.1.
func clusterConfig(o Options) *v1alpha4.Cluster {
	node := v1alpha4.Node{Role: v1alpha4.ControlPlaneRole}
	if o.Gateway == GatewayTraefik {
		for _, m := range [][2]int{{nodePortHTTP, o.HTTPPort}, {nodePortHTTPS, o.HTTPSPort}} {
			node.ExtraPortMappings = append(node.ExtraPortMappings, v1alpha4.PortMapping{
				ContainerPort: int32(m[0]), HostPort: int32(m[1]), ListenAddress: "127.0.0.1", Protocol: v1alpha4.PortMappingProtocolTCP})
		}
	}
	c := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Nodes:    []v1alpha4.Node{node},
		ContainerdConfigPatches: []string{
			"[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"",
		},
		KubeadmConfigPatches: []string{fmt.Sprintf("kind: KubeletConfiguration\nmaxPods: %d\n", MaxPods)},
	}
	v1alpha4.SetDefaultsCluster(c)
	return c
}

func createHint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unable to apply caps") || strings.Contains(msg, "operation not permitted"):
		return "\nhint: this host cannot run privileged containers as kind needs; see .ci/docker/ensure-dockerd for a dockerd runtime that can"
	case strings.Contains(msg, "pull access denied") || strings.Contains(msg, "failed to pull image"):
		return "\nhint: the node image cannot be pulled; build one locally (.ci/lab/images) and set KIND_NODE_IMAGE"
	}
	return ""
}

// WriteKubeconfig writes the existing cluster's current credentials to o.Kubeconfig: the file
// may be stale (the cluster was recreated, or another checkout created it).
func WriteKubeconfig(o Options) error {
	if err := os.MkdirAll(filepath.Dir(o.Kubeconfig), 0o700); err != nil {
		return err
	}
	if err := provider(o).ExportKubeConfig(o.Name, o.Kubeconfig, false); err != nil {
		return fmt.Errorf("export kubeconfig of %q: %w", o.Name, err)
	}
	return nil
}

// KubeconfigAnswers reports whether the kubeconfig this checkout holds for the cluster reaches
// it: its API server answers and proves itself with the CA in the file, so the file is that
// very cluster's, current. It asks no Docker: a run that finds it current needs no
// WriteKubeconfig (about a second of docker exec).
func KubeconfigAnswers(ctx context.Context, o Options) bool {
	if _, err := os.Stat(o.Kubeconfig); err != nil {
		return false
	}
	cfg, err := o.RESTConfig()
	if err != nil {
		return false
	}
	cfg.Timeout = 3 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false
	}
	_, err = cs.Discovery().ServerVersion()
	return err == nil
}

// Exists reports whether the named kind cluster exists.
func Exists(o Options) (bool, error) {
	names, err := provider(o).List()
	if err != nil {
		return false, fmt.Errorf("list kind clusters: %w", err)
	}
	return slices.Contains(names, o.Name), nil
}

// checkNodeImage refuses to reuse a cluster that runs another node image than asked for.
func checkNodeImage(ctx context.Context, o Options) error {
	running, err := image.DockerOutput(ctx, "inspect", "--format", "{{.Config.Image}}", o.controlPlane())
	if err != nil {
		return fmt.Errorf("inspect the node of cluster %q: %w", o.Name, err)
	}
	if running != o.NodeImage {
		return fmt.Errorf("kind cluster %q exists with node image %s, but %s is asked for (KIND_NODE_IMAGE): "+
			"run `go run mage.go kind:down` to recreate it, or set KIND_NODE_IMAGE=%s to keep it", o.Name, running, o.NodeImage, running)
	}
	return nil
}

// ensureRegistry starts the registry container, bound on 127.0.0.1 only, or reuses it.
func ensureRegistry(ctx context.Context, o Options) error {
	name := o.registryContainer()
	state, err := image.DockerOutput(ctx, "inspect", "--format", "{{.State.Running}}", name)
	switch {
	case err == nil && state == "true":
		return nil
	case err == nil:
		return image.Docker(ctx, nil, "start", name)
	}
	if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.RegistryPort))); err != nil {
		return fmt.Errorf("the local registry's port 127.0.0.1:%d is taken by another process (%v): stop it or choose another port with LOCAL_REGISTRY_PORT", o.RegistryPort, err)
	} else {
		ln.Close()
	}
	if _, err := image.DockerOutput(ctx, "image", "inspect", o.RegistryImage); err != nil {
		if err := image.Docker(ctx, o.Out, "pull", o.RegistryImage); err != nil {
			return fmt.Errorf("the registry image %s is neither present nor pullable: %w; build or load one and set LOCAL_REGISTRY_IMAGE", o.RegistryImage, err)
		}
	}
	fmt.Fprintf(o.Out, "starting local registry %s on 127.0.0.1:%d\n", name, o.RegistryPort)
	return image.Docker(ctx, nil, "run", "-d", "--restart=always", "--name", name,
		"--label", "dtap.dev/cluster="+o.Name,
		"-p", fmt.Sprintf("127.0.0.1:%d:5000", o.RegistryPort), o.RegistryImage)
}

// connectRegistry joins the registry to the kind network and tells every node's containerd,
// and the cluster (the local-registry-hosting ConfigMap, KEP-1755), where it is.
func connectRegistry(ctx context.Context, o Options, p *kind.Provider) error {
	name := o.registryContainer()
	networks, err := image.DockerOutput(ctx, "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", name)
	if err != nil {
		return err
	}
	if !slices.Contains(strings.Fields(networks), "kind") {
		if err := image.Docker(ctx, nil, "network", "connect", "kind", name); err != nil {
			return fmt.Errorf("connect the registry to the kind network: %w", err)
		}
	}
	nodes, err := p.ListNodes(o.Name)
	if err != nil {
		return err
	}
	hosts := fmt.Sprintf("[host.\"http://%s:5000\"]\n", name)
	for _, n := range nodes {
		if err := nodeutils.WriteFile(n, "/etc/containerd/certs.d/"+o.Registry()+"/hosts.toml", hosts); err != nil {
			return fmt.Errorf("configure the registry on node %s: %w", n, err)
		}
	}
	cs, err := o.clientset()
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "local-registry-hosting", Namespace: "kube-public"},
		Data: map[string]string{"localRegistryHosting.v1": fmt.Sprintf(
			"host: %q\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n", o.Registry())},
	}
	_, err = cs.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("publish the local-registry-hosting ConfigMap: %w", err)
	}
	return nil
}

// RESTConfig is the client configuration of the cluster.
func (o Options) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w (run `go run mage.go kind:up`)", o.Kubeconfig, err)
	}
	return cfg, nil
}

func (o Options) clientset() (*kubernetes.Clientset, error) {
	cfg, err := o.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// waitReady waits for every node to be Ready and for CoreDNS to be available (which takes
// longer than the node on a fresh cluster).
func waitReady(ctx context.Context, o Options) error {
	cs, err := o.clientset()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var last string
	for {
		status, done := readiness(ctx, cs)
		if status != last {
			fmt.Fprintf(o.Out, "  %s\n", status)
			last = status
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %q not ready within 5m (%s): %w", o.Name, status, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func readiness(ctx context.Context, cs kubernetes.Interface) (string, bool) {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "waiting for the API server", false
	}
	ready := 0
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	if len(nodes.Items) == 0 || ready < len(nodes.Items) {
		return fmt.Sprintf("nodes ready: %d/%d", ready, len(nodes.Items)), false
	}
	dns, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("nodes ready: %d/%d, waiting for coredns", ready, len(nodes.Items)), false
	}
	want := int32(1)
	if dns.Spec.Replicas != nil {
		want = *dns.Spec.Replicas
	}
	if dns.Status.AvailableReplicas < want {
		return fmt.Sprintf("nodes ready: %d/%d, coredns available: %d/%d", ready, len(nodes.Items), dns.Status.AvailableReplicas, want), false
	}
	return fmt.Sprintf("nodes ready: %d/%d, coredns available: %d/%d", ready, len(nodes.Items), dns.Status.AvailableReplicas, want), true
}

// Down deletes the cluster, its registry (with its storage) and the project-local kubeconfig.
// It is not an error when they are already gone.
func Down(ctx context.Context, o Options) error {
	var errs []error
	exists, err := Exists(o)
	if err != nil {
		return err
	}
	if exists {
		fmt.Fprintf(o.Out, "deleting kind cluster %q\n", o.Name)
		if err := provider(o).Delete(o.Name, o.Kubeconfig); err != nil {
			errs = append(errs, fmt.Errorf("delete kind cluster %q: %w", o.Name, err))
		}
	} else {
		fmt.Fprintf(o.Out, "kind cluster %q does not exist\n", o.Name)
	}
	if _, err := image.DockerOutput(ctx, "inspect", o.gatewayContainer()); err == nil {
		fmt.Fprintf(o.Out, "removing %s\n", o.gatewayContainer())
		if err := image.Docker(ctx, nil, "rm", "-f", o.gatewayContainer()); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := image.DockerOutput(ctx, "inspect", o.registryContainer()); err == nil {
		fmt.Fprintf(o.Out, "removing local registry %s\n", o.registryContainer())
		if err := image.Docker(ctx, nil, "rm", "-f", "-v", o.registryContainer()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(o.Kubeconfig); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

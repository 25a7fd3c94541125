package cluster

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestOptionsFromEnvDefaults(t *testing.T) {
	for _, k := range []string{"KIND_CLUSTER_NAME", "KIND_NODE_IMAGE", "LOCAL_REGISTRY_IMAGE", "LOCAL_REGISTRY_PORT", "KIND_EXPORT_KUBECONFIG"} {
		t.Setenv(k, "")
	}
	o, err := OptionsFromEnv("/repo")
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "dtap" || o.NodeImage != DefaultNodeImage || o.RegistryImage != "registry:2" || o.Registry() != "localhost:5001" ||
		o.Kubeconfig != filepath.Join("/repo", ".cache", "kind", "dtap.kubeconfig") || o.MergeKubeconfig {
		t.Errorf("defaults = %+v", o)
	}
	if !strings.Contains(DefaultNodeImage, "@sha256:") {
		t.Errorf("the default node image is not pinned by digest: %s", DefaultNodeImage)
	}
}

func TestOptionsFromEnvOverrides(t *testing.T) {
	t.Setenv("KIND_CLUSTER_NAME", "lab")
	t.Setenv("KIND_NODE_IMAGE", "local/kind-node:v1.34.4")
	t.Setenv("LOCAL_REGISTRY_IMAGE", "local/registry:2")
	t.Setenv("LOCAL_REGISTRY_PORT", "5999")
	t.Setenv("KIND_EXPORT_KUBECONFIG", "true")
	o, err := OptionsFromEnv("/repo")
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "lab" || o.NodeImage != "local/kind-node:v1.34.4" || o.RegistryImage != "local/registry:2" ||
		o.Registry() != "localhost:5999" || o.registryContainer() != "lab-registry" || !o.MergeKubeconfig {
		t.Errorf("overrides = %+v", o)
	}
	for _, bad := range []string{"abc", "0", "70000"} {
		t.Setenv("LOCAL_REGISTRY_PORT", bad)
		if _, err := OptionsFromEnv("/repo"); err == nil || !strings.Contains(err.Error(), "LOCAL_REGISTRY_PORT") {
			t.Errorf("LOCAL_REGISTRY_PORT=%s: %v", bad, err)
		}
	}
}

func TestClusterConfigPointsContainerdAtTheRegistryHostsDir(t *testing.T) {
	c := clusterConfig(Options{Gateway: GatewayTraefik, HTTPPort: 8080, HTTPSPort: 8443})
	if len(c.ContainerdConfigPatches) != 1 || !strings.Contains(c.ContainerdConfigPatches[0], `config_path = "/etc/containerd/certs.d"`) {
		t.Errorf("containerd patches = %v", c.ContainerdConfigPatches)
	}
	if len(c.Nodes) != 1 {
		t.Errorf("nodes = %d, want the single control-plane node", len(c.Nodes))
	}
}

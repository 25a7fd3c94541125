//go:build integration

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/services"
)

// warnings collects the API server's warning headers (PodSecurity "would violate" among them).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// dryRunner server-side dry-runs objects with strict field validation and reports rejections
// and warnings.
type dryRunner struct {
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
	warn   *warnings
}

func newDryRunner(t *testing.T) *dryRunner {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(lab.cfg)
	cfg.WarningHandler = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &dryRunner{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), warn: w}
}

// mapping looks up obj's kind; a kind not found is looked up once more after discovery is read
// again, as the cluster may have begun to serve it after this mapper first read discovery.
func (d *dryRunner) mapping(obj *unstructured.Unstructured) (*meta.RESTMapping, error) {
	gvk := obj.GroupVersionKind()
	m, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		d.mapper.Reset()
		m, err = d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	return m, err
}

// errNoKind: the cluster does not serve the object's kind (its CRD is not installed).
var errNoKind = errors.New("kind not served by the cluster")

// apply dry-runs one object in ns and returns the warnings it drew.
func (d *dryRunner) apply(t *testing.T, ns string, obj *unstructured.Unstructured) ([]string, error) {
	t.Helper()
	gvk := obj.GroupVersionKind()
	m, err := d.mapping(obj)
	if meta.IsNoMatchError(err) {
		return nil, fmt.Errorf("%w: %s", errNoKind, gvk)
	}
	if err != nil {
		return nil, err
	}
	var ri dynamic.ResourceInterface = d.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		obj.SetNamespace(ns)
		ri = d.dyn.Resource(m.Resource).Namespace(ns)
	}
	d.warn.take()
	_, err = ri.Create(t.Context(), obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
	return d.warn.take(), err
}

// renderAll renders env's manifests and test hooks of every service, client-side, as `helm
// template` does.
func renderAll(t *testing.T, env string, overrides map[string]any) []*unstructured.Unstructured {
	t.Helper()
	all, err := services.Discover(t.Context(), repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, svc := range all {
		vals := map[string]any{"image": imageValues()}
		for k, v := range overrides {
			vals[k] = v
		}
		m, err := chart.Render(t.Context(), filepath.Join(repoRoot, environments.ChartDir), env, svc.Name, "default", vals, serviceFiles(t, svc.Name, env)...)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, decodeAll(t, []byte(m.String()))...)
	}
	return objs
}

func decodeAll(t *testing.T, manifests []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatal(err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// installGatewayAPI installs the Gateway API standard CRDs, which ship in the gateway-api Go
// module, so that HTTPRoutes are validated by the server like everything else.
func installGatewayAPI(t *testing.T) {
	t.Helper()
	dir := filepath.Join(moduleDir(t, "sigs.k8s.io/gateway-api"), "config", "crd", "standard")
	installCRDs(t, dir, "gateway.networking.k8s.io_httproutes.yaml", "gateway.networking.k8s.io_gateways.yaml", "gateway.networking.k8s.io_gatewayclasses.yaml")
}

// TestEveryEnvironmentPassesRestrictedPodSecurity server-side dry-runs every environment's
// manifests (test hooks included) in a namespace that enforces and warns Pod Security
// "restricted". Admission rejects only Pods; for a Deployment it only warns, so any
// PodSecurity warning fails the test as a rejection does.
func TestEveryEnvironmentPassesRestrictedPodSecurity(t *testing.T) {
	installGatewayAPI(t)
	envs, err := environments.List(filepath.Join(repoRoot, environments.ChartDir))
	if err != nil {
		t.Fatal(err)
	}
	dr := newDryRunner(t)
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			ns := namespace(t, "e2e-psa-"+env)
			checked := 0
			for _, obj := range renderAll(t, env, nil) {
				what := obj.GetKind() + "/" + obj.GetName()
				warns, err := dr.apply(t, ns, obj)
				if errors.Is(err, errNoKind) {
					t.Logf("%s: not checked, the lab cluster has no CRD for it (%v); it holds no pod spec", what, err)
					continue
				}
				if err != nil {
					t.Errorf("%s rejected: %v", what, err)
				}
				for _, w := range warns {
					t.Errorf("%s drew a warning: %s", what, w)
				}
				checked++
			}
			t.Logf("%s: %d objects accepted by the API server with no warning", env, checked)
		})
	}
}

// TestPodSecurityCheckCanFail proves the check above bites: a Deployment that runs as root
// draws a PodSecurity warning, and the same pod on its own is rejected.
func TestPodSecurityCheckCanFail(t *testing.T) {
	ns := namespace(t, "e2e-psa-bad")
	dr := newDryRunner(t)
	objs := decodeAll(t, []byte(strings.ReplaceAll(badManifests, "IMAGE", lab.image.String())))
	warns, err := dr.apply(t, ns, objs[0])
	if err != nil {
		t.Fatalf("bad Deployment: %v", err)
	}
	if len(warns) == 0 || !strings.Contains(strings.Join(warns, " "), "restricted") {
		t.Errorf("bad Deployment drew no PodSecurity warning: %v", warns)
	}
	if _, err := dr.apply(t, ns, objs[1]); err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("bad Pod was not rejected: %v", err)
	}
}

const badManifests = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: runs-as-root}
spec:
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec:
      containers: [{name: app, image: IMAGE, securityContext: {runAsUser: 0, allowPrivilegeEscalation: true}}]
---
apiVersion: v1
kind: Pod
metadata: {name: runs-as-root}
spec:
  containers: [{name: app, image: IMAGE, securityContext: {runAsUser: 0, allowPrivilegeEscalation: true}}]
`

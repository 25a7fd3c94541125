package drift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Field managers. The dry run uses one that never writes, so it owns no field and its apply
// removes nothing; RepairManager writes the repairs.
const (
	checkManager  = "dtap-drift-check"
	RepairManager = "dtap-deploy"
)

// controllers are field managers whose changes are not drift: the cluster's own controllers
// (the HPA sets replicas through the scale subresource as kube-controller-manager).
var controllers = []string{"kube-controller-manager", "kube-scheduler"}

// Object is one object of a release that drifted: missing, or with fields that differ.
type Object struct {
	Kind, Name string
	Missing    bool
	Fields     []Field

	want *unstructured.Unstructured
}

func (o Object) String() string {
	if o.Missing {
		return fmt.Sprintf("%s/%s is missing", o.Kind, o.Name)
	}
	var fs []string
	for _, f := range o.Fields {
		fs = append(fs, f.String())
	}
	return fmt.Sprintf("%s/%s: %s", o.Kind, o.Name, strings.Join(fs, "; "))
}

// Checker compares release manifests with the objects of one namespace.
type Checker struct {
	dyn       dynamic.Interface
	mapper    meta.RESTMapper
	namespace string
}

// New connects to the namespace's cluster. The REST mapper reads discovery lazily, once.
func New(cfg *rest.Config, namespace string) (*Checker, error) {
	// Two requests per object: above the toolkit's 50 a second, the API server is the limit.
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 200, 400
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Checker{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), namespace: namespace}, nil
}

// Parse reads YAML documents (a release manifest, a file of CRDs) into objects; empty
// documents are skipped.
func Parse(manifest string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

func (c *Checker) resource(u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := u.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", gvk.Kind, u.GetName(), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameRoot {
		return c.dyn.Resource(m.Resource), nil
	}
	u.SetNamespace(c.namespace)
	return c.dyn.Resource(m.Resource).Namespace(c.namespace), nil
}

// Check compares every object of a release manifest with the live one, several at once, and
// returns those that drifted, in the manifest's order.
func (c *Checker) Check(ctx context.Context, manifest string) ([]Object, error) {
	objs, err := Parse(manifest)
	if err != nil {
		return nil, fmt.Errorf("the release manifest: %w", err)
	}
	found := make([]*Object, len(objs))
	errs := make([]error, len(objs))
	var wg sync.WaitGroup
	for i, u := range objs {
		wg.Go(func() { found[i], errs[i] = c.checkOne(ctx, u) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []Object
	for _, o := range found {
		if o != nil {
			out = append(out, *o)
		}
	}
	return out, nil
}

func (c *Checker) checkOne(ctx context.Context, u *unstructured.Unstructured) (*Object, error) {
	ri, err := c.resource(u)
	if err != nil {
		return nil, err
	}
	o := &Object{Kind: u.GetKind(), Name: u.GetName(), want: u}
	live, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		o.Missing = true
		return o, nil
	}
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	force := true
	dry, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: checkManager, Force: &force, DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return nil, fmt.Errorf("dry-run apply of %s/%s: %w", u.GetKind(), u.GetName(), err)
	}
	var managed []managedEntry
	for _, e := range live.GetManagedFields() {
		if e.FieldsV1 == nil || e.Subresource == "status" {
			continue
		}
		var tree map[string]any
		if json.Unmarshal(e.FieldsV1.Raw, &tree) == nil {
			managed = append(managed, managedEntry{manager: e.Manager, fields: tree})
		}
	}
	for _, f := range diff(dry.Object, live.Object, u.GetKind() == "Secret") {
		who := owners(managed, f.segs)
		if slices.ContainsFunc(who, func(m string) bool { return slices.Contains(controllers, m) }) {
			continue // a controller's field: replicas under an HPA, say
		}
		f.Manager = strings.Join(who, ", ")
		o.Fields = append(o.Fields, f)
	}
	if len(o.Fields) == 0 {
		return nil, nil
	}
	return o, nil
}

// Repair server-side-applies the manifest objects of the drifted ones, as RepairManager, taking
// the fields back from whoever changed them; a missing object is created.
func (c *Checker) Repair(ctx context.Context, drifted []Object) error {
	force := true
	for _, o := range drifted {
		if o.want == nil {
			return fmt.Errorf("%s/%s: no manifest object to repair it with", o.Kind, o.Name)
		}
		ri, err := c.resource(o.want)
		if err != nil {
			return err
		}
		body, err := json.Marshal(o.want.Object)
		if err != nil {
			return err
		}
		if _, err := ri.Patch(ctx, o.Name, types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: RepairManager, Force: &force}); err != nil {
			return fmt.Errorf("repair %s/%s: %w", o.Kind, o.Name, err)
		}
	}
	return nil
}

// Package chart renders and lints the repository's Helm chart (.helm) with the Helm SDK, for one
// DTAP environment at a time: no helm binary and no cluster are needed. The deploy tooling and
// the end-to-end tests use Values to build what they install; mage chart:render and chart:lint
// use Render and Lint.
package chart

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"helm.sh/helm/v3/pkg/action"
	helmchart "helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/environments"
)

// KubeVersion is the Kubernetes version that Render and Lint assume (the chart needs 1.31+).
const KubeVersion = "v1.34.0"

// Object is one rendered Kubernetes object.
type Object struct {
	Source     string // the template it came from, e.g. "api/templates/deployment.yaml"
	APIVersion string
	Kind       string
	Name       string
	Hook       bool   // a Helm hook, such as the helm test pod
	YAML       string // the manifest, without the leading "---"
}

// Manifest is a rendered release: its objects in install order, the hooks last, and its notes.
type Manifest struct {
	Objects []Object
	Notes   string
}

// String is the manifest as one multi-document YAML stream, like `helm template` prints it.
func (m *Manifest) String() string {
	var b strings.Builder
	for _, o := range m.Objects {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", o.Source, strings.TrimSpace(o.YAML))
	}
	return b.String()
}

// Find returns the object of that kind and name, if rendered.
func (m *Manifest) Find(kind, name string) (Object, bool) {
	for _, o := range m.Objects {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return Object{}, false
}

// Load loads the chart in dir (the repository's .helm).
func Load(dir string) (*helmchart.Chart, error) {
	c, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	return c, nil
}

// Values are the values of env's release, merged in this order, later wins: the chart's
// defaults (values.yaml), values-<env>.yaml, extraFiles in order, then overrides. Keys set to
// null are removed, as Helm does. The result is checked against values.schema.json, so a typo
// or a wrong type is reported, naming the key, before anything is installed.
func Values(chartDir, env string, overrides map[string]any, extraFiles ...string) (map[string]any, error) {
	if err := environments.Validate(chartDir, env); err != nil {
		return nil, err
	}
	c, err := Load(chartDir)
	if err != nil {
		return nil, err
	}
	return values(c, chartDir, env, overrides, extraFiles)
}

// ValuesOf is Values for a chart already loaded: a run that merges the values of many services
// loads the chart once.
func ValuesOf(c *helmchart.Chart, chartDir, env string, extraFiles ...string) (map[string]any, error) {
	return values(c, chartDir, env, nil, extraFiles)
}

func values(c *helmchart.Chart, chartDir, env string, overrides map[string]any, extraFiles []string) (map[string]any, error) {
	paths := append([]string{environments.ValuesFile(chartDir, env)}, extraFiles...)
	contents := make([][]byte, len(paths))
	for i, f := range paths {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read values file %s: %w", f, err)
		}
		contents[i] = b
	}
	key := ""
	if overrides == nil { // the values of the files alone are kept (valuescache.go)
		key = valuesKey(c, env, contents)
		if vals, ok := cachedValues(key); ok {
			return vals, nil
		}
	}
	user := map[string]any{}
	for i, f := range paths {
		v, err := parseValues(contents[i])
		if err != nil {
			return nil, fmt.Errorf("read values file %s: %w", f, err)
		}
		user = mergeMaps(user, v)
	}
	user = mergeMaps(user, overrides)
	vals, err := chartutil.CoalesceValues(c, user)
	if err != nil {
		return nil, fmt.Errorf("merge values of %s: %w", env, err)
	}
	if err := validate(c, vals); err != nil {
		return nil, fmt.Errorf("values of %s do not match %s/values.schema.json:\n%w", env, chartDir, err)
	}
	keepValues(key, vals)
	return vals, nil
}

// parsed are values files already parsed, by their content's digest: the environment's file is
// merged into the values of every service of a run. Entries are never changed (mergeMaps and
// Helm's coalescing copy what they change).
var parsed sync.Map // [sha256.Size]byte -> map[string]any

// parseValues parses a values file's content as chartutil.ReadValuesFile does, each content once
// per process.
func parseValues(b []byte) (map[string]any, error) {
	key := sha256.Sum256(b)
	if v, ok := parsed.Load(key); ok {
		return v.(map[string]any), nil
	}
	v, err := chartutil.ReadValues(b)
	if err != nil {
		return nil, err
	}
	parsed.Store(key, map[string]any(v))
	return v, nil
}

// validators are the compiled schemas, by the schema's digest: compiling the chart's schema
// costs some 50 ms, and a deploy of many services validates each one's values against it.
var validators sync.Map // [sha256.Size]byte -> *jsonschema.Schema

// validate checks values against the chart's values.schema.json as Helm does
// (chartutil.ValidateAgainstSchema: the same compiler, the same error text), compiling the
// schema once per process. The chart has no subcharts.
func validate(c *helmchart.Chart, vals map[string]any) error {
	if c.Schema == nil {
		return nil
	}
	key := sha256.Sum256(c.Schema)
	v, ok := validators.Load(key)
	if !ok {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(c.Schema))
		if err != nil {
			return err
		}
		compiler := jsonschema.NewCompiler()
		compiler.UseLoader(jsonschema.SchemeURLLoader{"file": jsonschema.FileLoader{}})
		if err := compiler.AddResource("file:///values.schema.json", doc); err != nil {
			return err
		}
		schema, err := compiler.Compile("file:///values.schema.json")
		if err != nil {
			return err
		}
		v, _ = validators.LoadOrStore(key, schema)
	}
	if err := v.(*jsonschema.Schema).Validate(vals); err != nil {
		// Helm's text (chartutil.JSONSchemaValidationError), which the messages above build on.
		msg := strings.TrimPrefix(err.Error(), "jsonschema validation failed with 'file:///values.schema.json#'\n")
		return fmt.Errorf("%s:\n%s\n", c.Name(), msg)
	}
	return nil
}

// mergeMaps merges b into a copy of a, recursing into maps, as `helm -f a -f b` does.
func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// Render renders env's release as `helm template` would, with the Helm SDK (an install dry run,
// client only, Kubernetes KubeVersion). Values merge as Values merges them: the environment's,
// then files (a service's deploy description, extra values files), then overrides. A template's
// fail (for example a grace period shorter than the drain) and a schema violation are returned
// as errors.
func Render(ctx context.Context, chartDir, env, releaseName, namespace string, overrides map[string]any, files ...string) (*Manifest, error) {
	if err := environments.Validate(chartDir, env); err != nil {
		return nil, err
	}
	c, err := Load(chartDir)
	if err != nil {
		return nil, err
	}
	vals, err := values(c, chartDir, env, overrides, files)
	if err != nil {
		return nil, err
	}
	kube, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		return nil, err
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.ClientOnly = true
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.KubeVersion = kube
	rel, err := install.RunWithContext(ctx, c, vals)
	if err != nil {
		return nil, fmt.Errorf("render %s (release %s, namespace %s): %w", env, releaseName, namespace, err)
	}

	m := &Manifest{Notes: rel.Info.Notes}
	split := releaseutil.SplitManifests(rel.Manifest)
	keys := make([]string, 0, len(split))
	for k := range split {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	for _, k := range keys {
		o, err := newObject(split[k], false)
		if err != nil {
			return nil, err
		}
		if o != nil {
			m.Objects = append(m.Objects, *o)
		}
	}
	for _, h := range rel.Hooks {
		o, err := newObject(h.Manifest, true)
		if err != nil {
			return nil, err
		}
		if o != nil {
			o.Source = h.Path
			m.Objects = append(m.Objects, *o)
		}
	}
	return m, nil
}

// newObject reads the kind and name of one rendered document; nil when it is empty.
func newObject(doc string, hook bool) (*Object, error) {
	o := &Object{Hook: hook}
	var body []string
	for _, line := range strings.Split(doc, "\n") {
		if src, ok := strings.CutPrefix(line, "# Source: "); ok && o.Source == "" {
			o.Source = src
			continue
		}
		body = append(body, line)
	}
	o.YAML = strings.TrimSpace(strings.Join(body, "\n")) + "\n"
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal([]byte(o.YAML), &meta); err != nil {
		return nil, fmt.Errorf("rendered %s is not YAML: %w", o.Source, err)
	}
	if meta.Kind == "" {
		if strings.TrimSpace(o.YAML) == "" {
			return nil, nil
		}
		return nil, fmt.Errorf("rendered %s has no kind", o.Source)
	}
	o.APIVersion, o.Kind, o.Name = meta.APIVersion, meta.Kind, meta.Metadata.Name
	return o, nil
}

// Lint lints the chart with env's values, and files on top (a service's deploy description),
// using the Helm SDK's lint package (Chart.yaml, values.yaml against the schema, templates
// rendered and parsed, deprecated APIs for KubeVersion). Every finding is an error, info
// included: the chart lints clean or fails.
func Lint(chartDir, env string, files ...string) error {
	if err := environments.Validate(chartDir, env); err != nil {
		return err
	}
	user := map[string]any{}
	for _, f := range append([]string{environments.ValuesFile(chartDir, env)}, files...) {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			return fmt.Errorf("read values file %s: %w", f, err)
		}
		user = mergeMaps(user, v)
	}
	kube, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		return err
	}
	linter := lint.AllWithKubeVersion(chartDir, user, "lint", kube)
	var errs []error
	for _, msg := range linter.Messages {
		errs = append(errs, msg) // "[SEVERITY] path: cause"
	}
	if len(errs) > 0 {
		return fmt.Errorf("lint %s with %s:\n%w", chartDir, strings.Join(append([]string{environments.ValuesFile(chartDir, env)}, files...), ", "), errors.Join(errs...))
	}
	return nil
}

// Digest is a digest of the chart's own files (templates, Chart.yaml, values.yaml and its
// schema), the environments' values files left out: they reach a release as values. Deploy sets
// it as chartDigest, so that a template change upgrades every release.
func Digest(chartDir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(chartDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		base := filepath.Base(rel)
		if strings.HasPrefix(base, "values-") || base == "README.md" || base == "icon.svg" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\t%d\n", filepath.ToSlash(rel), len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("digest of the chart %s: %w", chartDir, err)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

package chart

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"sync"

	helmchart "helm.sh/helm/v3/pkg/chart"

	"github.com/dtap-platform/monorepo/internal/usercache"
)

// The merged values of a service are kept in the user's cache directory (dtap/values/, beside
// the go list answers: never in the repository), named by a digest of all they are made of:
// the Helm version that merges them, the chart's values.yaml and schema, the environment, and
// each values file's content, in order. A deploy of fifty services that changed nothing reads
// fifty small files instead of merging fifty values trees and checking each against the
// schema (some 0.7 ms of CPU each, and the schema's compilation). Only values that passed the
// schema are kept, as JSON, which is what they are made of (Helm reads YAML through JSON), so
// they come back as they went in. They hold what the Terraform state and the Helm releases
// hold already; the directory is the user's alone. A file that cannot be read is merged again.

// ValuesCacheDir is where merged values (and deploy's values documents) are kept; "" when there
// is no user cache directory, or DTAP_VALUES_CACHE=off.
var ValuesCacheDir = sync.OnceValue(func() string {
	if os.Getenv("DTAP_VALUES_CACHE") == "off" {
		return ""
	}
	return usercache.Dir("values")
})

// KeptValues is how many files the values cache keeps (the newest): a few hundred services in
// a few environments and their recent versions.
const KeptValues = 2000

// helmVersion is the version of the Helm module this program merges with ("unknown" in a
// program built without its modules' versions, as tests are).
var helmVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == "helm.sh/helm/v3" {
				if dep.Replace != nil {
					dep = dep.Replace
				}
				return dep.Path + "@" + dep.Version
			}
		}
	}
	return "unknown"
})

// valuesKey is the digest that names a service's merged values, "" when they cannot be named
// (no values.yaml among the chart's files).
func valuesKey(c *helmchart.Chart, env string, files [][]byte) string {
	var chartValues []byte
	for _, f := range c.Raw {
		if f.Name == "values.yaml" {
			chartValues = f.Data
		}
	}
	if chartValues == nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "dtap merged values v1\n%s\n%s\n", helmVersion(), env)
	for _, b := range append([][]byte{chartValues, c.Schema}, files...) {
		fmt.Fprintf(h, "%d\n", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cachedValues reads the merged values named key; ok is false when there are none.
func cachedValues(key string) (map[string]any, bool) {
	dir := ValuesCacheDir()
	if key == "" || dir == "" {
		return nil, false
	}
	b, ok := usercache.Read(dir, key+".json")
	if !ok {
		return nil, false
	}
	var vals map[string]any
	if json.Unmarshal(b, &vals) != nil || vals == nil {
		return nil, false
	}
	return vals, true
}

// keepValues stores merged values under key, readable by the user alone.
func keepValues(key string, vals map[string]any) {
	dir := ValuesCacheDir()
	if key == "" || dir == "" {
		return
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return
	}
	usercache.Keep(dir, key+".json", b, KeptValues)
}

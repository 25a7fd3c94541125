package chart

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dtap-platform/monorepo/internal/environments"
)

// withValuesCache points the cache at a directory of the test's own ("" turns it off).
func withValuesCache(t *testing.T, dir string) {
	t.Helper()
	old := ValuesCacheDir
	ValuesCacheDir = func() string { return dir }
	t.Cleanup(func() { ValuesCacheDir = old })
}

// TestKeptValuesAreTheMergedValuesAndNamedByAllTheyAreMadeOf merges the repository's chart
// with a service's values file in every environment, first with no cache, then twice with one:
// what the second run reads back is exactly what was merged; a file that changes, or a cached
// file that is damaged, is merged again; values the schema refuses are never kept.
func TestKeptValuesAreTheMergedValuesAndNamedByAllTheyAreMadeOf(t *testing.T) {
	chartDir := filepath.Join("..", "..", environments.ChartDir)
	c, err := Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	svcFile := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(svcFile, []byte("logLevel: warn\nconfig:\n  greeting: hello\nservice:\n  port: 8081\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "values")
	envs, err := environments.List(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		withValuesCache(t, "")
		want, err := ValuesOf(c, chartDir, env, svcFile)
		if err != nil {
			t.Fatal(err)
		}
		withValuesCache(t, cache)
		first, err := ValuesOf(c, chartDir, env, svcFile)
		if err != nil {
			t.Fatal(err)
		}
		key := valuesKey(c, env, [][]byte{mustRead(t, environments.ValuesFile(chartDir, env)), mustRead(t, svcFile)})
		if key == "" {
			t.Fatal("the values cannot be named: no values.yaml among the chart's files")
		}
		st, err := os.Stat(filepath.Join(cache, key+".json"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: the kept values: %v, mode %v; want a file of the user's alone", env, err, st)
		}
		if dir, _ := os.Stat(cache); dir.Mode().Perm() != 0o700 {
			t.Errorf("the cache directory's mode is %v, want 0700", dir.Mode().Perm())
		}
		again, err := ValuesOf(c, chartDir, env, svcFile)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(first, want) || !reflect.DeepEqual(again, want) {
			t.Errorf("%s: the values read back differ from the values merged", env)
		}
		if port := dig(again, "service", "port"); port != float64(8081) {
			t.Errorf("%s: service.port read back = %#v", env, port)
		}
	}

	// A changed file is another name: merged again, not read back.
	if err := os.WriteFile(svcFile, []byte("logLevel: error\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ValuesOf(c, chartDir, "dev", svcFile)
	if err != nil || got["logLevel"] != "error" {
		t.Fatalf("after the file changed: logLevel %v, %v", got["logLevel"], err)
	}
	// A damaged file is merged again (and rewritten).
	key := valuesKey(c, "dev", [][]byte{mustRead(t, environments.ValuesFile(chartDir, "dev")), mustRead(t, svcFile)})
	if err := os.WriteFile(filepath.Join(cache, key+".json"), []byte(`{"logLevel": "err`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ValuesOf(c, chartDir, "dev", svcFile); err != nil || got["logLevel"] != "error" || len(got) < 10 {
		t.Fatalf("with a damaged cache file: %v, %d keys", err, len(got))
	}
	// Values the schema refuses are refused every time, and never kept.
	if err := os.WriteFile(svcFile, []byte("replicaCount: three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := ValuesOf(c, chartDir, "dev", svcFile); err == nil || !strings.Contains(err.Error(), "replicaCount") {
			t.Fatalf("bad values: %v", err)
		}
	}
	bad := valuesKey(c, "dev", [][]byte{mustRead(t, environments.ValuesFile(chartDir, "dev")), mustRead(t, svcFile)})
	if _, err := os.Stat(filepath.Join(cache, bad+".json")); !os.IsNotExist(err) {
		t.Errorf("values the schema refused were kept: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

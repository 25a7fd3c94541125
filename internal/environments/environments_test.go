package environments

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func chartWith(t *testing.T, envs ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, e := range append([]string{"values"}, envs...) {
		name := "values.yaml"
		if e != "values" {
			name = "values-" + e + ".yaml"
		}
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestListIsInDTAPOrderThenByName(t *testing.T) {
	got, err := List(chartWith(t, "prod", "qa", "dev", "staging", "test", "perf"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"dev", "test", "staging", "prod", "perf", "qa"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

func TestValidateNamesTheKnownEnvironments(t *testing.T) {
	dir := chartWith(t, "dev", "test", "staging", "prod")
	if err := Validate(dir, "staging"); err != nil {
		t.Errorf("Validate(staging) = %v", err)
	}
	for _, bad := range []string{"stagin", "", "values", "../prod"} {
		err := Validate(dir, bad)
		if err == nil || !strings.Contains(err.Error(), "dev, test, staging, prod") {
			t.Errorf("Validate(%q) = %v, want an error listing the known environments", bad, err)
		}
	}
}

func TestTheRepositoryChartHasTheDTAPEnvironments(t *testing.T) {
	got, err := List(filepath.Join("..", "..", ChartDir))
	if err != nil {
		t.Fatalf("the repository chart %s has no environments: %v", ChartDir, err)
	}
	if want := []string{"dev", "test", "staging", "prod"}; !reflect.DeepEqual(got, want) {
		t.Errorf("environments of %s = %v, want %v", ChartDir, got, want)
	}
}

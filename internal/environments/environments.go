// Package environments is the DTAP model: which environments exist, in which order, and
// how a name is validated. An environment exists exactly when the chart has a values file
// for it (.helm/values-<env>.yaml); nothing else declares one.
package environments

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// ChartDir is the chart's directory, relative to the repository root.
const ChartDir = ".helm"

// Production is the environment that asks for an explicit confirmation before it changes.
const Production = "prod"

// order is the DTAP order; environments outside it sort after, by name.
var order = []string{"dev", "test", "staging", "prod"}

// List returns the environments of the chart in chartDir, in DTAP order.
func List(chartDir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(chartDir, "values-*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(matches) == 0 {
		return nil, fmt.Errorf("no environments: %s has no values-<env>.yaml files", chartDir)
	}
	envs := make([]string, 0, len(matches))
	for _, m := range matches {
		envs = append(envs, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), "values-"), ".yaml"))
	}
	slices.SortFunc(envs, func(a, b string) int {
		ia, ib := rank(a), rank(b)
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	return envs, nil
}

func rank(env string) int {
	if i := slices.Index(order, env); i >= 0 {
		return i
	}
	return len(order)
}

// Validate checks that env is one of the chart's environments, and says which are known.
func Validate(chartDir, env string) error {
	known, err := List(chartDir)
	if err != nil {
		return err
	}
	if env == "" {
		return fmt.Errorf("no environment given: name one of %s", strings.Join(known, ", "))
	}
	if !slices.Contains(known, env) {
		return fmt.Errorf("unknown environment %q: known are %s (an environment exists when %s exists)",
			env, strings.Join(known, ", "), ValuesFile(filepath.Base(chartDir), "<env>"))
	}
	return nil
}

// ValuesFile is the path of env's values file.
func ValuesFile(chartDir, env string) string {
	return filepath.Join(chartDir, "values-"+env+".yaml")
}

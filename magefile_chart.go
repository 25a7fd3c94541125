//go:build mage

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/magefile/mage/mg"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/deploy"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/services"
)

// Chart groups the Helm chart targets (the chart is .helm/).
type Chart mg.Namespace

// Render prints the chart's manifests of every service (SERVICES=a,b for some) in an environment, like helm template.
//
// Each release is named after its service, in $NAMESPACE (default: dtap-<env>), with the
// environment's values and the service's deploy description, as mage deploy layers them.
// Nothing is sent to a cluster.
func (Chart) Render(ctx context.Context, env string) error {
	all, err := services.Discover(ctx, ".")
	if err != nil {
		return err
	}
	run, err := services.Select(all, os.Getenv("SERVICES"))
	if err != nil {
		return err
	}
	ns := envOr("NAMESPACE", envOr("PROJECT", deploy.DefaultProject)+"-"+env)
	for _, s := range run {
		m, err := chart.Render(ctx, environments.ChartDir, env, s.Name, ns, nil, s.ValuesFiles(".", env)...)
		if err != nil {
			return err
		}
		fmt.Print(m.String())
	}
	return nil
}

// Lint lints the chart with the Helm SDK for every environment and service; any finding fails.
func (Chart) Lint(ctx context.Context) error {
	envs, err := environments.List(environments.ChartDir)
	if err != nil {
		return err
	}
	all, err := services.Discover(ctx, ".")
	if err != nil {
		return err
	}
	var errs []error
	for _, env := range envs {
		for _, s := range all {
			files := s.ValuesFiles(".", env)
			for i := range files {
				files[i] = filepath.Clean(files[i])
			}
			if err := chart.Lint(environments.ChartDir, env, files...); err != nil {
				errs = append(errs, fmt.Errorf("%s in %s: %w", s.Name, env, err))
				continue
			}
		}
		fmt.Printf("chart lint %s: clean for %d services\n", env, len(all))
	}
	return errors.Join(errs...)
}

//go:build mage

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/magefile/mage/mg"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/environments"
)

// Chart groups the Helm chart targets (the chart is .helm/).
type Chart mg.Namespace

// Render prints the chart's manifests for an environment (dev, test, staging, prod), like helm template.
//
// The release is $RELEASE_NAME (default: the service) in $NAMESPACE (default: <service>-<env>),
// as mage deploy names them. Nothing is sent to a cluster.
func (Chart) Render(ctx context.Context, env string) error {
	m, err := chart.Render(ctx, environments.ChartDir, env, envOr("RELEASE_NAME", service), envOr("NAMESPACE", service+"-"+env), nil)
	if err != nil {
		return err
	}
	fmt.Print(m.String())
	return nil
}

// Lint lints the chart with the Helm SDK for every environment; any finding fails.
func (Chart) Lint(ctx context.Context) error {
	envs, err := environments.List(environments.ChartDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, env := range envs {
		if err := chart.Lint(environments.ChartDir, env); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Printf("chart lint %s: clean\n", env)
	}
	return errors.Join(errs...)
}

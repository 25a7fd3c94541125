//go:build tools

// Package deps pins the toolkit's dependencies while the packages that use them are written.
package deps

import (
	_ "github.com/hashicorp/hc-install"
	_ "github.com/hashicorp/terraform-exec/tfexec"
	_ "github.com/testcontainers/testcontainers-go"
	_ "helm.sh/helm/v3/pkg/action"
	_ "helm.sh/helm/v3/pkg/chart/loader"
	_ "helm.sh/helm/v3/pkg/lint"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/tools/portforward"
	_ "sigs.k8s.io/gateway-api/apis/v1"
	_ "sigs.k8s.io/kind/pkg/cluster"
)

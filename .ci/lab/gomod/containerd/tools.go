//go:build tools

// Package tools pins containerd v2.1.4. `go install pkg@version` refuses containerd (its go.mod has
// exclude directives), so the lab builds it from this wrapper module.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)

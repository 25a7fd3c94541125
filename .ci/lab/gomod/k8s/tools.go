//go:build tools

// Package tools pins the Kubernetes v1.34.4 commands the lab builds. k8s.io/kubernetes cannot be
// built with `go install pkg@version` (its go.mod replaces the staging modules by ./staging), so
// this wrapper module replaces every staging module by its published v0.34.4 instead.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)

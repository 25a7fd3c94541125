//go:build tools

// Package tools pins etcd v3.6.5. `go install pkg@version` refuses go.etcd.io/etcd/server/v3 (its
// go.mod has replace directives), so the lab builds it from this wrapper module.
package tools

import _ "go.etcd.io/etcd/server/v3"

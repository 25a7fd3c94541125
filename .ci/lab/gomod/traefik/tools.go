//go:build tools

// Package tools pins Traefik v3.6.12. `go install pkg@version` refuses github.com/traefik/traefik/v3
// (its go.mod has replace and exclude directives), so the lab builds it from this wrapper module,
// whose go.mod repeats them. v3.7.x cannot be built from the proxy: it requires the nested module
// github.com/traefik/traefik/dynamic/ext through a ./ replace, and that module is not served.
package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"

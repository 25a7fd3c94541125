// Package procenv is the environment the toolkit gives the programs it runs (docker, git, the
// go command): the process's own, less the SECRET_* values, which only deploy itself reads and
// writes into the cluster, and the image signing key and its password (SIGNING_KEY,
// SIGNING_PASSWORD), which only deploy itself signs with.
package procenv

import (
	"os"
	"strings"
)

// Clean is os.Environ() without SECRET_*, SIGNING_KEY and SIGNING_PASSWORD, plus extra
// (KEY=value).
func Clean(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECRET_") && !strings.HasPrefix(kv, "SIGNING_KEY=") && !strings.HasPrefix(kv, "SIGNING_PASSWORD=") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

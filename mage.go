//go:build ignore

// Zero-install entry point: `go run mage.go <target>` runs the magefile with the mage version
// pinned in go.mod, so a fresh machine needs nothing but Go.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }

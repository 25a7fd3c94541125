// Package cosigncli gives tests the real cosign CLI, built from its module, and runs it the
// way a user checking an image would: the proof that what the toolkit attaches is cosign's
// layout, read by cosign itself.
package cosigncli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const (
	Module  = "github.com/sigstore/cosign/v2/cmd/cosign"
	Version = "v2.6.5"
	// TestVar opts in to building the cosign CLI when it is not in its cache yet (a cold build
	// takes many minutes: docs/supply-chain.md); with the binary cached, the tests always run.
	TestVar = "COSIGN_CLI_TEST"
)

var build struct {
	once      sync.Once
	bin, skip string
	err       error
}

// Binary is the path of the cosign CLI, built once into a cache directory beside the Go build
// cache (outside the repository): $(go env GOCACHE)/../dtap-cosign/<version>/cosign. Without
// it and without COSIGN_CLI_TEST=1 the test is skipped, saying how to build it.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		out, err := exec.Command("go", "env", "GOCACHE").Output()
		if err != nil {
			build.err = err
			return
		}
		dir := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "dtap-cosign", Version)
		bin := filepath.Join(dir, "cosign")
		if _, err := os.Stat(bin); err == nil {
			build.bin = bin
			return
		}
		if os.Getenv(TestVar) != "1" {
			build.skip = "the cosign CLI is not built yet (" + bin + "), and building it cold takes minutes: set " +
				TestVar + "=1 to build it once from " + Module + "@" + Version
			return
		}
		cmd := exec.Command("go", "install", Module+"@"+Version)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			msg := stderr.String()
			if strings.Contains(msg, "dial tcp") || strings.Contains(msg, "proxy") || strings.Contains(msg, "no such host") || strings.Contains(msg, "404") {
				build.skip = "the cosign module cannot be downloaded here (" + strings.TrimSpace(msg) + "): set GOPROXY to a proxy that serves " + Module + "@" + Version
				return
			}
			build.err = err
			t.Logf("go install %s@%s: %s", Module, Version, msg)
			return
		}
		build.bin = bin
	})
	if build.skip != "" {
		t.Skip(build.skip)
	}
	if build.err != nil {
		t.Fatalf("build the cosign CLI: %v", build.err)
	}
	return build.bin
}

// Insecure are the flags for the plain-HTTP registry of a test, without a transparency log.
var Insecure = []string{"--insecure-ignore-tlog=true", "--allow-insecure-registry", "--allow-http-registry"}

// CLI runs cosign with a home of its own: no user configuration, no TUF cache of the user's,
// no network beyond the registry.
type CLI struct {
	Bin, Home string
}

// New is the cosign CLI for t, with a fresh home.
func New(t testing.TB) CLI {
	return CLI{Bin: Binary(t), Home: t.TempDir()}
}

// Run runs cosign args... and returns its standard output and error output, and its error.
func (c CLI) Run(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), c.Bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+c.Home, "DOCKER_CONFIG="+c.Home, "TUF_ROOT="+filepath.Join(c.Home, "tuf"), "COSIGN_EXPERIMENTAL=0")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// Must runs cosign args... and fails the test when it fails; it returns the standard output.
func (c CLI) Must(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := c.Run(t, args...)
	if err != nil {
		t.Fatalf("cosign %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	t.Logf("cosign %s:\n%s", args[0], errOut)
	return out
}

// PublicKeyFile writes a signer's public key (PEM) to a file of the test's, for `--key`.
func PublicKeyFile(t testing.TB, signer interface{ PublicPEM() ([]byte, error) }) string {
	t.Helper()
	pem, err := signer.PublicPEM()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(p, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

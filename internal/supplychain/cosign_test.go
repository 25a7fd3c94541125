package supplychain

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The real cosign CLI, built from its module: the check that Attach's layout is cosign's.
const (
	cosignModule  = "github.com/sigstore/cosign/v2/cmd/cosign"
	cosignVersion = "v2.6.5"
	// CosignTestVar opts in to building the cosign CLI when it is not in its cache yet (a cold
	// build takes minutes: docs/supply-chain.md); with the binary cached, the test always runs.
	CosignTestVar = "COSIGN_CLI_TEST"
)

var cosignBuild struct {
	once      sync.Once
	bin, skip string
	err       error
}

// cosignCLI is the path of the cosign CLI, built once into a cache directory beside the Go
// build cache (outside the repository): $(go env GOCACHE)/../dtap-cosign/<version>/cosign.
func cosignCLI(t *testing.T) string {
	t.Helper()
	cosignBuild.once.Do(func() {
		out, err := exec.Command("go", "env", "GOCACHE").Output()
		if err != nil {
			cosignBuild.err = err
			return
		}
		dir := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "dtap-cosign", cosignVersion)
		bin := filepath.Join(dir, "cosign")
		if _, err := os.Stat(bin); err == nil {
			cosignBuild.bin = bin
			return
		}
		if os.Getenv(CosignTestVar) != "1" {
			cosignBuild.skip = "the cosign CLI is not built yet (" + bin + "), and building it cold takes minutes: set " +
				CosignTestVar + "=1 to build it once from " + cosignModule + "@" + cosignVersion
			return
		}
		cmd := exec.Command("go", "install", cosignModule+"@"+cosignVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			msg := stderr.String()
			if strings.Contains(msg, "dial tcp") || strings.Contains(msg, "proxy") || strings.Contains(msg, "no such host") || strings.Contains(msg, "404") {
				cosignBuild.skip = "the cosign module cannot be downloaded here (" + strings.TrimSpace(msg) + "): set GOPROXY to a proxy that serves " + cosignModule + "@" + cosignVersion
				return
			}
			cosignBuild.err = err
			cosignBuild.skip = ""
			t.Logf("go install %s@%s: %s", cosignModule, cosignVersion, msg)
			return
		}
		cosignBuild.bin = bin
	})
	if cosignBuild.skip != "" {
		t.Skip(cosignBuild.skip)
	}
	if cosignBuild.err != nil {
		t.Fatalf("build the cosign CLI: %v", cosignBuild.err)
	}
	return cosignBuild.bin
}

// TestTheCosignCLIVerifiesWhatAttachWrites is must-show 3 of issue 20: the real cosign CLI's
// `verify --key` and `verify-attestation --key --type slsaprovenance1` accept an image Attach
// signed, on a plain registry without the referrers API, and `download sbom` finds its SBOM.
func TestTheCosignCLIVerifiesWhatAttachWrites(t *testing.T) {
	cosign := cosignCLI(t)
	host, base := apiImage(t)
	b := copyTo(t, base, host+"/cosign/api", "")
	s := newSigner(t)
	if err := Attach(t.Context(), b, s); err != nil {
		t.Fatal(err)
	}
	pem, err := s.PublicPEM()
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(pub, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), cosign, args...)
		// No user configuration, no TUF cache of the user's, no network beyond the registry.
		cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+home, "TUF_ROOT="+filepath.Join(home, "tuf"), "COSIGN_EXPERIMENTAL=0")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("cosign %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		t.Logf("cosign %s:\n%s", args[0], stderr.String())
		return stdout.String()
	}
	ref := b.Repository + "@" + b.Digest
	insecure := []string{"--insecure-ignore-tlog=true", "--allow-insecure-registry", "--allow-http-registry"}

	t.Run("cosign verify --key accepts the signature", func(t *testing.T) {
		out := run(t, append(append([]string{"verify", "--key", pub}, insecure...), ref)...)
		if !strings.Contains(out, b.Digest) {
			t.Errorf("cosign verify printed %q, want the digest", out)
		}
	})
	t.Run("cosign verify-attestation --type slsaprovenance1 accepts the provenance", func(t *testing.T) {
		out := run(t, append(append([]string{"verify-attestation", "--key", pub, "--type", "slsaprovenance1"}, insecure...), ref)...)
		if !strings.Contains(out, "payload") {
			t.Errorf("cosign verify-attestation printed %q, want the envelope", out)
		}
	})
	t.Run("cosign download sbom finds the SBOM with chi", func(t *testing.T) {
		out := run(t, "download", "sbom", "--allow-insecure-registry", "--allow-http-registry", ref)
		if want := "pkg:golang/github.com/go-chi/chi/v5@" + goModVersion(t, "github.com/go-chi/chi/v5"); !strings.Contains(out, want) {
			t.Errorf("cosign download sbom printed no %s", want)
		}
	})
	t.Run("cosign verify refuses another key", func(t *testing.T) {
		otherPEM, _ := newSigner(t).PublicPEM()
		other := filepath.Join(t.TempDir(), "other.pub")
		if err := os.WriteFile(other, otherPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), cosign, append(append([]string{"verify", "--key", other}, insecure...), ref)...)
		cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+home, "TUF_ROOT="+filepath.Join(home, "tuf"))
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("cosign verify with another key succeeded: %s", out)
		}
	})
}

package supplychain

import (
	"strings"
	"testing"

	"github.com/dtap-platform/monorepo/internal/cosigncli"
)

// TestTheCosignCLIVerifiesWhatAttachWrites is must-show 3 of issue 20: the real cosign CLI's
// `verify --key` and `verify-attestation --key --type slsaprovenance1` accept an image Attach
// signed, on a plain registry without the referrers API, and `download sbom` finds its SBOM.
func TestTheCosignCLIVerifiesWhatAttachWrites(t *testing.T) {
	cosign := cosigncli.New(t)
	host, base := apiImage(t)
	b := copyTo(t, base, host+"/cosign/api", "")
	s := newSigner(t)
	if err := Attach(t.Context(), b, s); err != nil {
		t.Fatal(err)
	}
	pub := cosigncli.PublicKeyFile(t, s)
	run := cosign.Must
	ref := b.Repository + "@" + b.Digest
	insecure := cosigncli.Insecure

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
		other := cosigncli.PublicKeyFile(t, newSigner(t))
		if out, _, err := cosign.Run(t, append(append([]string{"verify", "--key", other}, insecure...), ref)...); err == nil {
			t.Errorf("cosign verify with another key succeeded: %s", out)
		}
	})
}

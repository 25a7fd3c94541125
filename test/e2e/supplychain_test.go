//go:build integration

package e2e

import (
	"testing"

	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/supplychain"
)

// signLocal signs repo:tag with this checkout's local key pair (.cache/signing), as deploy
// signs what it builds on the embedded cluster: staging and prod deploy only signed images.
func signLocal(t *testing.T, repo, tag string) {
	t.Helper()
	d, err := image.Lookup(t.Context(), repo, tag)
	if err != nil || d == "" {
		t.Fatalf("look up %s:%s to sign it: %q, %v", repo, tag, d, err)
	}
	s, _, err := supplychain.LocalSigner(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if err := supplychain.Attach(t.Context(), supplychain.Build{Repository: repo, Digest: d, Tag: tag}, s); err != nil {
		t.Fatal(err)
	}
}

package deploy

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/supplychain"
)

// Signing is how a run signs what it publishes and what it requires of the images it deploys
// (docs/supply-chain.md).
type Signing struct {
	// Require is REQUIRE_SIGNATURES (requireSignatures in environments.yaml; default true for
	// staging and prod): every image the run deploys must verify with Public before any change.
	Require bool
	// Public is the key images must be signed with: SIGNING_PUBLIC_KEY (signingKey), else the
	// signing key's own, else (on the embedded cluster) this checkout's local key pair's.
	Public       crypto.PublicKey
	PublicSource string
	// KeySource names where the private key comes from (a variable, a file, the local key
	// pair), "" when the run signs nothing. The key itself is read when first needed.
	KeySource string

	keyPEM, password []byte // SIGNING_KEY or SIGNING_KEY_FILE's content: never printed
	local            bool   // the local key pair of .cache/signing
	once             sync.Once
	signer           *supplychain.Signer
	err              error
}

// String describes the settings without the key: %v and %+v of a Signing never print it.
func (g *Signing) String() string {
	return fmt.Sprintf("require=%v key=%q public=%q", g.Require, g.KeySource, g.PublicSource)
}

// GoString is String, for %#v.
func (g *Signing) GoString() string { return g.String() }

// The variables of signing.
const (
	SigningKeyVar       = "SIGNING_KEY"        // the private key, PEM text
	SigningKeyFileVar   = "SIGNING_KEY_FILE"   // the private key, a file
	SigningPasswordVar  = "SIGNING_PASSWORD"   // the password of a cosign key file
	SigningPublicVar    = "SIGNING_PUBLIC_KEY" // the public key, a file (or PEM text)
	RequireSignatureVar = "REQUIRE_SIGNATURES" // true or false
)

// resolveSigning reads the signing settings, with no side effect: the local key pair is made,
// when needed, by the first signature.
func (s *Settings) resolveSigning(getenv Getenv, errs *[]error) {
	fail := func(format string, a ...any) { *errs = append(*errs, fmt.Errorf(format, a...)) }
	g := &Signing{Require: s.Env == "staging" || s.Env == environments.Production}
	if v := getenv(RequireSignatureVar); v != "" {
		b, err := parseBool(v)
		if err != nil {
			fail("%s=%q (requireSignatures): use true or false", RequireSignatureVar, v)
		}
		g.Require = b
	}
	key, file := getenv(SigningKeyVar), getenv(SigningKeyFileVar)
	switch {
	case key != "" && file != "":
		fail("%s and %s are both set: give the signing key once, as PEM text in %s or as a file in %s", SigningKeyVar, SigningKeyFileVar, SigningKeyVar, SigningKeyFileVar)
	case key != "":
		g.keyPEM, g.KeySource = []byte(key), SigningKeyVar
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			fail("%s=%s cannot be read (%v): point it at the PEM private key (cosign.key)", SigningKeyFileVar, file, causeOf(err))
		}
		g.keyPEM, g.KeySource = b, SigningKeyFileVar+"="+file
	case s.Local:
		g.local, g.KeySource = true, "the local key pair ("+supplychain.LocalKeyDir+")"
	}
	if p := getenv(SigningPasswordVar); p != "" {
		g.password = []byte(p)
	}
	if g.keyPEM != nil {
		// Read now, so that a bad key stops the run before anything is built.
		if _, err := g.Signer(""); err != nil {
			*errs = append(*errs, err)
		}
	}
	if v := getenv(SigningPublicVar); v != "" {
		pub, err := supplychain.LoadPublicKey(v, SigningPublicVar+" (signingKey)")
		if err != nil {
			*errs = append(*errs, err)
		}
		g.Public, g.PublicSource = pub, v
		if g.signer != nil && pub != nil && supplychain.Fingerprint(pub) != supplychain.Fingerprint(g.signer.Public()) {
			fail("%s is the public key %s, but %s is the private key of %s: the images this run signs would be refused; give the matching pair", SigningPublicVar, supplychain.Fingerprint(pub), g.KeySource, g.signer)
		}
	} else if g.signer != nil {
		g.Public, g.PublicSource = g.signer.Public(), g.KeySource
	}
	// plan changes nothing and needs no key; render -pins asks for one when it verifies.
	if g.Require && g.Public == nil && !g.local && s.purpose.changes() {
		fail("%s requires signed images (requireSignatures), but no key to verify them with is set: set signingKey in its section of environments.yaml (or %s) to the PEM public key, or %s=false", s.Env, SigningPublicVar, RequireSignatureVar)
	}
	s.Signing = g
}

// Signer is the run's signer, read (or, for the local key pair, made) once. repoRoot is where
// the local key pair lives.
func (g *Signing) Signer(repoRoot string) (*supplychain.Signer, error) {
	g.once.Do(func() {
		switch {
		case g.keyPEM != nil:
			g.signer, g.err = supplychain.ParseSigner(g.keyPEM, g.password, g.KeySource)
		case g.local:
			var pub string
			g.signer, pub, g.err = supplychain.LocalSigner(repoRoot)
			if g.err == nil && g.Public == nil {
				g.Public, g.PublicSource = g.signer.Public(), pub
			}
		}
	})
	return g.signer, g.err
}

// trustImages runs after images: it signs, attests and describes (SBOM) every image this run
// built, carries the attachments of promoted images to their new repository, and, where the
// environment requires signatures, verifies every image the run deploys, before anything
// changes in the environment. Then it adds the pipeline tag, as images did before.
func (r *Runner) trustImages(ctx context.Context, d *Desired, names []string) error {
	g := r.S.Signing
	if g == nil {
		return r.addPipelineTag(ctx, d, names)
	}
	// What the run signs: the images it built. With the local key pair of the embedded
	// cluster, also those it found in the registry under the content tag of its own inputs,
	// unsigned by that key (built by another checkout of this machine, with its own key pair,
	// or before images were signed): the build is reproducible, so the run vouches for bytes it
	// would have built itself. Never an image it was given, by IMAGE_TAG with SKIP_BUILD or
	// by a promotion's pin: that one must come signed. A configured key signs only what the
	// run built: it never vouches for what it did not see built.
	built := slices.DeleteFunc(slices.Clone(names), func(n string) bool {
		w := d.Want[n]
		switch {
		case w.Ref.Digest == "" || w.Pinned:
			return true
		case slices.Contains(r.built, n):
			return false
		}
		return !g.local || w.Tag != w.Inputs.Tag()
	})
	if len(built) > 0 && g.KeySource != "" {
		title := "sign " + list(built) + ": SBOM, signature, provenance with " + g.KeySource
		if !g.Require {
			// Nothing this run does waits for the signatures: they are made beside terraform and
			// the rollout, and the run ends only when they are attached.
			r.signing = r.background(title+" (beside the deploy)", func(out io.Writer) error { return r.sign(ctx, d, built, out) })
		} else if err := r.step(title, func() error { return r.sign(ctx, d, built, r.Out) }); err != nil {
			return err
		}
	} else if len(built) > 0 {
		fmt.Fprintf(r.Out, "  note: %s not signed: set %s or %s to sign what this run publishes\n", list(built), SigningKeyVar, SigningKeyFileVar)
	}
	for _, n := range names {
		w := d.Want[n]
		if w.Pinned && r.S.Pins[n].Repository != w.Ref.Repository {
			if err := supplychain.CopyAttachments(ctx, r.S.Pins[n].Repository, r.S.Pins[n].Digest, w.Ref.Repository); err != nil {
				return fmt.Errorf("promote %s: %w", n, err)
			}
		}
	}
	if g.Require {
		if err := r.step("verify "+list(names)+" (requireSignatures)", func() error {
			return r.verifyRefs(ctx, d, names)
		}); err != nil {
			return err
		}
	}
	return r.addPipelineTag(ctx, d, names)
}

// sign attaches an SBOM, a signature and provenance to each built image that the run's key has
// not signed yet.
func (r *Runner) sign(ctx context.Context, d *Desired, built []string, out io.Writer) error {
	s, err := r.S.Signing.Signer(r.S.RepoRoot)
	if err != nil {
		return err
	}
	for _, n := range built {
		w := d.Want[n]
		if supplychain.Verify(ctx, w.Ref.Repository+"@"+w.Ref.Digest, s.Public()) == nil {
			fmt.Fprintf(out, "  %-10s %s@%s is signed by %s already\n", n, w.Ref.Repository, short(w.Ref.Digest), s)
			continue
		}
		b := supplychain.Build{Repository: w.Ref.Repository, Digest: w.Ref.Digest, Tag: w.Tag, Inputs: w.Inputs,
			Revision: inputs.RevisionOf(ctx, r.S.RepoRoot, w.Inputs)}
		if err := supplychain.Attach(ctx, b, s); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		fmt.Fprintf(out, "  %-10s %s@%s signed by %s (revision %s)\n", n, w.Ref.Repository, short(w.Ref.Digest), s, b.Revision)
	}
	return nil
}

// verifyRefs verifies each service's image with the environment's key; every refusal is
// reported, each naming its image and reason.
func (r *Runner) verifyRefs(ctx context.Context, d *Desired, names []string) error {
	pub, err := r.S.Signing.publicKey(r.S.RepoRoot)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		w := d.Want[n]
		if w.Ref.Digest == "" {
			errs = append(errs, fmt.Errorf("%s: image %s has no digest (SKIP_BUILD with an image missing from the registry?): an environment that requires signatures deploys only verified digests", n, w.Ref))
			continue
		}
		if err := supplychain.Verify(ctx, w.Ref.Repository+"@"+w.Ref.Digest, pub); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			continue
		}
		fmt.Fprintf(r.Out, "  %-10s %s@%s: signature and provenance verified (%s)\n", n, w.Ref.Repository, short(w.Ref.Digest), supplychain.Fingerprint(pub))
	}
	return errors.Join(errs...)
}

// publicKey is the key images must verify with; on the embedded cluster without one set, the
// local key pair's (made if needed).
func (g *Signing) publicKey(repoRoot string) (crypto.PublicKey, error) {
	if g.Public == nil && g.local {
		if _, err := g.Signer(repoRoot); err != nil {
			return nil, err
		}
	}
	if g.Public == nil {
		return nil, fmt.Errorf("no key to verify images with: set %s (signingKey in environments.yaml)", SigningPublicVar)
	}
	return g.Public, nil
}

// VerifyPins is promote's check before it copies anything: in an environment that requires
// signatures, every pinned image must verify where it is, with the target's key.
func (r *Runner) VerifyPins(ctx context.Context, pins map[string]image.Ref) error {
	if r.S.Signing == nil || !r.S.Signing.Require {
		return nil
	}
	return r.step("verify the promoted images ("+r.S.Env+" requires signatures)", func() error {
		pub, err := r.S.Signing.publicKey(r.S.RepoRoot)
		if err != nil {
			return err
		}
		var errs []error
		for _, n := range slices.Sorted(maps.Keys(pins)) {
			p := pins[n]
			if err := supplychain.Verify(ctx, p.Repository+"@"+p.Digest, pub); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n, err))
				continue
			}
			fmt.Fprintf(r.Out, "  %-10s %s@%s: signature and provenance verified\n", n, p.Repository, short(p.Digest))
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("refusing to promote to %s, nothing was copied or changed: %w", r.S.Env, err)
		}
		return nil
	})
}

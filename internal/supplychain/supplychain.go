// Package supplychain attaches to every published image what says what it is and who built
// it, in cosign's registry layout, and checks it before an image is deployed or promoted:
//
//   - an SBOM (CycloneDX JSON, from the binary's debug/buildinfo) at the tag
//     sha256-<hex>.sbom of the image's repository;
//   - a signature (cosign's "simple signing" payload, signed with an ECDSA P-256 key) at
//     sha256-<hex>.sig;
//   - a provenance (an in-toto SLSA v1 statement in a DSSE envelope signed with the same key)
//     at sha256-<hex>.att.
//
// Tags, not the OCI 1.1 referrers API, because they work on every registry (the embedded
// kind registry and distribution answer no referrers query) and the cosign CLI reads them as
// they are: `cosign verify --key` and `cosign verify-attestation --key` check what Attach
// writes. Cosign's library is not linked (it brings about 125 modules); the formats follow
// its source (pkg/oci/static, pkg/cosign/verify.go, pkg/types).
package supplychain

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types and annotations of cosign's layout (cosign pkg/types, pkg/oci/static).
const (
	SimpleSigningMediaType types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEMediaType          types.MediaType = "application/vnd.dsse.envelope.v1+json"
	CycloneDXMediaType     types.MediaType = "application/vnd.cyclonedx+json"

	SignatureAnnotation     = "dev.cosignproject.cosign/signature"
	PredicateTypeAnnotation = "predicateType"

	// SLSAProvenanceV1 is the provenance's predicate type (cosign --type slsaprovenance1).
	SLSAProvenanceV1 = "https://slsa.dev/provenance/v1"
	// InTotoPayloadType is the DSSE payload type of an in-toto statement.
	InTotoPayloadType = "application/vnd.in-toto+json"
	inTotoStatementV1 = "https://in-toto.io/Statement/v1"
	// cosignSignatureType is critical.type of a simple signing payload.
	cosignSignatureType = "cosign container image signature"
)

// The suffixes of the tags beside an image, one per kind of attachment.
const (
	suffixSignature   = "sig"
	suffixAttestation = "att"
	suffixSBOM        = "sbom"
)

// attachmentTag is the tag beside image digest d in repo where cosign looks for an
// attachment: sha256:abc… -> repo:sha256-abc….sig.
func attachmentTag(repo name.Repository, d v1.Hash, suffix string) name.Tag {
	return repo.Tag(fmt.Sprintf("%s-%s.%s", d.Algorithm, d.Hex, suffix))
}

// remoteOptions authenticate as the docker CLI does; a registry on localhost or 127.0.0.1 is
// spoken to over plain HTTP (go-containerregistry's rule), as internal/image does.
func remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

// isNotFound says whether the registry answered that a manifest does not exist.
func isNotFound(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) {
		if terr.StatusCode == http.StatusNotFound {
			return true
		}
		for _, d := range terr.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return true
			}
		}
	}
	return false
}

// resolve is ref's repository and digest: the digest it names, else the one its tag points at.
func resolve(ctx context.Context, ref string) (name.Repository, v1.Hash, error) {
	// repo:tag@sha256:… is read as the digest (what deploy's pins look like).
	if at := strings.LastIndex(ref, "@"); at > 0 {
		repoTag, d := ref[:at], ref[at+1:]
		if c := strings.LastIndex(repoTag, ":"); c > strings.LastIndex(repoTag, "/") {
			repoTag = repoTag[:c]
		}
		ref = repoTag + "@" + d
	}
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return name.Repository{}, v1.Hash{}, fmt.Errorf("image reference %q: %w", ref, err)
	}
	if d, ok := r.(name.Digest); ok {
		h, err := v1.NewHash(d.DigestStr())
		return r.Context(), h, err
	}
	desc, err := remote.Head(r, remoteOptions(ctx)...)
	if err != nil {
		return name.Repository{}, v1.Hash{}, fmt.Errorf("look up %s in its registry: %w", r, err)
	}
	return r.Context(), desc.Digest, nil
}

// AttachmentTags are the tags beside an image digest (sha256:…) where its signature,
// provenance and SBOM are: sha256-<hex>.sig, .att and .sbom.
func AttachmentTags(digest string) []string {
	d, err := v1.NewHash(digest)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range []string{suffixSignature, suffixAttestation, suffixSBOM} {
		out = append(out, fmt.Sprintf("%s-%s.%s", d.Algorithm, d.Hex, s))
	}
	return out
}

// CopyAttachments copies the signature, provenance and SBOM beside image digest in
// repository from to the same tags of repository to (they name the digest, which a copy of
// the image keeps). An attachment from lacks is left out: Verify, where required, says so.
func CopyAttachments(ctx context.Context, from, digest, to string) error {
	src, err := name.NewRepository(from, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("image repository %q: %w", from, err)
	}
	dst, err := name.NewRepository(to, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("image repository %q: %w", to, err)
	}
	for _, tag := range AttachmentTags(digest) {
		desc, err := remote.Get(src.Tag(tag), remoteOptions(ctx)...)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s:%s: %w", src, tag, err)
		}
		img, err := desc.Image()
		if err != nil {
			return err
		}
		if err := remote.Write(dst.Tag(tag), img, remoteOptions(ctx)...); err != nil {
			return fmt.Errorf("copy %s:%s to %s: %w", src, tag, dst, err)
		}
	}
	return nil
}

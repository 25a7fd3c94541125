package supplychain

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dtap-platform/monorepo/internal/inputs"
)

// Build is what Attach records of one published image.
type Build struct {
	Repository string          // registry/path
	Digest     string          // the image's manifest digest, sha256:…
	Tag        string          // its content tag (the binary's version)
	Inputs     inputs.Manifest // the content tag's inputs: the provenance's parameters and dependencies
	Revision   inputs.Revision // the last commit that changed them (not in the image's bytes)
}

// Attach gives a published image its SBOM, signature and provenance, each at its tag beside
// the image (sha256-<hex>.sbom, .sig, .att). An image that already carries a signature and a
// provenance the signer's key verifies, and an SBOM, is left as it is, so a second run pushes
// nothing.
func Attach(ctx context.Context, b Build, s *Signer) error {
	repo, err := name.NewRepository(b.Repository, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("image repository %q: %w", b.Repository, err)
	}
	d, err := v1.NewHash(b.Digest)
	if err != nil {
		return fmt.Errorf("image digest %q: %w", b.Digest, err)
	}
	ref := repo.Digest(d.String())
	opts := remoteOptions(ctx)
	if Verify(ctx, ref.String(), s.Public()) == nil {
		if _, err := remote.Head(attachmentTag(repo, d, suffixSBOM), opts...); err == nil {
			return nil
		}
	}
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return fmt.Errorf("read %s to describe it: %w", ref, err)
	}
	bi, err := binaryBuildInfo(img)
	if err != nil {
		return fmt.Errorf("SBOM of %s: %w", ref, err)
	}
	sbom, err := SBOM(bi, b.Tag, d.String())
	if err != nil {
		return fmt.Errorf("SBOM of %s: %w", ref, err)
	}
	if err := push(ctx, attachmentTag(repo, d, suffixSBOM), staticLayer(sbom, CycloneDXMediaType), nil); err != nil {
		return err
	}

	statement, err := json.Marshal(Provenance(b, repo.Name(), d, bi.GoVersion))
	if err != nil {
		return err
	}
	env, err := dsseSign(s, InTotoPayloadType, statement)
	if err != nil {
		return fmt.Errorf("sign the provenance of %s: %w", ref, err)
	}
	if err := push(ctx, attachmentTag(repo, d, suffixAttestation), staticLayer(env, DSSEMediaType),
		map[string]string{PredicateTypeAnnotation: SLSAProvenanceV1, SignatureAnnotation: ""}); err != nil {
		return err
	}

	payload, err := simpleSigningPayload(repo.Name(), d)
	if err != nil {
		return err
	}
	sig, err := s.sign(payload)
	if err != nil {
		return fmt.Errorf("sign %s: %w", ref, err)
	}
	return push(ctx, attachmentTag(repo, d, suffixSignature), staticLayer(payload, SimpleSigningMediaType),
		map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)})
}

// staticLayer is a layer of bytes stored as they are (cosign's attachments are not compressed).
func staticLayer(b []byte, mt types.MediaType) v1.Layer { return static.NewLayer(b, mt) }

// push writes an image of one layer (with annotations on its descriptor) to tag, as cosign
// does: an OCI manifest and config, the layer's bytes as they are (not compressed).
func push(ctx context.Context, tag name.Tag, layer v1.Layer, annotations map[string]string) error {
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, Annotations: annotations})
	if err != nil {
		return err
	}
	if err := remote.Write(tag, img, remoteOptions(ctx)...); err != nil {
		return fmt.Errorf("push %s: %w", tag, err)
	}
	return nil
}

// simpleSigningPayload is what cosign signs for an image: its repository and digest
// (containers/image's "simple signing" format, sigstore's payload.SimpleContainerImage).
func simpleSigningPayload(repository string, d v1.Hash) ([]byte, error) {
	type identity struct {
		DockerReference string `json:"docker-reference"`
	}
	type image struct {
		DockerManifestDigest string `json:"docker-manifest-digest"`
	}
	type critical struct {
		Identity identity `json:"identity"`
		Image    image    `json:"image"`
		Type     string   `json:"type"`
	}
	return json.Marshal(struct {
		Critical critical       `json:"critical"`
		Optional map[string]any `json:"optional"`
	}{Critical: critical{identity{repository}, image{d.String()}, cosignSignatureType}})
}

// dsseEnvelope is a DSSE envelope (github.com/secure-systems-lab/dsse).
type dsseEnvelope struct {
	PayloadType string          `json:"payloadType"`
	Payload     string          `json:"payload"` // base64
	Signatures  []dsseSignature `json:"signatures"`
}

type dsseSignature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"` // base64
}

// pae is DSSE's pre-authentication encoding: what is signed.
func pae(payloadType string, payload []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload)
}

func dsseSign(s *Signer, payloadType string, payload []byte) ([]byte, error) {
	sig, err := s.sign(pae(payloadType, payload))
	if err != nil {
		return nil, err
	}
	return json.Marshal(dsseEnvelope{PayloadType: payloadType, Payload: base64.StdEncoding.EncodeToString(payload),
		Signatures: []dsseSignature{{Sig: base64.StdEncoding.EncodeToString(sig)}}})
}

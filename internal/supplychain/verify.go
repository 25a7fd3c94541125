package supplychain

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature"
)

// The reasons Verify refuses an image; its errors wrap one of them.
var (
	ErrNoSignature          = errors.New("no signature")
	ErrOtherKey             = errors.New("signed by another key")
	ErrOtherDigest          = errors.New("signature made for another digest")
	ErrNoProvenance         = errors.New("no provenance")
	ErrProvenanceOtherKey   = errors.New("provenance signed by another key")
	ErrProvenanceOtherImage = errors.New("provenance made for another digest")
)

// VerifyError names the image Verify refused and why.
type VerifyError struct {
	Image  string // repository@digest
	Reason error  // one of the Err* reasons
	Detail string // what was found
}

func (e *VerifyError) Error() string {
	msg := fmt.Sprintf("image %s: %v", e.Image, e.Reason)
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg + ": deploy and promote take only images signed with the environment's key; publish it again from this repository (go run mage.go deploy <its environment>), or point signingKey / SIGNING_PUBLIC_KEY at the key that signed it"
}

func (e *VerifyError) Unwrap() error { return e.Reason }

// Verify checks an image (repo:tag, repo@digest or repo:tag@digest) as `cosign verify --key`
// and `cosign verify-attestation --key --type slsaprovenance1` do: a signature at
// sha256-<hex>.sig whose payload names the image's digest and that pubKey verifies, and a
// provenance at sha256-<hex>.att, a DSSE envelope pubKey verifies, of an in-toto statement
// with the SLSA v1 predicate type and the image's digest among its subjects. Transparency
// logs are not consulted (the images are signed with a key, not keyless).
func Verify(ctx context.Context, ref string, pubKey crypto.PublicKey) error {
	repo, d, err := resolve(ctx, ref)
	if err != nil {
		return err
	}
	image := repo.Digest(d.String()).String()
	verifier, err := signature.LoadVerifier(pubKey, crypto.SHA256)
	if err != nil {
		return fmt.Errorf("verify %s: the public key: %w", image, err)
	}
	fail := func(reason error, detail string) error {
		return &VerifyError{Image: image, Reason: reason, Detail: detail}
	}

	sigs, err := attachmentLayers(ctx, attachmentTag(repo, d, suffixSignature), SimpleSigningMediaType)
	if err != nil {
		return fmt.Errorf("verify %s: %w", image, err)
	}
	if len(sigs) == 0 {
		return fail(ErrNoSignature, "no "+attachmentTag(repo, d, suffixSignature).TagStr()+" beside it")
	}
	var otherDigest string
	signed := false
	for _, s := range sigs {
		sig, err := base64.StdEncoding.DecodeString(s.annotations[SignatureAnnotation])
		if err != nil || verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(s.payload)) != nil {
			continue
		}
		var p struct {
			Critical struct {
				Image struct {
					DockerManifestDigest string `json:"docker-manifest-digest"`
				} `json:"image"`
			} `json:"critical"`
		}
		if err := json.Unmarshal(s.payload, &p); err != nil {
			continue
		}
		if p.Critical.Image.DockerManifestDigest != d.String() {
			otherDigest = p.Critical.Image.DockerManifestDigest
			continue
		}
		signed = true
		break
	}
	switch {
	case !signed && otherDigest != "":
		return fail(ErrOtherDigest, "the signature names "+otherDigest)
	case !signed:
		return fail(ErrOtherKey, fmt.Sprintf("%d signature(s), none made with %s", len(sigs), Fingerprint(pubKey)))
	}

	atts, err := attachmentLayers(ctx, attachmentTag(repo, d, suffixAttestation), DSSEMediaType)
	if err != nil {
		return fmt.Errorf("verify %s: %w", image, err)
	}
	var why error = ErrNoProvenance
	detail := "no SLSA v1 provenance at " + attachmentTag(repo, d, suffixAttestation).TagStr()
	for _, a := range atts {
		st, ok := verifyEnvelope(a.payload, verifier)
		if !ok {
			why, detail = ErrProvenanceOtherKey, "none made with "+Fingerprint(pubKey)
			continue
		}
		if st.PredicateType != SLSAProvenanceV1 {
			continue
		}
		for _, s := range st.Subject {
			if s.Digest[d.Algorithm] == d.Hex {
				return nil
			}
		}
		why, detail = ErrProvenanceOtherImage, "its subjects are other images"
	}
	return fail(why, detail)
}

// verifyEnvelope checks a DSSE envelope's signature over its PAE and returns its statement.
func verifyEnvelope(b []byte, verifier signature.Verifier) (Statement, bool) {
	var env dsseEnvelope
	var st Statement
	if json.Unmarshal(b, &env) != nil || env.PayloadType != InTotoPayloadType {
		return st, false
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return st, false
	}
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err == nil && verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(pae(env.PayloadType, payload))) == nil {
			return st, json.Unmarshal(payload, &st) == nil
		}
	}
	return st, false
}

type attachment struct {
	payload     []byte
	annotations map[string]string
}

// maxAttachment bounds what is read of one attachment layer (cosign's default limit).
const maxAttachment = 128 << 20

// attachmentLayers are the layers of media type mt of the image at tag, none when there is
// no such tag.
func attachmentLayers(ctx context.Context, tag name.Tag, mt types.MediaType) ([]attachment, error) {
	img, err := remote.Image(tag, remoteOptions(ctx)...)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", tag, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", tag, err)
	}
	var out []attachment
	for _, l := range m.Layers {
		if l.MediaType != mt {
			continue
		}
		b, err := blob(img, l)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", tag, err)
		}
		out = append(out, attachment{payload: b, annotations: l.Annotations})
	}
	return out, nil
}

func blob(img v1.Image, desc v1.Descriptor) ([]byte, error) {
	if desc.Size > maxAttachment {
		return nil, fmt.Errorf("a layer of %d bytes is no signature", desc.Size)
	}
	l, err := img.LayerByDigest(desc.Digest)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed() // attachments are stored as they are, not compressed
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxAttachment))
}

package supplychain

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/services"
)

// repoRoot is this repository.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// The in-process registry (go-containerregistry's pkg/registry, a real registry) that every
// test of the package shares, and api's image in it, built once with the host builder.
var shared struct {
	once  sync.Once
	host  string
	build Build
	err   error
	skip  string
}

// apiImage is api built by the host builder and pushed to the shared registry: its Build
// (without attachments) and the registry's host.
func apiImage(t *testing.T) (string, Build) {
	t.Helper()
	shared.once.Do(func() {
		if os.Getenv("BUILDER") == image.BuilderDocker {
			shared.skip = "BUILDER=docker: these tests build api with the host builder"
			return
		}
		ctx := context.Background()
		os.Setenv("BUILDER", image.BuilderHost)
		defer os.Unsetenv("BUILDER")
		if _, err := image.Builder(); err != nil {
			shared.skip = "no host builder here: " + err.Error()
			return
		}
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		shared.host = strings.TrimPrefix(srv.URL, "http://")
		root, _ := filepath.Abs(filepath.Join("..", ".."))
		svc := services.Service{Name: "api", Dir: "services/api", Package: "github.com/dtap-platform/monorepo/services/api"}
		m, err := inputs.Of(ctx, root, svc, image.InputOptions(ctx))
		if err != nil {
			shared.err = err
			return
		}
		spec := image.Spec{Service: "api", Inputs: m, Revision: inputs.RevisionOf(ctx, root, m), Ref: image.Ref{Repository: "api", Tag: m.Tag()}}
		repo := shared.host + "/base/api"
		d, err := image.BuildAndPush(ctx, root, spec, repo, nil)
		shared.build = Build{Repository: repo, Digest: d, Tag: spec.Ref.Tag, Inputs: m, Revision: spec.Revision}
		shared.err = err
	})
	if shared.skip != "" {
		t.Skip(shared.skip)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.host, shared.build
}

// copyTo copies b's image to another repository of the registry (a clean slate without
// attachments) and returns its Build there; with label set, the copy gets that label, so it
// has another digest.
func copyTo(t *testing.T, b Build, repository, label string) Build {
	t.Helper()
	src, err := name.ParseReference(b.Repository + "@" + b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if label != "" {
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfg = cfg.DeepCopy()
		cfg.Config.Labels["test"] = label
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			t.Fatal(err)
		}
	}
	dst, err := name.NewTag(repository+":"+b.Tag, name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	out := b
	out.Repository, out.Digest = repository, d.String()
	return out
}

func newSigner(t *testing.T) *Signer {
	t.Helper()
	s, _, err := LocalSigner(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// attached is the one layer of the attachment image at suffix beside b's digest.
func attached(t *testing.T, b Build, suffix string) (v1.Descriptor, []byte) {
	t.Helper()
	repo, err := name.NewRepository(b.Repository)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := v1.NewHash(b.Digest)
	img, err := remote.Image(attachmentTag(repo, d, suffix), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("no %s beside %s: %v", suffix, b.Digest, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("the %s image has %d layers, want 1", suffix, len(m.Layers))
	}
	payload, err := blob(img, m.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0], payload
}

// goModVersion is the version go.mod requires of module.
func goModVersion(t *testing.T, module string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1]
		}
	}
	t.Fatalf("go.mod requires no %s", module)
	return ""
}

func TestAttachGivesAnImageItsSBOMSignatureAndProvenanceInCosignsLayout(t *testing.T) {
	host, base := apiImage(t)
	b := copyTo(t, base, host+"/attach/api", "")
	s := newSigner(t)
	if err := Attach(t.Context(), b, s); err != nil {
		t.Fatal(err)
	}

	t.Run("the SBOM is CycloneDX JSON and lists chi at go.mod's version", func(t *testing.T) {
		desc, sbom := attached(t, b, suffixSBOM)
		if desc.MediaType != CycloneDXMediaType {
			t.Errorf("SBOM layer media type %s, want %s", desc.MediaType, CycloneDXMediaType)
		}
		var bom cdx.BOM
		if err := cdx.NewBOMDecoder(bytes.NewReader(sbom), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
			t.Fatalf("the SBOM is no CycloneDX JSON: %v", err)
		}
		want := goModVersion(t, "github.com/go-chi/chi/v5")
		found := false
		for _, c := range *bom.Components {
			if c.Name == "github.com/go-chi/chi/v5" {
				found = c.Version == want && c.PackageURL == "pkg:golang/github.com/go-chi/chi/v5@"+want && c.Hashes != nil
				if !found {
					t.Errorf("chi in the SBOM: %+v; want version %s with its purl and hash", c, want)
				}
			}
		}
		if !found {
			t.Errorf("the SBOM lists no github.com/go-chi/chi/v5 %s", want)
		}
		if mc := bom.Metadata.Component; mc.Name != "github.com/dtap-platform/monorepo/services/api" || mc.Version != b.Tag {
			t.Errorf("the SBOM's subject is %s %s, want services/api %s", mc.Name, mc.Version, b.Tag)
		}
	})

	t.Run("the signature is cosign's simple signing payload for the digest", func(t *testing.T) {
		desc, payload := attached(t, b, suffixSignature)
		want := `{"critical":{"identity":{"docker-reference":"` + b.Repository + `"},"image":{"docker-manifest-digest":"` + b.Digest +
			`"},"type":"cosign container image signature"},"optional":null}`
		if desc.MediaType != SimpleSigningMediaType || string(payload) != want {
			t.Errorf("signature layer %s %s\nwant %s %s", desc.MediaType, payload, SimpleSigningMediaType, want)
		}
		if _, err := base64.StdEncoding.DecodeString(desc.Annotations[SignatureAnnotation]); err != nil || desc.Annotations[SignatureAnnotation] == "" {
			t.Errorf("annotation %s = %q, want a base64 signature", SignatureAnnotation, desc.Annotations[SignatureAnnotation])
		}
	})

	t.Run("the provenance is a DSSE envelope of a SLSA v1 statement about the digest", func(t *testing.T) {
		desc, env := attached(t, b, suffixAttestation)
		if desc.MediaType != DSSEMediaType || desc.Annotations[PredicateTypeAnnotation] != SLSAProvenanceV1 {
			t.Errorf("attestation layer %s, annotations %v", desc.MediaType, desc.Annotations)
		}
		var e dsseEnvelope
		if err := json.Unmarshal(env, &e); err != nil || e.PayloadType != InTotoPayloadType || len(e.Signatures) != 1 {
			t.Fatalf("envelope %s (%v)", env, err)
		}
		body, _ := base64.StdEncoding.DecodeString(e.Payload)
		var st Statement
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		ext := st.Predicate.BuildDefinition.ExternalParameters
		if st.Type != inTotoStatementV1 || st.PredicateType != SLSAProvenanceV1 || "sha256:"+st.Subject[0].Digest["sha256"] != b.Digest ||
			ext["contentTag"] != b.Tag || ext["GO_IMAGE"] != image.HostBuilderImage() {
			t.Errorf("statement %s", body)
		}
		deps := map[string]bool{}
		for _, r := range st.Predicate.BuildDefinition.ResolvedDependencies {
			deps[r.Name] = len(r.Digest) > 0
		}
		for _, want := range []string{"revision", "services/api/main.go", "github.com/go-chi/chi/v5@" + goModVersion(t, "github.com/go-chi/chi/v5")} {
			if !deps[want] {
				t.Errorf("the provenance's resolved dependencies lack %s with a digest: %v", want, deps)
			}
		}
	})

	t.Run("Verify accepts it with the signer's key", func(t *testing.T) {
		if err := Verify(t.Context(), b.Repository+":"+b.Tag, s.Public()); err != nil {
			t.Error(err)
		}
		if err := Verify(t.Context(), b.Repository+":"+b.Tag+"@"+b.Digest, s.Public()); err != nil {
			t.Error(err)
		}
	})

	t.Run("attaching again pushes nothing", func(t *testing.T) {
		before, _ := attached(t, b, suffixSignature)
		if err := Attach(t.Context(), b, s); err != nil {
			t.Fatal(err)
		}
		if after, _ := attached(t, b, suffixSignature); after.Annotations[SignatureAnnotation] != before.Annotations[SignatureAnnotation] {
			t.Error("a second Attach signed the image again")
		}
	})
}

func TestVerifyRefusesAnImageItCannotTrustNamingTheImageAndTheReason(t *testing.T) {
	host, base := apiImage(t)
	key := newSigner(t)
	other := newSigner(t)

	signed := copyTo(t, base, host+"/refuse/signed", "")
	if err := Attach(t.Context(), signed, key); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		make func(t *testing.T) Build
		want error
	}{
		{"an unsigned image", func(t *testing.T) Build {
			return copyTo(t, base, host+"/refuse/unsigned", "")
		}, ErrNoSignature},
		{"an image signed by another key", func(t *testing.T) Build {
			b := copyTo(t, base, host+"/refuse/otherkey", "")
			if err := Attach(t.Context(), b, other); err != nil {
				t.Fatal(err)
			}
			return b
		}, ErrOtherKey},
		{"an image whose signature was made for another digest", func(t *testing.T) Build {
			// The signed image's .sig copied beside another image of the same repository.
			b := copyTo(t, base, signed.Repository, "another image")
			repo, _ := name.NewRepository(b.Repository)
			from, _ := v1.NewHash(signed.Digest)
			to, _ := v1.NewHash(b.Digest)
			img, err := remote.Image(attachmentTag(repo, from, suffixSignature), remote.WithContext(t.Context()))
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(attachmentTag(repo, to, suffixSignature), img, remote.WithContext(t.Context())); err != nil {
				t.Fatal(err)
			}
			return b
		}, ErrOtherDigest},
		{"a signed image without provenance", func(t *testing.T) Build {
			b := copyTo(t, base, host+"/refuse/noprovenance", "")
			repo, _ := name.NewRepository(b.Repository)
			d, _ := v1.NewHash(b.Digest)
			payload, err := simpleSigningPayload(repo.Name(), d)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := key.sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			if err := push(t.Context(), attachmentTag(repo, d, suffixSignature), staticLayer(payload, SimpleSigningMediaType),
				map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}); err != nil {
				t.Fatal(err)
			}
			return b
		}, ErrNoProvenance},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			b := tt.make(t)
			err := Verify(t.Context(), b.Repository+":"+b.Tag+"@"+b.Digest, key.Public())
			var ve *VerifyError
			if !errors.Is(err, tt.want) || !errors.As(err, &ve) {
				t.Fatalf("Verify = %v; want %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), b.Repository+"@"+b.Digest) || !strings.Contains(err.Error(), tt.want.Error()) {
				t.Errorf("the error %q does not name the image %s@%s and the reason", err, b.Repository, b.Digest)
			}
		})
	}
	if err := Verify(t.Context(), signed.Repository+"@"+signed.Digest, key.Public()); err != nil {
		t.Errorf("the signed image is refused: %v", err)
	}
}

func TestLocalSignerMakesOneKeyPairAndKeepsThePrivateKeyPrivate(t *testing.T) {
	root := t.TempDir()
	s, pubPath, err := LocalSigner(root)
	if err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(root, LocalKeyDir, "cosign.key")
	st, err := os.Stat(priv)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key %s: %v, mode %v; want 0600", priv, err, st.Mode().Perm())
	}
	again, _, err := LocalSigner(root)
	if err != nil || Fingerprint(again.Public()) != Fingerprint(s.Public()) {
		t.Errorf("a second LocalSigner gave another key (%v)", err)
	}
	pub, err := LoadPublicKey(pubPath, "SIGNING_PUBLIC_KEY")
	if err != nil || Fingerprint(pub) != Fingerprint(s.Public()) {
		t.Errorf("the public key file does not match (%v)", err)
	}
	secret, _ := os.ReadFile(priv)
	if strings.Contains(s.String(), string(secret)) || !strings.HasPrefix(s.String(), "ECDSA P-256 key sha256:") {
		t.Errorf("the signer prints as %q", s)
	}
	if err := os.Chmod(priv, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LocalSigner(root); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a private key readable by others = %v; want a refusal naming chmod 600", err)
	}
}

func TestParseSignerExplainsWhatIsWrongWithoutQuotingTheKey(t *testing.T) {
	junk := "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldC1zZWNyZXQ=\n-----END PRIVATE KEY-----\n"
	tests := []struct{ name, pem, want string }{
		{"text that is no PEM", "not a key at all", "no PEM private key"},
		{"a PEM block that is no key", junk, "no PEM private key"},
		{"an encrypted key without a password", "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nc2VjcmV0\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n", "SIGNING_PASSWORD"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			_, err := ParseSigner([]byte(tt.pem), nil, "SIGNING_KEY")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "SIGNING_KEY") {
				t.Fatalf("ParseSigner = %v; want an error naming SIGNING_KEY and %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
}

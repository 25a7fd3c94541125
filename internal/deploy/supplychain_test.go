package deploy

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/supplychain"
	"github.com/dtap-platform/monorepo/internal/testfiles"
)

// keyPair is a fresh ECDSA P-256 key pair as PEM: private (PKCS#8) and public.
func keyPair(t *testing.T) (priv, pub string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pder, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}))
}

// publicKeyFile is the path of a fresh PEM public key.
func publicKeyFile(t *testing.T) string {
	t.Helper()
	_, pub := keyPair(t)
	path := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(path, []byte(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestResolveReadsTheSigningSettingsAndRequiresSignaturesInStagingAndProd(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	priv, pub := keyPair(t)
	_, otherPub := keyPair(t)
	keyFile := filepath.Join(t.TempDir(), "cosign.key")
	if err := os.WriteFile(keyFile, []byte(priv), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("dev on the embedded cluster signs with the local key pair and requires nothing", func(t *testing.T) {
		s, err := resolve(t, root, "dev", ForDeploy, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Signing.Require || !s.Signing.local || s.Signing.KeySource == "" {
			t.Errorf("signing %+v; want the local key pair, not required", s.Signing)
		}
	})
	t.Run("staging and prod require signatures by default", func(t *testing.T) {
		for _, env := range []string{"staging", "prod"} {
			s, err := resolve(t, root, env, ForPlan, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Signing.Require {
				t.Errorf("%s does not require signatures", env)
			}
		}
	})
	t.Run("REQUIRE_SIGNATURES overrides the default", func(t *testing.T) {
		s, err := resolve(t, root, "dev", ForDeploy, map[string]string{RequireSignatureVar: "true"})
		if err != nil || !s.Signing.Require {
			t.Errorf("REQUIRE_SIGNATURES=true: require %v, %v", s.Signing.Require, err)
		}
	})
	t.Run("SIGNING_KEY signs, and its public key verifies", func(t *testing.T) {
		s, err := resolve(t, root, "dev", ForDeploy, map[string]string{SigningKeyVar: priv})
		if err != nil {
			t.Fatal(err)
		}
		want := supplychain.LoadPublicKeyPEM([]byte(pub))
		if s.Signing.KeySource != SigningKeyVar || s.Signing.Public == nil || supplychain.Fingerprint(s.Signing.Public) != supplychain.Fingerprint(want) {
			t.Errorf("signing from %q with public key %v; want SIGNING_KEY's", s.Signing.KeySource, s.Signing.Public)
		}
	})
	t.Run("signingKey in environments.yaml is relative to the repository", func(t *testing.T) {
		testfiles.Write(t, root, map[string]string{"keys/prod.pub": pub,
			"environments.yaml": "environments:\n  prod:\n    upstream: \"\"\n    signingKey: keys/prod.pub\n"})
		t.Cleanup(func() { os.Remove(filepath.Join(root, "environments.yaml")) })
		s, err := resolve(t, root, "prod", ForPlan, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Signing.PublicSource != filepath.Join(root, "keys", "prod.pub") {
			t.Errorf("public key from %q, want the repository's keys/prod.pub", s.Signing.PublicSource)
		}
	})

	tests := []struct {
		name string
		env  string
		vars map[string]string
		want []string
	}{
		{"staging on a configured cluster without a public key", "staging", map[string]string{"CLUSTER": "-", "KUBECONFIG": "", "REGISTRY": "r.example.com"},
			[]string{"staging requires signed images", "signingKey", "SIGNING_PUBLIC_KEY", "REQUIRE_SIGNATURES=false"}},
		{"both SIGNING_KEY and SIGNING_KEY_FILE", "dev", map[string]string{SigningKeyVar: priv, SigningKeyFileVar: keyFile},
			[]string{"SIGNING_KEY and SIGNING_KEY_FILE are both set"}},
		{"a SIGNING_KEY that is no key", "dev", map[string]string{SigningKeyVar: "-----BEGIN PRIVATE KEY-----\nbm90LWEta2V5LXNlY3JldA==\n-----END PRIVATE KEY-----\n"},
			[]string{"SIGNING_KEY is no PEM private key"}},
		{"a SIGNING_KEY_FILE that does not exist", "dev", map[string]string{SigningKeyFileVar: filepath.Join(root, "nope.key")},
			[]string{"SIGNING_KEY_FILE=", "cannot be read"}},
		{"a private key that does not match the public key", "dev", map[string]string{SigningKeyFileVar: keyFile, SigningPublicVar: otherPub},
			[]string{"would be refused", "matching pair"}},
		{"a bogus REQUIRE_SIGNATURES", "dev", map[string]string{RequireSignatureVar: "maybe"},
			[]string{`REQUIRE_SIGNATURES="maybe"`, "true or false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused before anything happens", func(t *testing.T) {
			if tt.vars["CLUSTER"] == "-" {
				kubeconfig := filepath.Join(t.TempDir(), "config")
				testfiles.Write(t, filepath.Dir(kubeconfig), map[string]string{"config": twoContexts})
				tt.vars["KUBECONFIG"], tt.vars["KUBE_CONTEXT"] = kubeconfig, "prod-eu"
			}
			_, err := resolve(t, root, tt.env, ForDeploy, tt.vars)
			wantError(t, err, tt.want, "bm90LWEta2V5LXNlY3JldA", priv[30:60])
		})
	}
}

// testRegistry is go-containerregistry's in-process registry (a real one), its host.
func testRegistry(t *testing.T) string {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials of the user's
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushGoImage pushes an image whose /app is this test binary (a Go binary with build
// information, what the SBOM reads) to repository:tag, labelled so that each label gives
// another digest, and returns its reference.
func pushGoImage(t *testing.T, repository, tag, label string) image.Ref {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "app", Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(b)
	tw.Close()
	layer := static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer)
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Entrypoint: []string{"/app"}, Labels: map[string]string{"test": label}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(repository+":"+tag, name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return image.Ref{Repository: repository, Tag: tag, Digest: d.String()}
}

func signingOf(t *testing.T, privPEM string, require bool) *Signing {
	t.Helper()
	g := &Signing{Require: require, keyPEM: []byte(privPEM), KeySource: SigningKeyVar}
	s, err := g.Signer("")
	if err != nil {
		t.Fatal(err)
	}
	g.Public = s.Public()
	return g
}

// TestDeployAndPromoteRefuseImagesTheyCannotTrust is must-show 4 of issue 20 at the layer deploy
// and promote share: in an environment that requires signatures, an unsigned image, an image
// signed by another key and an image whose signature was made for another digest are each
// refused, naming the service, the image and the reason, before anything changes; a signed one
// passes.
func TestDeployAndPromoteRefuseImagesTheyCannotTrust(t *testing.T) {
	host := testRegistry(t)
	priv, _ := keyPair(t)
	otherPriv, _ := keyPair(t)
	ours, other := signingOf(t, priv, true), signingOf(t, otherPriv, true)
	oursSigner, _ := ours.Signer("")
	otherSigner, _ := other.Signer("")
	sign := func(t *testing.T, ref image.Ref, s *supplychain.Signer) {
		t.Helper()
		if err := supplychain.Attach(t.Context(), supplychain.Build{Repository: ref.Repository, Digest: ref.Digest, Tag: ref.Tag}, s); err != nil {
			t.Fatal(err)
		}
	}
	repo := host + "/staging/api"
	signed := pushGoImage(t, repo, "src-0000000000000001", "signed")
	sign(t, signed, oursSigner)

	tests := []struct {
		name string
		make func(t *testing.T) image.Ref
		want string
	}{
		{"an unsigned image", func(t *testing.T) image.Ref {
			return pushGoImage(t, repo, "src-0000000000000002", "unsigned")
		}, "no signature"},
		{"an image signed by another key", func(t *testing.T) image.Ref {
			ref := pushGoImage(t, repo, "src-0000000000000003", "other key")
			sign(t, ref, otherSigner)
			return ref
		}, "signed by another key"},
		{"an image whose signature was made for another digest", func(t *testing.T) image.Ref {
			ref := pushGoImage(t, repo, "src-0000000000000004", "another digest")
			from, _ := name.NewTag(repo+":"+supplychain.AttachmentTags(signed.Digest)[0], name.StrictValidation)
			to, _ := name.NewTag(repo+":"+supplychain.AttachmentTags(ref.Digest)[0], name.StrictValidation)
			img, err := remote.Image(from, remote.WithContext(t.Context()))
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(to, img, remote.WithContext(t.Context())); err != nil {
				t.Fatal(err)
			}
			return ref
		}, "signature made for another digest"},
	}
	for _, tt := range tests {
		ref := tt.make(t)
		t.Run("deploy refuses "+tt.name, func(t *testing.T) {
			var out bytes.Buffer
			r := &Runner{S: Settings{Env: "prod", RepoRoot: t.TempDir(), Signing: ours}, Out: &out}
			d := &Desired{Want: map[string]*Want{"api": {Tag: ref.Tag, Ref: ref}}}
			err := r.trustImages(t.Context(), d, []string{"api"})
			if err == nil {
				t.Fatalf("deploy took %s", ref)
			}
			for _, w := range []string{"api", ref.Repository + "@" + ref.Digest, tt.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the refusal %q does not say %q", err, w)
				}
			}
		})
		t.Run("promote refuses "+tt.name+" before copying it", func(t *testing.T) {
			var out bytes.Buffer
			r := &Runner{S: Settings{Env: "prod", RepoRoot: t.TempDir(), Signing: ours}, Out: &out}
			err := r.VerifyPins(t.Context(), map[string]image.Ref{"api": ref})
			if err == nil || !strings.Contains(err.Error(), "refusing to promote to prod, nothing was copied") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("VerifyPins = %v; want a refusal saying %q", err, tt.want)
			}
		})
	}

	t.Run("a signed image passes both", func(t *testing.T) {
		var out bytes.Buffer
		r := &Runner{S: Settings{Env: "prod", RepoRoot: t.TempDir(), Signing: ours}, Out: &out}
		if err := r.VerifyPins(t.Context(), map[string]image.Ref{"api": signed}); err != nil {
			t.Error(err)
		}
		d := &Desired{Want: map[string]*Want{"api": {Tag: signed.Tag, Ref: signed}}}
		if err := r.trustImages(t.Context(), d, []string{"api"}); err != nil {
			t.Error(err)
		}
		if !strings.Contains(out.String(), "signature and provenance verified") {
			t.Errorf("output %q does not say the image was verified", out.String())
		}
	})
	t.Run("an image the run built is signed, then verified", func(t *testing.T) {
		ref := pushGoImage(t, host+"/dev/api", "src-0000000000000005", "built")
		var out bytes.Buffer
		r := &Runner{S: Settings{Env: "dev", RepoRoot: t.TempDir(), Signing: ours}, Out: &out, built: []string{"api"}}
		d := &Desired{Want: map[string]*Want{"api": {Tag: ref.Tag, Ref: ref}}}
		if err := r.trustImages(t.Context(), d, []string{"api"}); err != nil {
			t.Fatal(err)
		}
		if err := supplychain.Verify(t.Context(), ref.Repository+"@"+ref.Digest, ours.Public); err != nil {
			t.Error(err)
		}
		if strings.Contains(out.String(), priv[30:60]) {
			t.Error("the output holds the private key")
		}
	})
	t.Run("with the local key pair an image found unsigned under its own content tag is signed, a configured key leaves it", func(t *testing.T) {
		in := inputs.Manifest{Inputs: []inputs.Input{{Kind: inputs.KindBuild, Name: "found", Digest: "1"}}}
		ref := pushGoImage(t, host+"/local/api", in.Tag(), "found")
		d := &Desired{Want: map[string]*Want{"api": {Tag: ref.Tag, Ref: ref, Inputs: in}}}
		var out bytes.Buffer
		configured := &Runner{S: Settings{Env: "staging", RepoRoot: t.TempDir(), Signing: signingOf(t, priv, true)}, Out: &out}
		if err := configured.trustImages(t.Context(), d, []string{"api"}); err == nil || !strings.Contains(err.Error(), "no signature") {
			t.Errorf("a configured key signed an image this run did not build, or let it through: %v", err)
		}
		root := t.TempDir()
		local := &Runner{S: Settings{Env: "staging", RepoRoot: root, Signing: &Signing{Require: true, local: true, KeySource: "the local key pair"}}, Out: &out}
		if err := local.trustImages(t.Context(), d, []string{"api"}); err != nil {
			t.Fatal(err)
		}
		s, _, err := supplychain.LocalSigner(root)
		if err != nil {
			t.Fatal(err)
		}
		if err := supplychain.Verify(t.Context(), ref.Repository+"@"+ref.Digest, s.Public()); err != nil {
			t.Error(err)
		}
	})
	t.Run("the local key pair never signs an image given by IMAGE_TAG", func(t *testing.T) {
		in := inputs.Manifest{Inputs: []inputs.Input{{Kind: inputs.KindBuild, Name: "given", Digest: "1"}}}
		ref := pushGoImage(t, host+"/local/api", "pr-7", "given")
		d := &Desired{Want: map[string]*Want{"api": {Tag: ref.Tag, Ref: ref, Inputs: in}}}
		var out bytes.Buffer
		local := &Runner{S: Settings{Env: "prod", RepoRoot: t.TempDir(), Signing: &Signing{Require: true, local: true, KeySource: "the local key pair"}}, Out: &out}
		if err := local.trustImages(t.Context(), d, []string{"api"}); err == nil || !strings.Contains(err.Error(), "no signature") {
			t.Errorf("the local key pair vouched for an image it was given, or let it through: %v", err)
		}
	})
	t.Run("promote carries the signature to another registry", func(t *testing.T) {
		dst := testRegistry(t) + "/prod/api"
		if err := supplychain.CopyAttachments(t.Context(), signed.Repository, signed.Digest, dst); err != nil {
			t.Fatal(err)
		}
		if _, err := image.Copy(t.Context(), signed, dst); err != nil {
			t.Fatal(err)
		}
		if err := supplychain.Verify(t.Context(), dst+"@"+signed.Digest, ours.Public); err != nil {
			t.Error(err)
		}
	})
}

func TestPlanNeedsNoSigningKeyEvenWhereSignaturesAreRequired(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	kubeconfig := filepath.Join(t.TempDir(), "config")
	testfiles.Write(t, filepath.Dir(kubeconfig), map[string]string{"config": twoContexts})
	vars := map[string]string{"CLUSTER": "-", "KUBECONFIG": kubeconfig, "KUBE_CONTEXT": "prod-eu", "REGISTRY": "r.example.com"}
	s, err := resolve(t, root, "staging", ForPlan, vars)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Signing.Require || s.Signing.Public != nil {
		t.Errorf("signing %+v; want required, with no key", s.Signing)
	}
	if _, err := s.Signing.publicKey(root); err == nil || !strings.Contains(err.Error(), SigningPublicVar) {
		t.Errorf("publicKey without a key = %v; want an error naming %s", err, SigningPublicVar)
	}
}

func TestSigningNeverPrintsItsKey(t *testing.T) {
	priv, _ := keyPair(t)
	g := &Signing{Require: true, keyPEM: []byte(priv), password: []byte("hunter2"), KeySource: SigningKeyVar}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, g)
		if strings.Contains(out, priv[30:60]) || strings.Contains(out, "hunter2") {
			t.Errorf("%s of a Signing prints the key: %s", format, out)
		}
	}
}

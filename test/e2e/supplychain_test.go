//go:build integration

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/mod/modfile"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dtap-platform/monorepo/internal/cosigncli"
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

// TestProdRefusesImagesItCannotTrust: with staging running a build whose signature is then
// removed, replaced by another key's, or swapped for the signature of another digest,
// `promote staging prod` and `deploy prod` each refuse before any change, naming the reason,
// as a user types them.
func TestProdRefusesImagesItCannotTrust(t *testing.T) {
	p := newProject(t, "trust")
	if out, err := p.mageRun(repoRoot, nil, "deploy", "staging"); err != nil {
		t.Fatalf("deploy staging: %v\n%s", err, out)
	}
	t.Run("the cosign CLI verifies every image deploy pushed", func(t *testing.T) {
		checkCosignVerifies(t, p.ns("staging"), "api", "status")
	})

	// A build of api of this test's own (its digest is no other test's), signed, in staging.
	tag := pushVariant(t, "api", "trust-"+p.name, `LABEL org.opencontainers.image.description="trust test"`)
	repo := lab.opts.Registry() + "/api"
	pinned := map[string]string{"SERVICES": "api", "IMAGE_TAG": tag, "SKIP_BUILD": "true"}
	if out, err := p.mageRun(repoRoot, pinned, "deploy", "staging"); err != nil {
		t.Fatalf("deploy the signed build to staging: %v\n%s", err, out)
	}
	digest, err := image.Lookup(t.Context(), repo, tag)
	if err != nil || digest == "" {
		t.Fatalf("look up %s:%s: %q, %v", repo, tag, digest, err)
	}
	sigTag := func(d string) name.Tag {
		tg, err := name.NewTag(repo+":"+supplychain.AttachmentTags(d)[0], name.StrictValidation)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	// staging's status: signed by the same key, another digest.
	dep, err := lab.clients.AppsV1().Deployments(p.ns("staging")).Get(t.Context(), "status", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	statusRef := dep.Spec.Template.Spec.Containers[0].Image
	statusDigest := statusRef[strings.LastIndex(statusRef, "@")+1:]
	statusSig, err := name.NewTag(lab.opts.Registry()+"/status:"+supplychain.AttachmentTags(statusDigest)[0], name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := supplychain.LocalSigner(t.TempDir()) // a key pair that is not the checkout's
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		tamper func(t *testing.T)
		reason string
	}{
		{"unsigned", func(t *testing.T) {
			desc, err := remote.Head(sigTag(digest), remote.WithContext(t.Context()))
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Delete(sigTag(digest).Context().Digest(desc.Digest.String()), remote.WithContext(t.Context())); err != nil {
				t.Fatal(err)
			}
		}, "no signature"},
		{"signed by another key", func(t *testing.T) {
			if err := supplychain.Attach(t.Context(), supplychain.Build{Repository: repo, Digest: digest, Tag: tag}, other); err != nil {
				t.Fatal(err)
			}
		}, "signed by another key"},
		{"signature made for another digest", func(t *testing.T) {
			img, err := remote.Image(statusSig, remote.WithContext(t.Context()))
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(sigTag(digest), img, remote.WithContext(t.Context())); err != nil {
				t.Fatal(err)
			}
		}, "signature made for another digest"},
	}
	prod := map[string]string{"CONFIRM_PROD": "yes"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.tamper(t)
			// The next case starts from a good signature (t.Context is done in a cleanup).
			t.Cleanup(func() {
				s, _, err := supplychain.LocalSigner(repoRoot)
				if err == nil {
					err = supplychain.Attach(context.Background(), supplychain.Build{Repository: repo, Digest: digest, Tag: tag}, s)
				}
				if err != nil {
					t.Errorf("sign %s:%s again: %v", repo, tag, err)
				}
			})
			for _, run := range []struct {
				args  []string
				extra map[string]string
			}{
				{[]string{"promote", "staging", "prod"}, prod},
				{[]string{"deploy", "prod"}, map[string]string{"CONFIRM_PROD": "yes", "SERVICES": "api", "IMAGE_TAG": tag, "SKIP_BUILD": "true"}},
			} {
				out, err := p.mageRun(repoRoot, run.extra, run.args...)
				if err == nil {
					t.Fatalf("%s took an image %s:\n%s", strings.Join(run.args, " "), c.name, out)
				}
				for _, want := range []string{c.reason, repo + "@" + digest} {
					if !strings.Contains(out, want) {
						t.Errorf("%s: the refusal does not say %q:\n%s", strings.Join(run.args, " "), want, out)
					}
				}
				if strings.Contains(out, "==> terraform") || strings.Contains(out, "==> namespace") {
					t.Errorf("%s changed something before refusing:\n%s", strings.Join(run.args, " "), out)
				}
			}
		})
	}
	if _, err := lab.clients.CoreV1().Namespaces().Get(t.Context(), p.ns("prod"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s exists after every refusal (err %v): something was changed", p.ns("prod"), err)
	}
}

// checkCosignVerifies runs the real cosign CLI, as docs/supply-chain.md tells a user to, on the
// image each service runs in ns: `verify --key` and `verify-attestation --type slsaprovenance1`
// with the checkout's public key accept it, and `download sbom` lists chi at go.mod's version.
func checkCosignVerifies(t *testing.T, ns string, services ...string) {
	cosign := cosigncli.New(t)
	s, _, err := supplychain.LocalSigner(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	pub := cosigncli.PublicKeyFile(t, s)
	chi := "pkg:golang/github.com/go-chi/chi/v5@" + requiredVersion(t, "github.com/go-chi/chi/v5")
	for _, svc := range services {
		dep, err := lab.clients.AppsV1().Deployments(ns).Get(t.Context(), svc, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		img := dep.Spec.Template.Spec.Containers[0].Image
		at := strings.LastIndex(img, "@")
		repo := img[:at]
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i] // the tag, beside the digest
		}
		ref := repo + "@" + img[at+1:]
		if out := cosign.Must(t, append(append([]string{"verify", "--key", pub}, cosigncli.Insecure...), ref)...); !strings.Contains(out, img[at+1:]) {
			t.Errorf("cosign verify %s printed %q, want the digest", ref, out)
		}
		cosign.Must(t, append(append([]string{"verify-attestation", "--key", pub, "--type", "slsaprovenance1"}, cosigncli.Insecure...), ref)...)
		if out := cosign.Must(t, "download", "sbom", "--allow-insecure-registry", "--allow-http-registry", ref); !strings.Contains(out, chi) {
			t.Errorf("the SBOM of %s lists no %s", ref, chi)
		}
	}
}

// requiredVersion is the version go.mod requires of a module.
func requiredVersion(t *testing.T, module string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.ParseLax("go.mod", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Require {
		if r.Mod.Path == module {
			return r.Mod.Version
		}
	}
	t.Fatalf("go.mod requires no %s", module)
	return ""
}

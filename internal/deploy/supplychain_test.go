package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

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

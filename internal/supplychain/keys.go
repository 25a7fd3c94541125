package supplychain

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Signer signs with one ECDSA P-256 private key, which never leaves it: no method returns or
// prints it, and its errors never quote it.
type Signer struct {
	sv  signature.SignerVerifier
	pub crypto.PublicKey
}

// Public is the signer's public key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// PublicPEM is the signer's public key as PEM, what `cosign verify --key` reads.
func (s *Signer) PublicPEM() ([]byte, error) { return cryptoutils.MarshalPublicKeyToPEM(s.pub) }

// String names the key by its fingerprint, which is safe to print.
func (s *Signer) String() string { return "ECDSA P-256 key " + Fingerprint(s.pub) }

func (s *Signer) sign(payload []byte) ([]byte, error) {
	return s.sv.SignMessage(strings.NewReader(string(payload)))
}

// NewSigner makes a Signer of an ECDSA P-256 private key.
func NewSigner(priv crypto.PrivateKey) (*Signer, error) {
	k, ok := priv.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is a %T, not an ECDSA key: use an ECDSA P-256 key (cosign generate-key-pair makes one)", priv)
	}
	if k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the key is an ECDSA %s key: use an ECDSA P-256 key (cosign generate-key-pair makes one)", k.Curve.Params().Name)
	}
	sv, err := signature.LoadECDSASignerVerifier(k, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &Signer{sv: sv, pub: k.Public()}, nil
}

// ParseSigner reads a PEM private key: PKCS#8, SEC 1, or cosign's encrypted key file (with
// password; nil for none). source names where the key came from (a variable or a file) in
// errors, which never quote the key.
func ParseSigner(pemBytes, password []byte, source string) (*Signer, error) {
	var pf cryptoutils.PassFunc
	if password != nil {
		pf = cryptoutils.StaticPasswordFunc(password)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, pf)
	if err != nil {
		if strings.Contains(string(pemBytes), "ENCRYPTED") && password == nil {
			return nil, fmt.Errorf("%s is an encrypted private key and SIGNING_PASSWORD is not set: set SIGNING_PASSWORD to its password", source)
		}
		return nil, fmt.Errorf("%s is no PEM private key this can read (%s): give an ECDSA P-256 key in PEM, or cosign's key file with SIGNING_PASSWORD", source, safeReason(err))
	}
	s, err := NewSigner(priv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return s, nil
}

// safeReason is an error's message cut to its first clause: a parser's message names what
// failed, never the key's bytes, but keep it short anyway.
func safeReason(err error) string {
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

// LocalKeyDir is where the embedded cluster's key pair is kept, relative to the repository.
const LocalKeyDir = ".cache/signing"

// Local key pair file names: cosign's.
const (
	localPrivate = "cosign.key"
	localPublic  = "cosign.pub"
)

// LocalSigner is the throwaway key pair of this checkout, for the embedded cluster: generated
// once into .cache/signing/ (the private key 0600 in a 0700 directory, the public key beside
// it), then read from there. It returns the signer and the public key's path.
func LocalSigner(repoRoot string) (*Signer, string, error) {
	dir := filepath.Join(repoRoot, filepath.FromSlash(LocalKeyDir))
	privPath, pubPath := filepath.Join(dir, localPrivate), filepath.Join(dir, localPublic)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("create %s for the local signing key: %w", dir, err)
	}
	b, err := os.ReadFile(privPath)
	if errors.Is(err, fs.ErrNotExist) {
		if err := generateLocal(privPath, pubPath); err != nil {
			return nil, "", err
		}
		b, err = os.ReadFile(privPath)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the local signing key: %w", err)
	}
	if st, err := os.Stat(privPath); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, "", fmt.Errorf("the local signing key %s is readable by others (mode %o): chmod 600 it, or delete it to have a new one made", privPath, st.Mode().Perm())
	}
	s, err := ParseSigner(b, nil, privPath)
	if err != nil {
		return nil, "", fmt.Errorf("%w; delete %s to have a new one made", err, dir)
	}
	pub, err := os.ReadFile(pubPath)
	if err != nil || LoadPublicKeyPEM(pub) == nil {
		// The public key is derived: write it again when it is missing or another.
		if pem, err := s.PublicPEM(); err == nil {
			_ = os.WriteFile(pubPath, pem, 0o644)
		}
	}
	return s, pubPath, nil
}

// generateLocal writes a new key pair; O_EXCL keeps a concurrent run's key.
func generateLocal(privPath, pubPath string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(privPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // another run made it first
	}
	if err != nil {
		return fmt.Errorf("create the local signing key: %w", err)
	}
	_, werr := f.Write(cryptoutils.PEMEncode(cryptoutils.PrivateKeyPEMType, der))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(privPath)
		return fmt.Errorf("write the local signing key: %w", werr)
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		return err
	}
	return os.WriteFile(pubPath, pub, 0o644)
}

// LoadPublicKeyPEM is the public key of PEM text, nil when it holds none.
func LoadPublicKeyPEM(b []byte) crypto.PublicKey {
	k, err := cryptoutils.UnmarshalPEMToPublicKey(b)
	if err != nil {
		return nil
	}
	return k
}

// LoadPublicKey reads a PEM public key from a file, or from the value itself when it is PEM
// text. what names the setting in errors (for example "SIGNING_PUBLIC_KEY").
func LoadPublicKey(value, what string) (crypto.PublicKey, error) {
	b := []byte(value)
	if !strings.HasPrefix(strings.TrimSpace(value), "-----BEGIN") {
		var err error
		if b, err = os.ReadFile(value); err != nil {
			return nil, fmt.Errorf("%s=%s cannot be read (%v): point it at a PEM public key (cosign.pub)", what, value, err)
		}
	}
	k, err := cryptoutils.UnmarshalPEMToPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s holds no PEM public key (%v): point it at cosign.pub of the signing key pair", what, err)
	}
	if ek, ok := k.(*ecdsa.PublicKey); !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s is no ECDSA P-256 public key: images are signed with ECDSA P-256 keys", what)
	}
	return k, nil
}

// Fingerprint names a public key: the first 16 hex digits of the SHA-256 of its DER form.
func Fingerprint(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "unknown"
	}
	h := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(h[:8])
}

package config

import (
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var shownFingerprint = regexp.MustCompile(`^\[fingerprint (hmac|argon2id):[0-9a-f]{24}, [0-9]+ bytes\]$`)

func TestLoadReadsTheViewSettings(t *testing.T) {
	cfg, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.View != ViewFingerprints || len(cfg.Public) != 0 || cfg.ViewMaxBytes != DefaultViewMaxBytes || cfg.Fingerprinter.Keyed() {
		t.Errorf("defaults: view %q, public %v, max %d, keyed %v; want fingerprints, none, 1 MiB, unkeyed",
			cfg.View, cfg.Public, cfg.ViewMaxBytes, cfg.Fingerprinter.Keyed())
	}
	cfg, err = Load([]string{"CONFIG_VIEW= Redacted ", "CONFIG_PUBLIC=APP_FEATURE, features.yaml,,dtap-stage\nLOG_LEVEL", "CONFIG_VIEW_MAX_BYTES=64Ki"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.View != ViewRedacted || cfg.ViewMaxBytes != 64<<10 {
		t.Errorf("view %q, max %d", cfg.View, cfg.ViewMaxBytes)
	}
	for _, k := range []string{"APP_FEATURE", "features.yaml", "dtap-stage", "LOG_LEVEL"} {
		if !cfg.IsPublic(k) {
			t.Errorf("%s is not public: %v", k, cfg.Public)
		}
	}
	if cfg.IsPublic("APP_OTHER") || len(cfg.Public) != 4 {
		t.Errorf("public = %v", cfg.Public)
	}
	if View("").Normal() != ViewFingerprints || View("nonsense").Normal() != ViewFingerprints {
		t.Error("a zero or unknown View must read as fingerprints: a Config built by hand fails closed")
	}

	for _, tt := range []struct{ env, wantVar, want string }{
		{"CONFIG_VIEW=clear", EnvView, "unknown view"},
		{"CONFIG_PUBLIC=APP_A,a/b", EnvPublic, "is not a key"},
		{"CONFIG_VIEW_MAX_BYTES=1Ki", EnvViewMaxBytes, "below the least"},
		{"CONFIG_VIEW_MAX_BYTES=lots", EnvViewMaxBytes, "not a size"},
	} {
		_, err := Load([]string{tt.env})
		var cerr *Error
		if !errors.As(err, &cerr) || cerr.Var != tt.wantVar || !strings.Contains(err.Error(), tt.want) || cerr.Fix == "" {
			t.Errorf("Load(%q) = %v, want %s refused: %q, with a fix", tt.env, err, tt.wantVar, tt.want)
		}
	}
}

// TestLoadJudgesAFileByWhereItsLinksLead: a file of CONFIG_DIR that resolves into SECRETS_DIR
// (directly, through the Secret's ..data layout, or through a chain of links) or anywhere
// outside CONFIG_DIR is a secret; links that stay inside CONFIG_DIR (the ConfigMap layout) are
// ordinary files.
func TestLoadJudgesAFileByWhereItsLinksLead(t *testing.T) {
	root := t.TempDir()
	conf, secrets, elsewhere := filepath.Join(root, "config"), filepath.Join(root, "secrets"), filepath.Join(root, "elsewhere")
	for _, d := range []string{conf, secrets, elsewhere, filepath.Join(secrets, "..2026_01_01"), filepath.Join(conf, "..2026_01_01")} {
		mustMkdir(t, d)
	}
	mustWrite(t, filepath.Join(secrets, "..2026_01_01", "db-password"), "S3cr3t-layout")
	mustSymlink(t, "..2026_01_01", filepath.Join(secrets, "..data"))
	mustSymlink(t, "..data/db-password", filepath.Join(secrets, "db-password"))
	mustWrite(t, filepath.Join(secrets, "plain"), "S3cr3t-plain")
	mustWrite(t, filepath.Join(elsewhere, "token"), "S3cr3t-elsewhere")
	mustWrite(t, filepath.Join(conf, "..2026_01_01", "greeting"), "hello")
	mustSymlink(t, "..2026_01_01", filepath.Join(conf, "..data"))
	mustSymlink(t, "..data/greeting", filepath.Join(conf, "greeting"))

	mustSymlink(t, filepath.Join(secrets, "db-password"), filepath.Join(conf, "via-layout"))
	mustSymlink(t, "../secrets/plain", filepath.Join(conf, "relative"))
	mustSymlink(t, filepath.Join(elsewhere, "token"), filepath.Join(conf, "outside"))
	mustSymlink(t, "relative", filepath.Join(conf, "chain"))
	mustSymlink(t, "greeting", filepath.Join(conf, "alias"))

	cfg, err := Load([]string{"CONFIG_DIR=" + conf, "SECRETS_DIR=" + secrets})
	if err != nil {
		t.Fatal(err)
	}
	wantSecret := map[string]string{"via-layout": "S3cr3t-layout", "relative": "S3cr3t-plain", "chain": "S3cr3t-plain", "outside": "S3cr3t-elsewhere"}
	for name, v := range wantSecret {
		if got, ok := cfg.LinkedSecrets[name]; !ok || got.Reveal() != v {
			t.Errorf("LinkedSecrets[%s] = %q (%v), want the secret %q", name, got.Reveal(), ok, v)
		}
		if _, ok := cfg.Files[name]; ok {
			t.Errorf("%s resolves outside CONFIG_DIR but is a config file", name)
		}
	}
	if cfg.Files["greeting"] != "hello" || cfg.Files["alias"] != "hello" || len(cfg.Files) != 2 || len(cfg.BinaryFiles) != 0 {
		t.Errorf("Files = %v, want greeting and alias (links inside CONFIG_DIR)", cfg.Files)
	}

	// With a relative CONFIG_DIR too.
	t.Chdir(root)
	cfg, err = Load([]string{"CONFIG_DIR=config", "SECRETS_DIR=secrets"})
	if err != nil || len(cfg.LinkedSecrets) != len(wantSecret) || len(cfg.Files) != 2 {
		t.Errorf("relative dirs: %v, linked %d, files %v", err, len(cfg.LinkedSecrets), cfg.Files)
	}
}

func TestLoadTakesAFileOfSeveralMB(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "big.json"), strings.Repeat("x", 2_000_000))
	cfg, err := Load([]string{"CONFIG_DIR=" + dir})
	if err != nil || len(cfg.Files["big.json"]) != 2_000_000 {
		t.Errorf("a 2 MB file: %v, %d bytes", err, len(cfg.Files["big.json"]))
	}
}

func TestTheFingerprintKeyComesFromTheSecret(t *testing.T) {
	secrets := t.TempDir()
	mustWrite(t, filepath.Join(secrets, FingerprintKeyName), "0123456789abcdef0123456789abcdef\n")
	cfg, err := Load([]string{"SECRETS_DIR=" + secrets, "APP_RELEASE=api"})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Fingerprinter.Keyed() || !strings.HasPrefix(cfg.Fingerprinter.Sum([]byte("x")), "hmac:") {
		t.Errorf("with %s in SECRETS_DIR, fingerprints are not keyed: %s", FingerprintKeyName, cfg.Fingerprinter.Scheme())
	}
	same := NewFingerprinter([]byte("0123456789abcdef0123456789abcdef"), "other-release")
	if cfg.Fingerprinter.Sum([]byte("S3cr3t")) != same.Sum([]byte("S3cr3t")) {
		t.Error("the same key gives other fingerprints: keyed fingerprints must depend on the key and the value only")
	}

	mustWrite(t, filepath.Join(secrets, FingerprintKeyName), "zq9x!")
	_, err = Load([]string{"SECRETS_DIR=" + secrets})
	var cerr *Error
	if !errors.As(err, &cerr) || cerr.Var != EnvSecretsDir || !strings.Contains(err.Error(), "fewer than 16") || strings.Contains(err.Error(), "zq9x!") {
		t.Errorf("a 5-byte key: %v, want it refused without showing it", err)
	}
}

func TestFingerprintsTellEqualValuesAndNothingMore(t *testing.T) {
	k1 := NewFingerprinter([]byte("key-one-0123456789"), "api")
	k2 := NewFingerprinter([]byte("key-two-0123456789"), "api")
	u1, u2, uOther := NewFingerprinter(nil, "api"), NewFingerprinter(nil, "api"), NewFingerprinter(nil, "status")
	for name, f := range map[string]Fingerprinter{"keyed": k1, "unkeyed": u1} {
		a, b := f.Sum([]byte("S3cr3t")), f.Sum([]byte("S3cr3t!"))
		if a == b {
			t.Errorf("%s: two values, one fingerprint %s", name, a)
		}
		if strings.Contains(a, "S3cr3t") {
			t.Errorf("%s: %s shows the value", name, a)
		}
	}
	if k1.Sum([]byte("v")) == k2.Sum([]byte("v")) {
		t.Error("two keys, one fingerprint")
	}
	if u1.Sum([]byte("v")) != u2.Sum([]byte("v")) {
		t.Error("two pods of one release, unkeyed: the same value must show the same fingerprint")
	}
	if u1.Sum([]byte("v")) == uOther.Sum([]byte("v")) {
		t.Error("the unkeyed salt must be the release")
	}
	got := k1.Fingerprints([][]byte{[]byte("a"), []byte("bb"), []byte("a"), nil})
	if got[0] != got[2] || got[0] == got[1] || !strings.HasSuffix(got[1], ", 2 bytes]") || !strings.HasSuffix(got[3], ", 0 bytes]") {
		t.Errorf("Fingerprints = %q", got)
	}
	for _, g := range got {
		if !shownFingerprint.MatchString(g) {
			t.Errorf("%q is not a shown fingerprint", g)
		}
	}
	if !strings.Contains(k1.Scheme(), "hmac-sha256") || !strings.Contains(u1.Scheme(), "unkeyed") {
		t.Errorf("schemes: %q, %q", k1.Scheme(), u1.Scheme())
	}
}

// TestUnkeyedFingerprintsAreBoundedInNumber: without a key each fingerprint costs an argon2id
// derivation, so only the first maxSlowFingerprints distinct values get one.
func TestUnkeyedFingerprintsAreBoundedInNumber(t *testing.T) {
	defer func(n int) { maxSlowFingerprints = n }(maxSlowFingerprints)
	maxSlowFingerprints = 2
	got := NewFingerprinter(nil, "api").Fingerprints([][]byte{[]byte("a"), []byte("b"), []byte("a"), []byte("ccc")})
	if !shownFingerprint.MatchString(got[0]) || !shownFingerprint.MatchString(got[1]) || got[2] != got[0] {
		t.Errorf("the first two distinct values: %q", got[:3])
	}
	if got[3] != "[hidden, 3 bytes: no fingerprint key, and more than 2 values]" {
		t.Errorf("the third distinct value: %q", got[3])
	}
	keyed := NewFingerprinter([]byte("0123456789abcdef"), "api").Fingerprints([][]byte{[]byte("a"), []byte("b"), []byte("c")})
	if !shownFingerprint.MatchString(keyed[2]) {
		t.Errorf("keyed fingerprints are cheap and not bounded: %q", keyed)
	}
}

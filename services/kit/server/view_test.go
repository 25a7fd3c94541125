package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"

	"github.com/dtap-platform/monorepo/services/kit/config"
)

var fingerprintRE = regexp.MustCompile(`^\[fingerprint (hmac|argon2id):[0-9a-f]{24}, ([0-9]+) bytes\]$`)

const testKey = "k3y-0f-th3-r3l3as3-not-in-config"

// writeFiles writes name -> content into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// loaded is GET /config of the configuration that environ and the directories give.
func loaded(t *testing.T, environ ...string) (string, configDoc) {
	t.Helper()
	cfg, err := config.Load(environ)
	if err != nil {
		t.Fatal(err)
	}
	return configOf(t, cfg)
}

func TestTheFingerprintsViewShowsOnlyPublicValues(t *testing.T) {
	conf, secrets := t.TempDir(), t.TempDir()
	writeFiles(t, conf, map[string]string{"greeting": "hello", "features.yaml": "search: on\n", "db.ini": "[db]\nbindpw S3cr3t\n",
		"logo.bin": "\xff\x00\x01", "blob.bin": "\xfe\x00S3cr3t"})
	writeFiles(t, secrets, map[string]string{"db-password": "S3cr3t", config.FingerprintKeyName: testKey})
	if err := os.Symlink(filepath.Join(secrets, "db-password"), filepath.Join(conf, "linked")); err != nil {
		t.Fatal(err)
	}
	body, got := loaded(t, "CONFIG_DIR="+conf, "SECRETS_DIR="+secrets, "APP_ENV=prod", "APP_RELEASE=api",
		"CONFIG_PUBLIC=greeting,features.yaml,logo.bin,APP_REGION,linked,db-password,APP_URL", "APP_REGION=eu-west-1",
		"APP_LDAP_BINDPW=S3cr3t", "APP_FEATURE=on", "APP_URL=postgres://app:S3cr3t@db/app")
	if strings.Contains(body, "S3cr3t") || strings.Contains(body, testKey) {
		t.Errorf("/config shows a value that is not public:\n%s", body)
	}
	if !strings.HasPrefix(body, `{"environment":"prod",`) || got.View != "fingerprints" || !strings.Contains(got.Fingerprints, "hmac-sha256") {
		t.Errorf("head: %.200s", body)
	}
	shown := map[string]string{
		"config greeting": "hello", "config features.yaml": "search: on", "configBase64 logo.bin": "/wAB",
		"env APP_REGION": "eu-west-1",
		// public, and through the redaction rules still
		"env APP_URL": "postgres://app:[REDACTED]@db/app",
	}
	fingerprinted := map[string]int{
		"config db.ini": len("[db]\nbindpw S3cr3t"), "configBase64 blob.bin": 8, "env APP_LDAP_BINDPW": 6, "env APP_FEATURE": 2,
		// public names, but secrets: judged by where they are
		"config linked": 6, "secrets db-password": 6, "secrets " + config.FingerprintKeyName: len(testKey),
	}
	flat := flatten(got)
	for k, want := range shown {
		if flat[k] != want {
			t.Errorf("%s = %q, want %q", k, flat[k], want)
		}
	}
	for k, n := range fingerprinted {
		m := fingerprintRE.FindStringSubmatch(flat[k])
		if m == nil || m[1] != "hmac" || m[2] != fmt.Sprint(n) {
			t.Errorf("%s = %q, want an hmac fingerprint of %d bytes", k, flat[k], n)
		}
	}
	if len(flat) != len(shown)+len(fingerprinted) {
		t.Errorf("/config has %d entries, want %d: %v", len(flat), len(shown)+len(fingerprinted), flat)
	}
	if flat["config linked"] != flat["secrets db-password"] || flat["env APP_LDAP_BINDPW"] != flat["config linked"] {
		t.Errorf("one value, three fingerprints: %q %q %q", flat["config linked"], flat["secrets db-password"], flat["env APP_LDAP_BINDPW"])
	}

	// The redacted view, as dev shows it: values through the rules, secrets and what links to them hidden.
	body, got = loaded(t, "CONFIG_DIR="+conf, "SECRETS_DIR="+secrets, "CONFIG_VIEW=redacted", "APP_FEATURE=on")
	flat = flatten(got)
	if got.View != "redacted" || got.Fingerprints != "" || flat["config greeting"] != "hello" || flat["env APP_FEATURE"] != "on" ||
		flat["config linked"] != config.Redacted || flat["secrets db-password"] != config.Redacted || strings.Contains(body, "[fingerprint ") {
		t.Errorf("redacted view: %s", body)
	}
}

// TestTwoPodsWithTheSameConfigShowTheSameFingerprints: two processes (two loads) of the same
// configuration answer the same /config, keyed or not; another key changes every fingerprint.
func TestTwoPodsWithTheSameConfigShowTheSameFingerprints(t *testing.T) {
	conf, secrets := t.TempDir(), t.TempDir()
	writeFiles(t, conf, map[string]string{"app.yaml": "db:\n  password: S3cr3t\n", "greeting": "hello"})
	writeFiles(t, secrets, map[string]string{"db-password": "S3cr3t"})
	env := []string{"CONFIG_DIR=" + conf, "SECRETS_DIR=" + secrets, "APP_RELEASE=api", "APP_TOKEN=hvs.CAESIJ3x7Kq9vUu0eXq3a9bY2kZ1", "CONFIG_PUBLIC=greeting"}
	unkeyed1, _ := loaded(t, env...)
	unkeyed2, doc := loaded(t, env...)
	if unkeyed1 != unkeyed2 || !strings.HasPrefix(doc.Env["APP_TOKEN"], "[fingerprint argon2id:") {
		t.Errorf("two pods, unkeyed:\n%s\n%s", unkeyed1, unkeyed2)
	}
	writeFiles(t, secrets, map[string]string{config.FingerprintKeyName: testKey})
	keyed1, _ := loaded(t, env...)
	keyed2, doc1 := loaded(t, env...)
	if keyed1 != keyed2 || !strings.HasPrefix(doc1.Env["APP_TOKEN"], "[fingerprint hmac:") {
		t.Errorf("two pods, keyed:\n%s\n%s", keyed1, keyed2)
	}
	writeFiles(t, secrets, map[string]string{config.FingerprintKeyName: testKey + "-rotated"})
	_, doc2 := loaded(t, env...)
	if doc1.Config["app.yaml"] == doc2.Config["app.yaml"] || doc1.Config["greeting"] != doc2.Config["greeting"] {
		t.Errorf("another key: %q and %q", doc1.Config["app.yaml"], doc2.Config["app.yaml"])
	}
}

// issueExamples are the eight credential forms of the issue that the redaction rules showed
// in clear, as the files that hold them.
var issueExamples = []struct{ name, file, content string }{
	{"nslcd.conf bindpw", "nslcd.conf", "uri ldap://ldap.internal/\nbase dc=example,dc=com\nbinddn cn=app,dc=example,dc=com\nbindpw S3cr3t\n"},
	{"a redis ACL line", "users.acl", "user default off\nuser app on >S3cr3t ~* +@all\n"},
	{"SQL IDENTIFIED BY", "init.sql", "CREATE USER app;\nALTER USER 'app'@'%' IDENTIFIED BY 'S3cr3t';\n"},
	{"sqlcmd -P", "migrate.sh", "#!/bin/sh\nsqlcmd -S db -U sa -P 'S3cr3t' -i schema.sql\n"},
	{"php-fpm env[]", "www.conf", "[www]\nenv[DB_HOST] = db\nenv[DB_PASSWORD] = S3cr3t\n"},
	{"JSON with an escaped key", "app.json", `{"user": "app", "pass\u0077ord": "S3cr3t"}`},
	{"an ECS task definition", "task.json", `[{"value": "S3cr3t", "name": "DB_PASSWORD"}, {"name": "DB_HOST", "value": "db"}]`},
	{"HCL variable default", "vars.tf", "variable \"db_password\" {\n  default = \"S3cr3t\"\n}\n"},
}

// TestTheIssuesExamplesAreNeverShown: each of the issue's eight forms, as a file of
// CONFIG_DIR, as an APP_ variable, as a secret and through a link into SECRETS_DIR: the
// fingerprints view (staging's and prod's) never shows the password, and the same password shows
// one fingerprint wherever it is a whole value.
func TestTheIssuesExamplesAreNeverShown(t *testing.T) {
	for _, ex := range issueExamples {
		t.Run(ex.name, func(t *testing.T) {
			for _, keyed := range []bool{true, false} {
				conf, secrets := t.TempDir(), t.TempDir()
				writeFiles(t, conf, map[string]string{ex.file: ex.content, "greeting": "hello"})
				writeFiles(t, secrets, map[string]string{"copy-" + ex.file: ex.content, "db-password": "S3cr3t"})
				if keyed {
					writeFiles(t, secrets, map[string]string{config.FingerprintKeyName: testKey})
				}
				if err := os.Symlink(filepath.Join(secrets, "copy-"+ex.file), filepath.Join(conf, "linked-"+ex.file)); err != nil {
					t.Fatal(err)
				}
				for _, view := range []string{"", "CONFIG_VIEW=fingerprints"} { // the default, and the chart's staging and prod
					body, got := loaded(t, view, "APP_ENV=prod", "CONFIG_DIR="+conf, "SECRETS_DIR="+secrets,
						"CONFIG_PUBLIC=greeting,linked-"+ex.file, "APP_SETTINGS="+strings.TrimRight(ex.content, "\n"), "APP_DB_PASSWORD=S3cr3t")
					if strings.Contains(body, "S3cr3t") {
						t.Fatalf("keyed %v: the password is shown:\n%s", keyed, body)
					}
					if got.Config["greeting"] != "hello" {
						t.Errorf("the public value is not shown: %q", got.Config["greeting"])
					}
					if got.Config[ex.file] != got.Config["linked-"+ex.file] || got.Config[ex.file] != got.Env["APP_SETTINGS"] ||
						got.Env["APP_DB_PASSWORD"] != got.Secrets["db-password"] || !fingerprintRE.MatchString(got.Config[ex.file]) {
						t.Errorf("keyed %v: one value, several fingerprints: %s", keyed, body)
					}
				}
			}
		})
	}
}

// credentialForms renders key = value in a format of configuration, or in prose.
var credentialForms = []func(key, value string) string{
	func(k, v string) string { return strings.ToUpper(k) + "=" + v + "\n" },                                // env
	func(k, v string) string { return "export " + strings.ToUpper(k) + "='" + v + "'\n" },                  // shell
	func(k, v string) string { return "app:\n  " + k + ": " + v + "\n  other: x\n" },                       // YAML
	func(k, v string) string { return "app:\n  " + k + ": |\n    " + v + "\n" },                            // YAML block
	func(k, v string) string { b, _ := json.Marshal(map[string]string{k: v, "x": "y"}); return string(b) }, // JSON
	func(k, v string) string { return "[section]\n" + k + " = " + v + "\n" },                               // INI
	func(k, v string) string { return "variable \"" + k + "\" {\n  default = \"" + v + "\"\n}\n" },         // HCL
	func(k, v string) string { return "<config><" + k + ">" + v + "</" + k + "></config>" },                // XML
	func(k, v string) string { return "<add key=\"" + k + "\" value=\"" + v + "\"/>" },                     // XML attributes
	func(k, v string) string { return "app." + k + "=" + v + "\n" },                                        // properties
	func(k, v string) string { return "Remember: the " + k + " is " + v + " until Friday." },               // free text
	func(k, v string) string { return v },                                                                  // the bare value
}

// encodings turn text into the bytes of a file.
var encodings = map[string]func(string) ([]byte, bool){
	"UTF-8": func(s string) ([]byte, bool) { return []byte(s), true },
	"Latin-1": func(s string) ([]byte, bool) {
		b, err := charmap.ISO8859_1.NewEncoder().Bytes([]byte(s))
		return b, err == nil
	},
	"Shift-JIS": func(s string) ([]byte, bool) {
		b, err := japanese.ShiftJIS.NewEncoder().Bytes([]byte(s))
		return b, err == nil
	},
}

// randomWord is a word of n runes from alphabet.
func randomWord(r *rand.Rand, alphabet []rune, n int) string {
	w := make([]rune, n)
	for i := range w {
		w[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(w)
}

// TestPropertyNoValueOfANonPublicKeyIsShown: over random keys, values, formats and encodings, a
// value placed under a key that is not public (an APP_ variable, a file of CONFIG_DIR, a file
// of SECRETS_DIR, a link from CONFIG_DIR into SECRETS_DIR under a public name) appears nowhere in
// the fingerprints view: not in the body, not in any decoded string, not in any base64; not
// even when a public variable holds the same value, or a public file quotes a secret.
func TestPropertyNoValueOfANonPublicKeyIsShown(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 2026))
	ascii := []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#%+-./:@_~")
	latin := append(slices.Clone(ascii), []rune("éèàüößçñÆØ¿")...)
	japaneseRunes := append(slices.Clone(ascii), []rune("パスワード秘密鍵暗号アイウエオ")...)
	keyWords := []string{"password", "secret", "db_pass", "bindpw", "community", "psk", "routing_key", "apiToken", "pin",
		"value", "data", "x", "settings", "名前"}
	encNames := []string{"UTF-8", "Latin-1", "Shift-JIS"}
	runs := 150
	if testing.Short() {
		runs = 30
	}
	for run := range runs {
		enc := encNames[r.IntN(len(encNames))]
		alphabet := map[string][]rune{"UTF-8": japaneseRunes, "Latin-1": latin, "Shift-JIS": japaneseRunes}[enc]
		conf, secrets := t.TempDir(), t.TempDir()
		var environ []string
		var values []string
		public := []string{"greeting", "APP_PUBLIC_ONE"}
		place := func() (string, []byte) {
			value := randomWord(r, alphabet, 8+r.IntN(24))
			key := keyWords[r.IntN(len(keyWords))]
			if enc != "UTF-8" && !strings.ContainsFunc(key, func(c rune) bool { return c > 0x7f }) {
				key += "_" + randomWord(r, ascii[:26], 3)
			}
			text := credentialForms[r.IntN(len(credentialForms))](key, value)
			b, ok := encodings[enc](text)
			if !ok { // a rune the encoding lacks (the key 名前 in Latin-1)
				b, _ = encodings[enc](credentialForms[0]("pw", value))
			}
			values = append(values, value)
			return value, b
		}
		for i := range 1 + r.IntN(3) {
			_, b := place()
			writeFiles(t, conf, map[string]string{fmt.Sprintf("f%d-%s.conf", i, randomWord(r, ascii[:26], 4)): string(b)})
		}
		for i := range 1 + r.IntN(3) {
			_, b := place()
			environ = append(environ, fmt.Sprintf("APP_V%d_%s=%s", i, strings.ToUpper(randomWord(r, ascii[:26], 4)), b))
		}
		_, b := place()
		writeFiles(t, secrets, map[string]string{"secret-file": string(b)})
		if r.IntN(3) == 0 { // a secret file that holds a value whole, and a public file that quotes it
			v := randomWord(r, alphabet, 8+r.IntN(24))
			secret, _ := encodings[enc](v)
			note, _ := encodings[enc]("rotate " + v + " on Friday")
			writeFiles(t, secrets, map[string]string{"bare-secret": string(secret)})
			writeFiles(t, conf, map[string]string{"notes.txt": string(note)})
			values, public = append(values, v), append(public, "notes.txt")
		}
		if r.IntN(3) == 0 { // a public variable that holds what a hidden one holds
			_, hidden, _ := strings.Cut(environ[r.IntN(len(environ))], "=")
			environ = append(environ, "APP_PUBLIC_TWO="+hidden)
			public = append(public, "APP_PUBLIC_TWO")
		}
		if r.IntN(2) == 0 {
			public = append(public, "via-link") // a public name does not make a secret public
			if err := os.Symlink(filepath.Join(secrets, "secret-file"), filepath.Join(conf, "via-link")); err != nil {
				t.Fatal(err)
			}
		}
		if run%10 != 0 { // mostly keyed (fast); every tenth run unkeyed (argon2id)
			writeFiles(t, secrets, map[string]string{config.FingerprintKeyName: testKey})
		}
		writeFiles(t, conf, map[string]string{"greeting": "hello"})
		environ = append(environ, "CONFIG_DIR="+conf, "SECRETS_DIR="+secrets, "APP_PUBLIC_ONE=visible", "CONFIG_PUBLIC="+strings.Join(public, ","))

		body, got := loaded(t, environ...)
		if got.Config["greeting"] != "hello" || got.Env["APP_PUBLIC_ONE"] != "visible" {
			t.Fatalf("run %d: public values not shown: %s", run, body)
		}
		var strs []string
		for _, m := range []map[string]string{got.Config, got.ConfigBase64, got.Env, got.Secrets} {
			for _, v := range m {
				strs = append(strs, v)
				if raw, err := base64.StdEncoding.DecodeString(v); err == nil {
					strs = append(strs, string(raw))
				}
			}
		}
		for _, v := range values {
			forms := []string{v}
			if b, ok := encodings[enc](v); ok {
				forms = append(forms, string(b))
			}
			jv, _ := json.Marshal(v)
			forms = append(forms, string(jv[1:len(jv)-1]))
			for _, f := range forms {
				if strings.Contains(body, f) || slices.ContainsFunc(strs, func(s string) bool { return strings.Contains(s, f) }) {
					t.Fatalf("run %d (%s): the value %q is shown:\n%s", run, enc, v, body)
				}
			}
		}
	}
}

// TestConfigIsBoundedAndStaysJSON: a 2 MB file (public, or in the redacted view), or more names
// than fit, give a /config of at most its bound, valid JSON that starts with the environment,
// that says what was cut.
func TestConfigIsBoundedAndStaysJSON(t *testing.T) {
	conf := t.TempDir()
	big := strings.Repeat("line of a large ConfigMap file\n", 2_000_000/32)
	writeFiles(t, conf, map[string]string{"big.txt": big, "small.txt": "kept", "big.bin": "\x00" + big})
	check := func(t *testing.T, body string, got configDoc, max int64) {
		t.Helper()
		if int64(len(body)) > max {
			t.Errorf("/config is %d bytes, over its bound %d", len(body), max)
		}
		if !strings.HasPrefix(body, `{"environment":"staging",`) || !json.Valid([]byte(body)) {
			t.Errorf("/config does not start with the environment, or is no JSON: %.100s", body)
		}
		if got.Truncated == nil || got.Truncated.MaxBytes != max {
			t.Errorf("no truncated field: %.300s", body)
		}
	}
	for _, env := range [][]string{{"CONFIG_VIEW=redacted"}, {"CONFIG_PUBLIC=big.txt,big.bin,small.txt"}} {
		t.Run(env[0], func(t *testing.T) {
			body, got := loaded(t, append(env, "APP_ENV=staging", "CONFIG_DIR="+conf)...)
			check(t, body, got, config.DefaultViewMaxBytes)
			if got.Config["small.txt"] != "kept" || !strings.HasPrefix(got.Config["big.txt"], "[truncated: ") ||
				!strings.HasSuffix(got.Config["big.txt"], " bytes, over the 1048576 bytes of /config]") {
				t.Errorf("config: small %q, big %.80q", got.Config["small.txt"], got.Config["big.txt"])
			}
			if got.Truncated.Values < 1 || got.Truncated.Omitted != 0 {
				t.Errorf("truncated = %+v", *got.Truncated)
			}
		})
	}
	t.Run("more names than fit", func(t *testing.T) {
		cfg := testConfig()
		cfg.Environment, cfg.ViewMaxBytes = "staging", config.MinViewMaxBytes
		cfg.Files = map[string]string{}
		for i := range 2000 {
			cfg.Files[fmt.Sprintf("file-with-a-rather-long-name-%04d.yaml", i)] = "v"
		}
		body, got := configOf(t, cfg)
		check(t, body, got, config.MinViewMaxBytes)
		if got.Truncated.Omitted == 0 || len(got.Config)+len(got.Env)+len(got.Secrets)+got.Truncated.Omitted != 2002 {
			t.Errorf("%d shown, truncated %+v", len(got.Config), *got.Truncated)
		}
	})
	t.Run("any mix of sizes", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for range 200 {
			cfg := testConfig()
			cfg.ViewMaxBytes = config.MinViewMaxBytes + r.Int64N(32<<10)
			cfg.Files, cfg.Env = map[string]string{}, map[string]string{}
			for i := range r.IntN(200) {
				cfg.Files[fmt.Sprintf("f%d", i)] = strings.Repeat("\"é<", r.IntN(2000))
				cfg.Env[fmt.Sprintf("APP_%d", i)] = strings.Repeat("x", r.IntN(300))
			}
			s, err := New(cfg, slog.New(slog.DiscardHandler), BuildInfo{})
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(s.configJSON)) > cfg.ViewMaxBytes || !json.Valid(s.configJSON) {
				t.Fatalf("%d bytes (bound %d), valid %v", len(s.configJSON), cfg.ViewMaxBytes, json.Valid(s.configJSON))
			}
		}
	})
	t.Run("HEAD has the bounded length", func(t *testing.T) {
		cfg, err := config.Load([]string{"CONFIG_VIEW=redacted", "CONFIG_DIR=" + conf})
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(cfg, slog.New(slog.DiscardHandler), BuildInfo{})
		if err != nil {
			t.Fatal(err)
		}
		rec := do(t, s.Router(), http.MethodHead, PathConfig)
		if rec.Header().Get("Content-Length") != fmt.Sprint(len(s.configJSON)) || len(s.configJSON) > config.DefaultViewMaxBytes {
			t.Errorf("Content-Length %s, body %d", rec.Header().Get("Content-Length"), len(s.configJSON))
		}
	})
}

func flatten(d configDoc) map[string]string {
	out := map[string]string{}
	for section, m := range map[string]map[string]string{"config": d.Config, "configBase64": d.ConfigBase64, "env": d.Env, "secrets": d.Secrets} {
		for k, v := range m {
			out[section+" "+k] = v
		}
	}
	return out
}

// TestAShownValueGivesAwayNoHiddenOne: a public value equal to a hidden one is hidden too; a
// secret's value quoted in a value shown is replaced, in both views; a binary file that holds
// one is not shown.
func TestAShownValueGivesAwayNoHiddenOne(t *testing.T) {
	conf, secrets := t.TempDir(), t.TempDir()
	writeFiles(t, conf, map[string]string{"notes.txt": "rotate S3cr3t-pw on Friday", "blob.bin": "\x00\x01S3cr3t-pw",
		"short.txt": "code 1234 and on"})
	writeFiles(t, secrets, map[string]string{"db-password": "S3cr3t-pw", "pin": "1234", config.FingerprintKeyName: testKey})
	env := []string{"CONFIG_DIR=" + conf, "SECRETS_DIR=" + secrets, "APP_TOKEN=tok-123456", "APP_COPY=tok-123456", "APP_MODE=on",
		"APP_EMPTY=", "APP_ALSO_EMPTY=", "CONFIG_PUBLIC=notes.txt,blob.bin,short.txt,APP_COPY,APP_MODE,APP_EMPTY"}
	for _, view := range []string{"fingerprints", "redacted"} {
		body, got := loaded(t, append(env, "CONFIG_VIEW="+view)...)
		if strings.Contains(body, "S3cr3t-pw") {
			t.Errorf("%s: a secret's value is shown:\n%s", view, body)
		}
		if got.Config["notes.txt"] != "rotate [REDACTED] on Friday" || got.ConfigBase64["blob.bin"] != config.Redacted {
			t.Errorf("%s: notes %q, blob %q", view, got.Config["notes.txt"], got.ConfigBase64["blob.bin"])
		}
		if got.Config["short.txt"] != "code 1234 and on" {
			t.Errorf("%s: a secret of 4 bytes is not looked for: %q", view, got.Config["short.txt"])
		}
	}
	body, got := loaded(t, env...)
	if got.Env["APP_COPY"] != got.Env["APP_TOKEN"] || !fingerprintRE.MatchString(got.Env["APP_COPY"]) || strings.Contains(body, "tok-123456") {
		t.Errorf("a public value equal to a hidden one: %q (hidden: %q)", got.Env["APP_COPY"], got.Env["APP_TOKEN"])
	}
	if got.Env["APP_MODE"] != "on" || got.Env["APP_EMPTY"] != "" {
		t.Errorf("public values with no hidden twin: mode %q, empty %q", got.Env["APP_MODE"], got.Env["APP_EMPTY"])
	}
}

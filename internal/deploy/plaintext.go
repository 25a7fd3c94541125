package deploy

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/environments"
)

// AllowPlaintextVar names the key paths of values files that look like credentials and are
// not: ALLOW_PLAINTEXT_VALUES=config.token-issuer,podAnnotations (a path lets that key and
// everything under it through).
const AllowPlaintextVar = "ALLOW_PLAINTEXT_VALUES"

// checkPlaintext refuses values files that hold a credential. What a values file holds is
// copied into Terraform's plan (printed), its state, the Helm release record and the pod spec,
// where whoever reads any of them reads it; a credential belongs in SECRET_<SERVICE>_<KEY>,
// which deploy writes into a Secret and nowhere else. It reads the files the run's services
// apply over the chart's defaults: the environment's .helm/values-<env>.yaml, each service's
// values files and VALUES_FILES. The chart's own values.yaml holds no value under a credential
// key (a test checks it), so it is not read. A file that cannot be read or parsed is left to
// the schema check, which names it.
func (s Settings) checkPlaintext() error {
	readers := map[string][]string{} // file -> the run's services that apply it
	var files []string
	envFile := environments.ValuesFile(filepath.Join(s.RepoRoot, environments.ChartDir), s.Env)
	for _, svc := range s.Run {
		for _, f := range append([]string{envFile}, s.valuesFiles(svc)...) {
			if _, seen := readers[f]; !seen {
				files = append(files, f)
			}
			readers[f] = append(readers[f], svc.Name)
		}
	}
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			continue
		}
		for _, path := range credentialPaths(doc) {
			if !allowed(s.AllowPlaintext, path) {
				errs = append(errs, s.plaintextError(f, path, readers[f]))
			}
		}
	}
	return errors.Join(errs...)
}

// plaintextError names the file, the key path and both fixes; never the value.
func (s Settings) plaintextError(file string, path []string, readers []string) error {
	where := "VALUES_FILES " + file
	if rel, err := filepath.Rel(s.RepoRoot, file); err == nil && !strings.HasPrefix(rel, "..") && !slices.Contains(s.ValuesFiles, file) {
		where = rel
	}
	var vars []string
	for _, svc := range readers {
		vars = append(vars, secretVar(svc, secretKeyOfPath(path)))
	}
	p := strings.Join(path, ".")
	return fmt.Errorf("%s: %s looks like a credential, and a values file is copied into Terraform's plan and state, the Helm release and the pod spec: give it as %s (deploy writes it into a Secret), or, if it is not a credential, %s=%s",
		where, p, strings.Join(vars, " or "), AllowPlaintextVar, p)
}

// secretKeyOfPath is the Secret key a value's path suggests: db.password is db-password. The
// chart's containers of named entries (config files, extraEnv variables) are left out.
func secretKeyOfPath(path []string) string {
	if len(path) > 1 && (path[0] == "config" || path[0] == "extraEnv") {
		path = path[1:]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(strings.Join(path, "-")) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if s := b.String(); s != "" && !strings.HasSuffix(s, "-") {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// allowed reports whether ALLOW_PLAINTEXT_VALUES lets path through: it names the path, or a
// key above it.
func allowed(allow []string, path []string) bool {
	p := strings.Join(path, ".")
	for _, a := range allow {
		if p == a || strings.HasPrefix(p, a+".") {
			return true
		}
	}
	return false
}

// chartReferences are the chart's keys that name a Secret, or a secret store's entries, and
// never hold a value (.helm/values.schema.json): secret.existingSecret, ingress.tls.secretName,
// imagePullSecrets[].name, and externalSecret, whose secretKey and remoteRef.key are key names.
var chartReferences = []string{"secret.existingSecret", "ingress.tls.secretName", "imagePullSecrets", "externalSecret"}

// credentialPaths are the key paths of a values document whose value looks like a credential:
// a non-empty string or a number under a key that reads as one, or anywhere below such a key
// (auth: {user: ..., pass: ...}). In a list, an entry {name: X, value: V} is read as the key X
// (extraEnv's APP_DB_PASSWORD); other entries take the list's path.
func credentialPaths(doc map[string]any) [][]string {
	var found [][]string
	walkValues(doc, nil, false, &found)
	return found
}

func walkValues(v any, path []string, credential bool, found *[][]string) {
	if slices.Contains(chartReferences, strings.Join(path, ".")) {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			walkChild(v[k], path, k, credential, found)
		}
	case []any:
		for _, e := range v {
			m, _ := e.(map[string]any)
			name, _ := m["name"].(string)
			if value, ok := m["value"]; ok && name != "" {
				walkChild(value, path, name, credential, found)
				rest := maps.Clone(m)
				delete(rest, "name")
				delete(rest, "value")
				e = rest
			}
			walkValues(e, path, credential, found)
		}
	case string:
		if credential && v != "" {
			*found = append(*found, path)
		}
	case float64, int, int64: // a PIN or a numeric password reads as a number
		if credential {
			*found = append(*found, path)
		}
	}
}

// walkChild walks the value of key below path. A key that names or describes a credential
// (secretName, passwordFile, tokenUrl) clears what is above it; one that reads as a credential
// marks everything below it.
func walkChild(v any, path []string, key string, credential bool, found *[][]string) {
	child := append(slices.Clone(path), key)
	if referenceKey(key) {
		walkValues(v, child, false, found)
		return
	}
	walkValues(v, child, credential || credentialKey(key), found)
}

// credentialWords are the words of a key name that make it a credential's.
var credentialWords = set("password", "passwords", "passwd", "passphrase", "pwd", "pw", "bindpw", "psk",
	"secret", "secrets", "token", "tokens", "credential", "credentials", "creds", "authorization", "bearer",
	"jwt", "dsn", "apikey", "privatekey", "secretkey", "accesskey", "clientsecret", "connectionstring")

// credentialParts make a word a credential's wherever they occur in it (dbpassword, myapikey).
var credentialParts = []string{"password", "passwd", "passphrase", "apikey", "privatekey", "secretkey", "accesskey", "clientsecret"}

// keyKinds are the words before "key" that make it a credential: api key, private key, ...
// (a bare key, as in tolerations' or remoteRef's, is a name).
var keyKinds = set("api", "private", "secret", "access", "signing", "encryption", "master", "session", "ssh",
	"account", "hmac", "client", "shared", "license", "storage", "app", "tls", "ssl")

// describing words end or follow a credential word in keys that name, locate or describe a
// credential rather than hold it: secretName, tokenUrl, passwordFile, authType, tokenTtl.
var describing = set("name", "names", "ref", "refs", "reference", "file", "files", "path", "paths", "dir",
	"url", "urls", "uri", "endpoint", "host", "hostname", "port", "namespace", "enabled", "disabled", "enable",
	"disable", "required", "mode", "type", "kind", "provider", "issuer", "audience", "realm", "scheme", "method",
	"algorithm", "header", "field", "format", "encoding", "prefix", "suffix", "length", "size", "bits", "rounds",
	"ttl", "timeout", "expiry", "expiration", "lifetime", "interval", "period", "rotation", "policy", "strategy",
	"version", "count", "min", "max", "limit", "retries", "store", "mount", "volume")

func set(words ...string) map[string]bool {
	m := map[string]bool{}
	for _, w := range words {
		m[w] = true
	}
	return m
}

// referenceKey reports whether a key names or describes a credential rather than holding one:
// its last word says so (secretName, secretRef, passwordFile), or it is an existing one
// (existingSecret).
func referenceKey(key string) bool {
	w := keyWords(key)
	n := len(w)
	return n > 0 && (describing[w[n-1]] || n > 1 && w[n-2] == "existing")
}

// credentialKey reports whether a key reads as a credential: one of its words is a credential
// word that no describing word follows.
func credentialKey(key string) bool {
	w := keyWords(key)
	// An annotation or label name (prefix/name) that says "secret" names a Secret or a path in a
	// secret store for its controller to read (nginx's auth-secret, Vault's agent-inject-secret-x).
	qualified := strings.Contains(key, "/")
	for i, word := range w {
		if i+1 < len(w) && describing[w[i+1]] || qualified && (word == "secret" || word == "secrets") {
			continue
		}
		if credentialWord(w, i) {
			return true
		}
	}
	return false
}

func credentialWord(w []string, i int) bool {
	word := w[i]
	switch {
	case credentialWords[word]:
		return true
	case word == "auth" || word == "pass":
		// Last, it is the credential (basicAuth, db.pass); followed by more, it is about one
		// (auth-url, auth-signin) or a verb (pass-certificate-to-upstream).
		return i == len(w)-1
	case (word == "key" || word == "keys") && i > 0:
		return keyKinds[w[i-1]]
	case word == "string" && i > 0:
		return w[i-1] == "connection"
	}
	for _, p := range credentialParts {
		if strings.Contains(word, p) {
			return true
		}
	}
	return false
}

// keyWords splits a key name into lower-case words at anything but letters and digits and at
// camelCase humps: dbPassword, DB_PASSWORD and db-password are db, password; APIKey is api, key.
func keyWords(key string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(key)
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush()
			continue
		}
		if unicode.IsUpper(r) && i > 0 {
			prev := rs[i-1]
			endsAcronym := unicode.IsUpper(prev) && i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || endsAcronym {
				flush()
			}
		}
		cur = append(cur, r)
	}
	flush()
	return words
}

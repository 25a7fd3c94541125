package config

import (
	"bytes"
	"regexp"
	"strings"
)

// Redaction fails safe: a value is hidden when its name looks like a credential, when it looks
// like one itself (a PEM block, a JWT, an Authorization value, a well-known token format), or,
// inside a URL or a key=value text, only the part that is the credential:
//
//   - a URL's userinfo password, and a bare userinfo that looks like a token
//     (postgres://app:[REDACTED]@db/app);
//   - every query or fragment parameter, and every key=value or key: value pair, whose key
//     looks like a credential (sig, signature, token, key, secret, password, X-Amz-Signature,
//     ...), so that the rest of the value stays readable;
//   - a whole URL that carries its secret in its path: a name containing HOOK, a path
//     containing "hook", or a known webhook host (Slack, Teams, Discord, Google Chat, ...).
//
// Names are matched case-insensitively, as words split on anything but letters and digits:
// APP_DB_PASS and APP_TLS_KEY are credentials, APP_KEYBOARD_LAYOUT and APP_AUTHOR are not.
// Operators add names with REDACT_NAMES (see Load).

// secretSubstrings make a name a credential wherever they occur in it, compact spellings
// included (DBPASSWORD, MYAPIKEY).
var secretSubstrings = []string{
	"PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "API_KEY", "PRIVATE", "CREDENTIAL",
	"HOOK", "PRIVKEY", "ACCESSKEY", "SIGNINGKEY", "ENCRYPTIONKEY", "MASTERKEY", "SESSIONKEY", "SSHKEY",
	"TLSKEY", "SSLKEY", "AUTHKEY", "HMACKEY", "LICENSEKEY", "PASSKEY", "PASSCODE",
}

// secretWords make a name a credential when one is a whole word of it (APP_DB_PASS,
// APP_BASIC_AUTH), unless the next word says the value only describes the credential
// (APP_AUTH_URL, APP_JWT_ISSUER, APP_SALT_ROUNDS).
var secretWords = set("PASS", "PWD", "PW", "PSW", "PSWD", "AUTH", "AUTHORIZATION", "BEARER", "JWT", "JWK",
	"HMAC", "SALT", "PEPPER", "CREDS", "CRED", "DSN", "OTP", "TOTP", "HOTP", "SIG", "SIGNATURE", "PAT", "PIN",
	"KEY", "KEYS")

// describing words follow a secret word in names of settings about a credential, not of one.
var describing = set("URL", "URI", "URLS", "ENDPOINT", "HOST", "HOSTNAME", "PORT", "ENABLED", "DISABLED",
	"ENABLE", "DISABLE", "REQUIRED", "MODE", "TYPE", "KIND", "PROVIDER", "ISSUER", "AUDIENCE", "REALM",
	"SCHEME", "METHOD", "ALGORITHM", "ALG", "DOMAIN", "TIMEOUT", "TTL", "EXPIRY", "EXPIRES", "EXPIRATION",
	"LIFETIME", "LENGTH", "LEN", "SIZE", "BITS", "DIGITS", "ROUNDS", "ITERATIONS", "COST", "PERIOD",
	"INTERVAL", "WINDOW", "COUNT", "MIN", "MAX", "LIMIT", "RETRIES", "VERSION", "FORMAT", "ENCODING",
	"PREFIX", "SUFFIX", "NAME", "FIELD", "COLUMN", "PARAM", "PATH", "FILE", "DIR", "LOCATION", "ROTATION",
	"STRATEGY", "POLICY", "LEEWAY", "SKEW", "SEPARATOR", "DELIMITER", "PATTERN")

// plainKeys qualify KEY in names of ordinary keys (APP_SORT_KEY, APP_PUBLIC_KEY).
var plainKeys = set("PUBLIC", "PUB", "SORT", "PARTITION", "PRIMARY", "FOREIGN", "CACHE", "ROUTING",
	"IDEMPOTENCY", "RANGE", "HASH", "SHARD", "GROUP", "LOOKUP", "DEDUP", "ORDERING", "CURSOR", "OBJECT",
	"INDEX", "LABEL", "TRANSLATION", "MESSAGE", "HOT", "SHORTCUT")

// notPass are words that end in PASS without being one (APP_BYPASS_CACHE).
var notPass = set("BYPASS", "COMPASS", "SURPASS", "OVERPASS", "UNDERPASS", "TRESPASS", "ENCOMPASS")

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

var secretSubstringBytes = func() (out [][]byte) {
	for _, s := range secretSubstrings {
		out = append(out, []byte(s))
	}
	return out
}()

// LooksSecret reports whether a name (an environment variable, a file or a parameter) suggests
// a credential under the built-in rules. Redactor.LooksSecret adds the operator's names.
func LooksSecret(name string) bool { return Redactor{}.LooksSecret(name) }

// Redactor applies the redaction rules, with the names an operator added (REDACT_NAMES).
type Redactor struct {
	extra [][]byte // upper-cased substrings
}

// NewRedactor is the built-in rules plus extra names, each matched case-insensitively as a
// substring of a name.
func NewRedactor(extra []string) Redactor {
	r := Redactor{}
	for _, e := range extra {
		if e = strings.ToUpper(strings.TrimSpace(e)); e != "" {
			r.extra = append(r.extra, []byte(e))
		}
	}
	return r
}

// LooksSecret reports whether name suggests a credential. It does not allocate for names of
// up to 64 bytes: it runs for every key of every mounted file.
func (r Redactor) LooksSecret(name string) bool {
	var buf [64]byte
	upper := buf[:0]
	if len(name) > len(buf) {
		upper = make([]byte, 0, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		upper = append(upper, c)
	}
	for _, s := range secretSubstringBytes {
		if bytes.Contains(upper, s) {
			return true
		}
	}
	for _, s := range r.extra {
		if bytes.Contains(upper, s) {
			return true
		}
	}
	var prev []byte
	word, rest := nextWord(upper)
	for word != nil {
		next, after := nextWord(rest)
		secret := secretWords[string(word)] || (bytes.HasSuffix(word, []byte("PASS")) && !notPass[string(word)]) ||
			(bytes.HasSuffix(word, []byte("PWD")) && len(word) > 3)
		if secret && !describing[string(next)] && !((string(word) == "KEY" || string(word) == "KEYS") && plainKeys[string(prev)]) {
			return true
		}
		prev, word, rest = word, next, after
	}
	return false
}

// nextWord splits the first word (a run of A-Z and 0-9) off an upper-cased name.
func nextWord(s []byte) (word, rest []byte) {
	isWord := func(c byte) bool { return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	i := 0
	for i < len(s) && !isWord(s[i]) {
		i++
	}
	j := i
	for j < len(s) && isWord(s[j]) {
		j++
	}
	if i == j {
		return nil, nil
	}
	return s[i:j], s[j:]
}

// Value is what a rendering of the setting name=value shows: the value itself, the value with
// its credentials replaced by Redacted, or Redacted whole.
func (r Redactor) Value(name, value string) string {
	if r.LooksSecret(name) || looksLikeCredential(value) {
		return Redacted
	}
	out, whole := redactURLs(value)
	if whole {
		return Redacted
	}
	out = redactPairs(out, r)
	return redactBareUserinfo(out)
}

// Regular expressions only where they are fast on large values: a literal prefix (JWT) or an
// anchor (an Authorization value). Go's regexp has no DFA, so the other rules scan by hand: a
// mounted file of 1 MiB must not take a second to redact.
var (
	jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	// An Authorization header value: a scheme and its credentials.
	authSchemeRE = regexp.MustCompile(`(?i)^\s*(bearer|basic|digest|token|apikey)\s+\S{8,}`)
)

// looksLikeCredential reports values that are credentials whatever their name.
func looksLikeCredential(v string) bool {
	return strings.Contains(v, "-----BEGIN ") || (strings.Contains(v, "eyJ") && jwtRE.MatchString(v)) ||
		authSchemeRE.MatchString(v) || hasKnownToken(v)
}

// knownTokens are token formats that announce themselves: GitHub, GitLab, Slack, Stripe,
// OpenAI and Anthropic keys, AWS access key ids, Google API keys. Each is its prefix, at the
// start of a word, followed by at least min characters of its alphabet.
var knownTokens = []struct {
	prefix string
	min    int
	chars  string // besides letters and digits
}{
	{"ghp_", 20, ""}, {"gho_", 20, ""}, {"ghu_", 20, ""}, {"ghs_", 20, ""}, {"ghr_", 20, ""},
	{"github_pat_", 20, "_"}, {"glpat-", 16, "_-"},
	{"xoxa-", 10, "-"}, {"xoxb-", 10, "-"}, {"xoxe-", 10, "-"}, {"xoxp-", 10, "-"}, {"xoxr-", 10, "-"}, {"xoxs-", 10, "-"},
	{"sk_live_", 16, ""}, {"sk_test_", 16, ""}, {"rk_live_", 16, ""}, {"rk_test_", 16, ""},
	{"sk-", 32, "_-"}, {"AKIA", 16, ""}, {"ASIA", 16, ""}, {"AIza", 35, "_-"},
}

func hasKnownToken(v string) bool {
	for _, t := range knownTokens {
		for i := 0; ; {
			j := strings.Index(v[i:], t.prefix)
			if j < 0 {
				break
			}
			at := i + j
			i = at + 1
			if at > 0 && isWordChar(v[at-1]) {
				continue
			}
			n := 0
			for k := at + len(t.prefix); k < len(v) && (isAlnum(v[k]) || strings.IndexByte(t.chars, v[k]) >= 0); k++ {
				n++
			}
			if n >= t.min {
				return true
			}
		}
	}
	return false
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isWordChar(c byte) bool { return isAlnum(c) || c == '_' }

func isSchemeChar(c byte) bool { return isAlnum(c) || c == '+' || c == '.' || c == '-' }

// urlStarts finds where URLs start: a scheme (a letter, then letters, digits, + . -) and "://".
// It returns the start of each scheme and the end of its "://".
func urlStarts(v string) [][2]int {
	var out [][2]int
	for i := 0; ; {
		j := strings.Index(v[i:], "://")
		if j < 0 {
			return out
		}
		sep := i + j
		i = sep + 3
		start := sep
		for start > 0 && isSchemeChar(v[start-1]) {
			start--
		}
		for start < sep && !(v[start] >= 'a' && v[start] <= 'z' || v[start] >= 'A' && v[start] <= 'Z') {
			start++
		}
		if start == sep || (len(out) > 0 && start < out[len(out)-1][1]) {
			continue
		}
		out = append(out, [2]int{start, sep + 3})
	}
}

// webhookHosts carry the secret of a webhook URL in its path (or sign it in its query): the
// whole URL is a credential. Subdomains count too.
var webhookHosts = []string{
	"hooks.slack.com", "hooks.slack-gov.com", "webhook.office.com", "outlook.office.com",
	"outlook.office365.com", "discord.com", "discordapp.com", "chat.googleapis.com", "api.telegram.org",
	"maker.ifttt.com", "hooks.zapier.com", "logic.azure.com", "webhook.site",
}

// redactURLs replaces the userinfo password of every URL in v (and a bare userinfo that looks
// like a token). whole is true when a URL is a webhook, whose secret is its path.
func redactURLs(v string) (out string, whole bool) {
	starts := urlStarts(v)
	if starts == nil {
		return v, false
	}
	var b strings.Builder
	last := 0
	for i, m := range starts {
		end := len(v)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		if ws := strings.IndexAny(v[m[0]:end], " \t\r\n\"'<>"); ws >= 0 {
			end = m[0] + ws
		}
		authStart := m[1]
		authEnd := end
		if k := strings.IndexAny(v[authStart:end], "/?#"); k >= 0 {
			authEnd = authStart + k
		}
		authority := v[authStart:authEnd]
		host := authority
		if at := strings.LastIndexByte(authority, '@'); at >= 0 {
			host = authority[at+1:]
			userinfo := authority[:at]
			b.WriteString(v[last:authStart])
			if user, _, ok := strings.Cut(userinfo, ":"); ok {
				b.WriteString(user + ":" + Redacted)
			} else if looksLikeToken(userinfo) {
				b.WriteString(Redacted)
			} else {
				b.WriteString(userinfo)
			}
			last = authStart + at
		}
		if isWebhook(host, v[authEnd:end]) {
			return "", true
		}
	}
	b.WriteString(v[last:])
	return b.String(), false
}

func isWebhook(host, rest string) bool {
	host = strings.ToLower(host)
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	for _, w := range webhookHosts {
		if host == w || strings.HasSuffix(host, "."+w) {
			return true
		}
	}
	path, _, _ := strings.Cut(rest, "?")
	return strings.Contains(strings.ToLower(path), "hook")
}

// looksLikeToken: a bare userinfo (https://TOKEN@host) that is long, or mixes letters and
// digits beyond a plain user name.
func looksLikeToken(s string) bool {
	if len(s) >= 24 {
		return true
	}
	digits, letters := 0, 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letters++
		}
	}
	return len(s) >= 16 && digits >= 4 && letters >= 4
}

// redactPairs replaces the value of every key=value and key: value pair whose key looks like
// a credential: query and fragment parameters, libpq and ADO.NET connection strings,
// properties, YAML and JSON. A key is a letter then letters, digits, _ . -, at the start or
// after whitespace or one of ; & , ? # { (, optionally in quotes. "=" may have blanks around
// it; ":" needs a blank after it, or a closing quote before it (JSON).
func redactPairs(v string, r Redactor) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(v); {
		j := strings.IndexAny(v[i:], "=:")
		if j < 0 {
			break
		}
		sep := i + j
		i = sep + 1
		keyStart, keyEnd, quoted, ok := pairKey(v, sep)
		if !ok || !r.LooksSecret(v[keyStart:keyEnd]) {
			continue
		}
		valStart := sep + 1
		if v[sep] == ':' {
			blanks := valStart
			for blanks < len(v) && (v[blanks] == ' ' || v[blanks] == '\t') {
				blanks++
			}
			if blanks == valStart && !quoted {
				continue // host:port, scheme://
			}
			valStart = blanks
		} else {
			for valStart < len(v) && (v[valStart] == ' ' || v[valStart] == '\t') {
				valStart++
			}
		}
		valEnd, ok := pairValue(v, valStart)
		if !ok {
			continue
		}
		val := v[valStart:valEnd]
		if q := val[0]; q == '"' || q == '\'' {
			closed := len(val) >= 2 && val[len(val)-1] == q
			inner := val[1:]
			if closed {
				inner = val[1 : len(val)-1]
			}
			if inner == Redacted {
				continue
			}
			b.WriteString(v[last:valStart])
			b.WriteByte(q)
			b.WriteString(Redacted)
			if closed {
				b.WriteByte(q)
			}
		} else {
			if val == Redacted {
				continue
			}
			b.WriteString(v[last:valStart])
			b.WriteString(Redacted)
		}
		last = valEnd
		i = valEnd
	}
	if last == 0 {
		return v
	}
	b.WriteString(v[last:])
	return b.String()
}

// charSet is a set of bytes.
type charSet [256]bool

func chars(s string) (t charSet) {
	for i := 0; i < len(s); i++ {
		t[s[i]] = true
	}
	return t
}

var (
	beforeKey = chars(" \t\r\n;&,?#{(")        // what may come before a key
	valueStop = chars(" \t\r\n\v\f;&,#\"'}])") // what ends an unquoted value
	spaces    = chars(" \t\r\n\v\f")           // what ends a bare user:password@
	keyChar   = chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
)

// pairKey finds the key that ends before the separator at sep.
func pairKey(v string, sep int) (start, end int, quoted, ok bool) {
	end = sep
	for end > 0 && (v[end-1] == ' ' || v[end-1] == '\t') {
		end--
	}
	if end > 0 && (v[end-1] == '"' || v[end-1] == '\'') {
		end--
		quoted = true
	}
	start = end
	for start > 0 && keyChar[v[start-1]] {
		start--
	}
	if start == end || !(v[start] >= 'a' && v[start] <= 'z' || v[start] >= 'A' && v[start] <= 'Z') {
		return 0, 0, false, false
	}
	before := start
	if before > 0 && (v[before-1] == '"' || v[before-1] == '\'') {
		before--
	}
	if before > 0 && !beforeKey[v[before-1]] {
		return 0, 0, false, false
	}
	return start, end, quoted, true
}

// pairValue is the end of the value that starts at start: a quoted string closed on its line,
// or a run of characters up to whitespace or one of ; & , # " ' } ] ). An unclosed quote is
// the quote alone, whose value then is the run after it. (A scan for a closing quote ends at
// the next quote of the line, which is then passed: each byte is scanned about once.)
func pairValue(v string, start int) (int, bool) {
	if start >= len(v) {
		return 0, false
	}
	switch q := v[start]; q {
	case '"', '\'':
		for k := start + 1; k < len(v) && v[k] != '\n'; k++ {
			if q == '"' && v[k] == '\\' {
				k++
				continue
			}
			if v[k] == q {
				return k + 1, true
			}
		}
		start++ // unclosed: the run after the quote
	}
	k := start
	for k < len(v) && !valueStop[v[k]] {
		k++
	}
	return k, k > start
}

// redactBareUserinfo redacts user:password@host without a scheme at the start of a value, as
// in Go's MySQL DSN (user:password@tcp(db:3306)/app).
func redactBareUserinfo(v string) string {
	user := 0
	for user < len(v) && keyChar[v[user]] {
		user++
	}
	if user == 0 || user >= len(v) || v[user] != ':' {
		return v
	}
	pass := user + 1
	end := pass
	for end < len(v) && v[end] != '@' && v[end] != '/' && !spaces[v[end]] {
		end++
	}
	if end == pass || end >= len(v) || v[end] != '@' || v[pass:end] == Redacted {
		return v
	}
	return v[:pass] + Redacted + v[end:]
}

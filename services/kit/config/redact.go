package config

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
)

// Redaction fails safe: a value is hidden when its name looks like a credential, when it looks
// like one itself (a PEM block, a JWT, an Authorization value, a well-known token format), or,
// inside a URL or a text of settings, only the part that is the credential:
//
//   - a URL's userinfo password, everything from "://user:" to the last "@" of the URL (so that
//     a password holding / ? # or @ goes whole), and a bare userinfo that looks like a token
//     (postgres://app:[REDACTED]@db/app), in plain, JSON-escaped (:\/\/) and percent-encoded
//     URLs; the same for user:password@host without a scheme (Go's MySQL DSN);
//   - the value of every setting whose key looks like a credential (sig, token, key, secret,
//     password, X-Amz-Signature, ...), in query strings, connection strings (libpq, ADO.NET with
//     its {...}, "..." and '...' quoting), properties (with \ continuations), .env and shell
//     (export, :=), INI and TOML (with """ strings), YAML (a block or a sequence under the key,
//     a | or > scalar, continuation lines), JSON (arrays and objects under the key too), XML
//     (an element's content and attributes), heredocs, and command lines (--password x,
//     --password=x, -p x, -px, "--token", "x" in an argument list, -u user:password);
//   - an unquoted value runs to the end of its line unless the next setting follows, so that
//     "Authorization: Bearer x" or "password = two words" goes whole; a Bearer, Basic, Token,
//     Digest, ... scheme anywhere takes its parameter with it;
//   - a setting named by a neighbour: the value of {"name": "DB_PASSWORD", "value": ...}, of
//     <add key="Password" value="..."/>, and of <name>db.password</name><value>...</value>;
//   - a whole line of a directive (requirepass x, password x) and netrc's "password x";
//   - a whole URL that carries its secret in its path: a name containing HOOK, a path
//     containing "hook", or a known webhook host (Slack, Teams, Discord, Google Chat, ...).
//
// Names are matched case-insensitively, as words split on anything but letters and digits and
// at camelCase humps: APP_DB_PASS, dbPass and APP_TLS_KEY are credentials, APP_KEYBOARD_LAYOUT
// and APP_AUTHOR are not. Operators add names with REDACT_NAMES (see Load).
//
// The rules are hand-written scanners, each byte looked at a bounded number of times: the
// files of a CONFIG_DIR (64 MiB at most) are redacted at start.

// secretSubstrings make a name a credential wherever they occur in it, compact spellings
// included (DBPASSWORD, MYAPIKEY).
var secretSubstrings = []string{
	"PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "API_KEY", "PRIVATE", "CREDENTIAL",
	"HOOK", "PRIVKEY", "ACCESSKEY", "SIGNINGKEY", "ENCRYPTIONKEY", "MASTERKEY", "SESSIONKEY", "SSHKEY",
	"TLSKEY", "SSLKEY", "AUTHKEY", "HMACKEY", "LICENSEKEY", "PASSKEY", "PASSCODE", "ACCOUNTKEY", "MASTERAUTH",
	"SESSIONID", "SESSID",
	// German, French, Spanish, Portuguese
	"PASSWORT", "KENNWORT", "MOTDEPASSE", "MOT_DE_PASSE", "CONTRASENA", "CONTRASE\u00f1A", "CONTRASE\u00d1A", "SENHA",
}

// secretWords make a name a credential when one is a whole word of it (APP_DB_PASS,
// APP_BASIC_AUTH), unless the next word says the value only describes the credential
// (APP_AUTH_URL, APP_JWT_ISSUER, APP_SALT_ROUNDS).
var secretWords = set("PASS", "PWD", "PW", "PSW", "PSWD", "AUTH", "AUTHORIZATION", "BEARER", "JWT", "JWK",
	"HMAC", "SALT", "PEPPER", "CREDS", "CRED", "DSN", "OTP", "TOTP", "HOTP", "SIG", "SIGNATURE", "PAT", "PIN",
	"KEY", "KEYS", "COOKIE", "COOKIES", "SAS")

// describing words follow a secret word in names of settings about a credential, not of one.
var describing = set("URL", "URI", "URLS", "ENDPOINT", "HOST", "HOSTNAME", "PORT", "ENABLED", "DISABLED",
	"ENABLE", "DISABLE", "REQUIRED", "MODE", "TYPE", "KIND", "PROVIDER", "ISSUER", "AUDIENCE", "REALM",
	"SCHEME", "METHOD", "ALGORITHM", "ALG", "DOMAIN", "TIMEOUT", "TTL", "EXPIRY", "EXPIRES", "EXPIRATION",
	"LIFETIME", "LENGTH", "LEN", "SIZE", "BITS", "DIGITS", "ROUNDS", "ITERATIONS", "COST", "PERIOD",
	"INTERVAL", "WINDOW", "COUNT", "MIN", "MAX", "LIMIT", "RETRIES", "VERSION", "FORMAT", "ENCODING",
	"PREFIX", "SUFFIX", "NAME", "FIELD", "COLUMN", "PARAM", "PATH", "FILE", "DIR", "LOCATION", "ROTATION",
	"STRATEGY", "POLICY", "LEEWAY", "SKEW", "SEPARATOR", "DELIMITER", "PATTERN", "SECURE", "HTTPONLY",
	"SAMESITE")

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

// substringsByFirst are the secretSubstrings by their first byte.
var substringsByFirst = func() (t [256][][]byte) {
	for _, s := range secretSubstrings {
		t[s[0]] = append(t[s[0]], []byte(s))
	}
	return t
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
	var buf, hump [64]byte
	upper := buf[:0]  // name, upper-cased
	humps := hump[:0] // the same, with a _ where camelCase starts a word (dbPassword: DB_PASSWORD)
	if len(name) > len(buf) {
		upper = make([]byte, 0, len(name))
	}
	camel := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		} else if c >= 'A' && c <= 'Z' && i > 0 && (isLower(name[i-1]) || isDigit(name[i-1])) {
			if !camel {
				humps = append(humps, upper...)
				camel = true
			}
			humps = append(humps, '_')
		}
		upper = append(upper, c)
		if camel {
			humps = append(humps, c)
		}
	}
	for i := 0; i < len(upper); i++ {
		for _, s := range substringsByFirst[upper[i]] {
			if bytes.HasPrefix(upper[i:], s) {
				return true
			}
		}
	}
	for _, s := range r.extra {
		if bytes.Contains(upper, s) {
			return true
		}
	}
	return secretWordIn(upper) || (camel && secretWordIn(humps))
}

// secretWordIn reports whether an upper-cased name has a secret word that no describing word
// follows.
func secretWordIn(upper []byte) bool {
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
	x := redaction{v: value, r: r}
	if x.urls() {
		return Redacted
	}
	x.scan()
	return x.apply()
}

// A regular expression only where it is fast on large values: after a literal prefix (JWT).
// Go's regexp has no DFA, so the other rules scan by hand: a mounted file of 1 MiB must not
// take a second to redact.
var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)

// looksLikeCredential reports values that are credentials whatever their name.
func looksLikeCredential(v string) bool {
	return containsAfter(v, "BEGIN ", "-----") || (containsAfter(v, "J", "ey") && jwtRE.MatchString(v)) ||
		isAuthorization(v) || hasKnownToken(v)
}

// isAuthorization reports an Authorization header value: a scheme (Bearer, Basic, Digest,
// Token, ApiKey), blanks, and 8 or more non-blank bytes.
func isAuthorization(v string) bool {
	v = strings.TrimLeft(v, " \t\r\n\v\f")
	w := 0
	for w < len(v) && w <= 6 && isLetter(v[w]) {
		w++
	}
	var buf [6]byte
	switch string(lowerWord(buf[:], v[:w])) {
	case "bearer", "basic", "digest", "token", "apikey":
	default:
		return false
	}
	rest := strings.TrimLeft(v[w:], " \t\r\n\v\f")
	if len(rest) == len(v)-w {
		return false
	}
	n := 0
	for n < len(rest) && n < 8 && !space[rest[n]] {
		n++
	}
	return n >= 8
}

// containsAfter reports whether v contains before+s; it searches for s, which starts with a
// byte rarer than before's (an upper-case letter).
func containsAfter(v, s, before string) bool {
	for i := 0; ; {
		j := strings.Index(v[i:], s)
		if j < 0 {
			return false
		}
		if at := i + j; at >= len(before) && v[at-len(before):at] == before {
			return true
		}
		i += j + 1
	}
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

// knownTokensBy are the knownTokens by the first _ or - of their prefix (and its offset);
// knownTokensBy[0] those without one.
var knownTokensBy = func() (m [3][]int) {
	for i, t := range knownTokens {
		switch a := strings.IndexAny(t.prefix, "_-"); {
		case a < 0:
			m[0] = append(m[0], i)
		case t.prefix[a] == '_':
			m[1] = append(m[1], i)
		default:
			m[2] = append(m[2], i)
		}
	}
	return m
}()

// hasKnownToken finds the prefixes by their first _ or - (one pass for each), and those
// without one (AKIA, ...) by themselves: 21 passes over a large file would cost more.
func hasKnownToken(v string) bool {
	for n, sep := range []byte{'_', '-'} {
		for i := 0; ; {
			j := strings.IndexByte(v[i:], sep)
			if j < 0 {
				break
			}
			at := i + j
			i = at + 1
			if at == 0 || !isLetter(v[at-1]) {
				continue // every prefix has a letter before its first _ or -
			}
			for _, k := range knownTokensBy[n+1] {
				t := knownTokens[k]
				if a := strings.IndexByte(t.prefix, sep); a <= at && knownTokenAt(v, at-a, t.prefix, t.min, t.chars) {
					return true
				}
			}
		}
	}
	for _, k := range knownTokensBy[0] {
		t := knownTokens[k]
		for i := 0; ; {
			j := strings.Index(v[i:], t.prefix)
			if j < 0 {
				break
			}
			if knownTokenAt(v, i+j, t.prefix, t.min, t.chars) {
				return true
			}
			i += j + 1
		}
	}
	return false
}

// knownTokenAt reports whether the token prefix starts a word at at, followed by at least min
// letters, digits or chars.
func knownTokenAt(v string, at int, prefix string, min int, chars string) bool {
	if !strings.HasPrefix(v[at:], prefix) || (at > 0 && isWordChar(v[at-1])) {
		return false
	}
	n := 0
	for k := at + len(prefix); k < len(v) && n < min && (isAlnum(v[k]) || strings.IndexByte(chars, v[k]) >= 0); k++ {
		n++
	}
	return n >= min
}

func isLower(c byte) bool  { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isAlnum(c byte) bool  { return isLetter(c) || isDigit(c) }

func isWordChar(c byte) bool { return isAlnum(c) || c == '_' }

func isSchemeChar(c byte) bool { return isAlnum(c) || c == '+' || c == '.' || c == '-' }

func isQuote(c byte) bool { return c == '"' || c == '\'' }

// charSet is a set of bytes.
type charSet [256]bool

func chars(s string) (t charSet) {
	for i := 0; i < len(s); i++ {
		t[s[i]] = true
	}
	return t
}

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

var (
	// keyChar: what keys are made of; bytes of UTF-8 (or Latin-1) letters included, so that a
	// key written in another language does not hide the credential word after it.
	keyChar = func() charSet {
		t := chars(letters + "_.-")
		for c := 0x80; c < 0x100; c++ {
			t[c] = true
		}
		return t
	}()
	blank     = chars(" \t")
	space     = chars(" \t\r\n\v\f")
	lineBreak = chars("\r\n")
	// valueStop may end an unquoted value, when the next setting or the end of the line follows.
	valueStop = chars(" \t\v\f;&,\"'}])<>")
	// glued: after a closing quote or bracket, these end the value; anything else continues it
	// ("abc"def is one shell word).
	glued   = chars(" \t\r\n\v\f;&,}])<>/#:=")
	token68 = chars(letters + "-._~+/")
	// trigger: the bytes at which scan looks closer.
	trigger = chars("=:<-@ \t\n")
	// flagAfter: what may come before a command-line flag.
	flagAfter = chars(" \t\r\n\"'[(,=`")
)

type plainMemo struct {
	from, end int
	eol       bool
	encl      byte
}

// span is a part of the value that a rendering replaces with Redacted; with quote, "[REDACTED]"
// between two of it.
type span struct {
	start, end int
	quote      byte
}

// redaction is one value being redacted: the spans found so far, and the state of the scan.
type redaction struct {
	v     string
	r     Redactor
	spans []span
	// pending: a setting's name field named a credential (name: DB_PASSWORD); its value field
	// is one.
	pending bool
	// atDone: the bare userinfo rule has looked at the token up to here.
	atDone int
	// noClose: a scan for a closing quote from before here found none, for " and '; the same
	// for brackets [ and {, and for {...} on a line (ODBC). The scans that could go to the end
	// of the value do so once.
	noClose   [2]int
	noBracket [2]int
	noODBC    int
	// odbcFrom, odbcAt: the last scan for an ODBC closing brace, from odbcFrom, found it at odbcAt.
	odbcFrom, odbcAt int
	// closing: where the closing tags are, by name; delims: where the lines that could end a
	// heredoc are, by their text.
	closing map[string][]int
	delims  map[string][]int
	// lastPlain, lastLine: the last plainEnd and restOfLine; blockEnd: the end of the last
	// block; lastBracket: the last closeBracket that matched, which holds those inside it.
	lastPlain, lastLine plainMemo
	blockEnd            int
	lastBracket         [2]int
	// seen caches LooksSecret by key: keys repeat.
	seen map[string]bool
}

func (x *redaction) looksSecret(name string) bool {
	if len(name) > 64 {
		return x.r.LooksSecret(name)
	}
	if s, ok := x.seen[name]; ok {
		return s
	}
	s := x.r.LooksSecret(name)
	if x.seen == nil {
		x.seen = make(map[string]bool)
	}
	if len(x.seen) < 4096 {
		x.seen[name] = s
	}
	return s
}

// add hides v[start:end], unless it is empty or already Redacted (or a part of Redacted: a
// value that ends at ] may be read without it).
func (x *redaction) add(start, end int, quote byte) {
	for end > start && (x.v[end-1] == '\r' || x.v[end-1] == '\n') {
		end--
	}
	if start >= end || (strings.HasPrefix(x.v[start:], Redacted) && end <= start+len(Redacted)) ||
		(quote != 0 && x.v[start:end] == string(quote)+Redacted+string(quote)) {
		return
	}
	x.spans = append(x.spans, span{start, end, quote})
}

// apply writes the value with its spans replaced, overlapping spans merged.
func (x *redaction) apply() string {
	if len(x.spans) == 0 {
		return x.v
	}
	slices.SortStableFunc(x.spans, func(a, b span) int {
		if a.start != b.start {
			return a.start - b.start
		}
		if a.end != b.end {
			return b.end - a.end // the longest first: its quote, if any, is written
		}
		return int(a.quote) - int(b.quote)
	})
	var b strings.Builder
	b.Grow(len(x.v))
	last := 0
	for i := 0; i < len(x.spans); {
		s := x.spans[i]
		end := s.end
		j := i + 1
		for ; j < len(x.spans) && x.spans[j].start <= end; j++ {
			end = max(end, x.spans[j].end)
		}
		b.WriteString(x.v[last:s.start])
		if s.quote != 0 && end == s.end {
			b.WriteByte(s.quote)
			b.WriteString(Redacted)
			b.WriteByte(s.quote)
		} else {
			b.WriteString(Redacted)
		}
		last, i = end, j
	}
	b.WriteString(x.v[last:])
	return b.String()
}

// scan runs the rules for settings over the value, in one pass: at = and : a key and its
// value, at < an XML element, at - a command-line flag, at @ a bare userinfo, after a word an
// Authorization scheme or netrc's password, at the start of a line a directive. The pass goes
// on inside what a rule hid (from the start of a value, not past it): a value that a rule
// reads too long may hold a setting of its own. The scans that could then repeat remember
// their answers, so that each byte is looked at a bounded number of times.
func (x *redaction) scan() {
	v := x.v
	x.lineStart(0)
	for i := 0; i < len(v); {
		c := v[i]
		if !trigger[c] {
			i++
			continue
		}
		next := i + 1
		switch c {
		case '=', ':':
			next = x.pair(i)
		case '<':
			x.xml(i)
		case '-':
			if i == 0 || flagAfter[v[i-1]] {
				next = x.flag(i)
			}
		case '@':
			x.userinfo(i)
		case ' ', '\t':
			if i > 0 && isLetter(v[i-1]) {
				x.afterWord(i)
			}
		case '\n':
			if i+1 < len(v) && (keyChar[v[i+1]] || blank[v[i+1]]) {
				x.lineStart(i + 1)
			}
		}
		i = max(next, i+1)
	}
}

// lineEnd is the index of the line break that ends the line holding i, or len(v).
func lineEnd(v string, i int) int {
	if i >= len(v) {
		return len(v)
	}
	if j := strings.IndexByte(v[i:], '\n'); j >= 0 {
		return i + j
	}
	return len(v)
}

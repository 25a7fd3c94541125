package config

// Words in a value: Authorization schemes, directives and command-line flags.

import (
	"strings"
)

// Kinds of words that take the token after them.
const (
	schemeAlways  = iota // Bearer, Basic: the token after it, whatever it looks like
	schemeShaped         // Token, ApiKey, ...: a token with a digit or a symbol, or a long one
	schemeParams         // Digest, OAuth: their parameters, to the end of the line
	netrcPassword        // netrc's password: the token after it
	authUserPass         // HAProxy's auth user:password: after the colon
)

// wordKind is the kind of a word, compared case-insensitively.
func wordKind(w string) (int, bool) {
	if len(w) < 4 || len(w) > 10 {
		return 0, false
	}
	var buf [10]byte
	switch string(lowerWord(buf[:], w)) {
	case "bearer", "basic":
		return schemeAlways, true
	case "token", "apikey", "negotiate", "ntlm", "sharedkey":
		return schemeShaped, true
	case "digest", "oauth":
		return schemeParams, true
	case "password", "passwd", "passphrase":
		return netrcPassword, true
	case "auth":
		return authUserPass, true
	}
	return 0, false
}

// afterWord looks at the word before the blank at i: an Authorization scheme hides its
// parameter, netrc's password the token after it.
func (x *redaction) afterWord(i int) {
	v := x.v
	s := i
	for s > 0 && i-s <= 10 && isLetter(v[s-1]) {
		s--
	}
	if i-s < 4 || (s > 0 && (isWordChar(v[s-1]) || v[s-1] >= 0x80 || v[s-1] == '<' || v[s-1] == '/')) {
		return // part of a longer word, or an XML tag's name
	}
	kind, ok := wordKind(v[s:i])
	if !ok {
		return
	}
	p := i
	for p < len(v) && blank[v[p]] {
		p++
	}
	if p >= len(v) || lineBreak[v[p]] || v[p] == '=' || v[p] == ':' {
		return
	}
	switch kind {
	case schemeAlways, schemeShaped:
		e := p
		for e < len(v) && token68[v[e]] {
			e++
		}
		pad := e
		for e < len(v) && v[e] == '=' {
			e++
		}
		if e == p || (e < len(v) && !space[v[e]] && strings.IndexByte("\"'`,;)]}>", v[e]) < 0) {
			break
		}
		tok := v[p:e]
		if pad < e && e < len(v) && isQuote(v[e]) && allLower(v[p:pad]) {
			break // Basic realm="x": a parameter, not a token
		}
		if kind == schemeShaped && len(tok) < 16 && strings.IndexAny(tok, "0123456789-._~+/=") < 0 {
			break
		}
		x.add(p, e, 0)
		return
	case schemeParams:
		e := p
		for e < len(v) && isWordChar(v[e]) {
			e++
		}
		if e < len(v) && v[e] == '=' { // name=value parameters: to the end of the line
			end := x.restOfLine(p, 0)
			x.add(p, trimBlanks(v, p, end), 0)
			return
		}
	case netrcPassword:
		e := tokenEnd(v, p)
		if isQuote(v[p]) {
			x.add(p+1, e-1, 0)
		} else {
			x.add(p, e, 0)
		}
		return
	case authUserPass:
		e := tokenEnd(v, p)
		if c := strings.IndexByte(v[p:e], ':'); c >= 0 {
			x.add(p+c+1, e, 0)
			return
		}
	}
	return
}

func allLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLower(s[i]) {
			return false
		}
	}
	return s != ""
}

// tokenEnd is the end of the command-line word at p: a quoted string with its quotes, or a run
// up to a blank.
func tokenEnd(v string, p int) int {
	if p < len(v) && isQuote(v[p]) {
		if e := quoteOnLine(v, p); e >= 0 {
			return e + 1
		}
	}
	e := p
	for e < len(v) && !space[v[e]] {
		e++
	}
	return e
}

// shortFlags take a credential (mysql -p, redis-cli -a, ldapsearch -w); userFlags take
// user:password (curl -u, --user, --proxy-user).
var (
	shortFlags = chars("paw")
	userFlags  = set("u", "U", "user", "proxy-user")
	// notAttached are single-dash options that start with p without being -p and a password.
	notAttached = set("path", "print", "print0", "printf", "prune", "perm", "pthread", "pipe", "pedantic",
		"pie", "profile", "parallel", "pg", "pa", "pp")
)

// flag looks at the command-line flag at i: one whose name looks like a credential (--password,
// -storepass) or a short one that takes a credential (-p) has its value hidden, whether after
// =, after a blank, attached (-phunter2), or in the next element of an argument list
// (["--password", "x"], a YAML "- " item).
func (x *redaction) flag(i int) int {
	v := x.v
	n := len(v)
	j := i + 1
	long := j < n && v[j] == '-'
	if long {
		j++
	}
	s := j
	for j < n && (isAlnum(v[j]) || v[j] == '-' || v[j] == '_' || v[j] == '.') {
		j++
	}
	if j == s || !isLetter(v[s]) {
		return i + 1
	}
	name := v[s:j]
	user := userFlags[name]
	secret := (!long && len(name) == 1 && shortFlags[name[0]]) || (len(name) > 1 && x.looksSecret(name))
	if !secret && !user {
		if !long && name[0] == 'p' && len(name) > 1 && !notAttached[name] {
			// mysql -phunter2: a password has more than lower-case letters, or the line runs mysql
			e := tokenEnd(v, s+1)
			before := v[max(0, i-256):i]
			before = before[strings.LastIndexByte(before, '\n')+1:]
			if !allLower(v[s+1:e]) || strings.Contains(before, "mysql") || strings.Contains(before, "mariadb") {
				x.add(s+1, e, 0)
				return e
			}
		}
		return i + 1
	}
	var q byte // the quote the flag is in
	if i > 0 && isQuote(v[i-1]) {
		q = v[i-1]
	}
	k := j
	flow := false
	switch {
	case k >= n:
		return i + 1
	case v[k] == '=':
		k++
	case blank[v[k]]:
		for k < n && blank[v[k]] {
			k++
		}
	case q != 0 && v[k] == q:
		// the next element of a list: "--password", "x"
		k++
		for k < n && (space[v[k]] || v[k] == ',') {
			k++
		}
		if k >= n || !isQuote(v[k]) {
			return i + 1
		}
	case lineBreak[v[k]]:
		// the next item of a YAML sequence: - --password\n- x
		for k < n && space[v[k]] {
			k++
		}
		if k+1 >= n || v[k] != '-' || !blank[v[k+1]] {
			return i + 1
		}
		k += 2
		for k < n && blank[v[k]] {
			k++
		}
	case v[k] == ',':
		// the next element of a flow sequence: [--password, x]
		flow = true
		k++
		for k < n && blank[v[k]] {
			k++
		}
	default:
		return i + 1
	}
	if k >= n || lineBreak[v[k]] || strings.HasPrefix(v[k:], "--") {
		return i + 1
	}
	e := tokenEnd(v, k)
	if q != 0 && e > k && v[e-1] == q && !isQuote(v[k]) {
		e-- // "--password x": the quote closes the flag's string
	}
	vs, ve := k, e
	if isQuote(v[k]) && e-k >= 2 && v[e-1] == v[k] {
		vs, ve = k+1, e-1
	}
	if !secret { // -u user:password
		c := strings.IndexByte(v[vs:ve], ':')
		if c < 0 {
			return i + 1
		}
		vs += c + 1
	}
	if flow && !isQuote(v[k]) {
		ve = trimFlow(v, vs, ve)
	}
	x.add(vs, ve, 0)
	return k // the scan goes on in the value: it may be on another line, and start a setting
}

// trimFlow drops the , and ] that end a token in a flow sequence ([--password, x]).
func trimFlow(v string, start, end int) int {
	for end > start && (v[end-1] == ',' || v[end-1] == ']') {
		end--
	}
	return end
}

// lineStart looks at the line that starts at p: a directive whose name looks like a credential
// (redis's requirepass x, password x) has the rest of its line hidden.
func (x *redaction) lineStart(p int) {
	v := x.v
	k := p
	for k < len(v) && blank[v[k]] {
		k++
	}
	s := k
	for k < len(v) && keyChar[v[k]] {
		k++
	}
	if k == s || k >= len(v) || !blank[v[k]] || v[s] == '-' || v[s] == '.' {
		return
	}
	vs := k
	for vs < len(v) && blank[v[vs]] {
		vs++
	}
	var buf [8]byte
	switch string(lowerWord(buf[:], v[s:k])) {
	case "env", "setenv", "export", "set", "declare", "readonly", "local", "arg":
		// a variable set by a command (Dockerfile's ENV NAME value, csh's setenv NAME value)
		s, k = vs, vs
		for k < len(v) && keyChar[v[k]] {
			k++
		}
		if k == s || k >= len(v) || !blank[v[k]] {
			return
		}
		vs = k
		for vs < len(v) && blank[v[vs]] {
			vs++
		}
	}
	if vs >= len(v) || lineBreak[v[vs]] || v[vs] == '=' || v[vs] == ':' || v[vs] == '#' || !x.looksSecret(v[s:k]) {
		return
	}
	end := lineEnd(v, vs)
	e := trimBlanks(v, vs, end)
	if e > vs && v[e-1] == ';' {
		e-- // nginx
	}
	x.add(vs, e, 0)
	return
}

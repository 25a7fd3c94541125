package config

// Settings in a value: key=value and key: value, in every syntax the scan knows.

import (
	"slices"
	"strings"
)

// lowerWord is w lower-cased into buf, or "" when w is not a word of up to len(buf) letters.
func lowerWord(buf []byte, w string) []byte {
	if len(w) > len(buf) {
		return nil
	}
	for i := 0; i < len(w); i++ {
		if !isLetter(w[i]) {
			return nil
		}
		buf[i] = w[i] | 0x20
	}
	return buf[:len(w)]
}

// isNamingKey: a key that names a setting in a list of settings ({"name": "DB_PASSWORD",
// "value": "..."}, <add key="Password" value="..."/>).
func isNamingKey(key string) bool {
	var buf [12]byte
	switch string(lowerWord(buf[:], key)) {
	case "name", "key", "id", "param", "parameter", "property", "prop", "variable", "var", "env",
		"field", "header", "setting", "option", "attribute", "attr":
		return true
	}
	return false
}

// isValueKey: a key that holds the value of a setting a naming key named.
func isValueKey(key string) bool {
	var buf [12]byte
	switch string(lowerWord(buf[:], key)) {
	case "value", "val", "content", "data", "default", "defaultvalue", "text":
		return true
	}
	return false
}

// pair looks at the separator at sep ('=' or ':'): a key before it, optionally quoted, and
// its value after it. "=" may have blanks around it, and be ":=", "?=", "+=" or "=>"; ":"
// needs a blank or a line break after it, or a quoted key (JSON), except after a credential
// key that stands alone (properties' password:x).
func (x *redaction) pair(sep int) int {
	v := x.v
	next := sep + 1
	c := v[sep]
	if c == ':' && next < len(v) {
		if v[next] == '=' || v[next] == ':' {
			return next // := is an '=', :: no separator
		}
		if strings.HasPrefix(v[next:], "//") || strings.HasPrefix(v[next:], `\/`) {
			return next // a URL's scheme
		}
	}
	end := sep
	if c == '=' && end > 0 && (v[end-1] == ':' || v[end-1] == '?' || v[end-1] == '+') {
		end--
	}
	for end > 0 && blank[v[end-1]] {
		end--
	}
	if end > 0 && lineBreak[v[end-1]] { // JSON may break the line before the colon
		for end > 0 && space[v[end-1]] {
			end--
		}
		if end == 0 || !isQuote(v[end-1]) {
			return next
		}
	}
	var kq byte // the key's quote
	if end > 0 && isQuote(v[end-1]) {
		kq = v[end-1]
		end--
	}
	start := end
	for start > 0 && keyChar[v[start-1]] {
		start--
	}
	if start == end {
		return next
	}
	var encl byte // the quote the whole setting is in ("Authorization: Bearer x")
	if kq == 0 && start > 0 && (isQuote(v[start-1]) || v[start-1] == '`') {
		encl = v[start-1]
	}
	key := v[start:end]
	vs := next
	if c == '=' && vs < len(v) && v[vs] == '>' {
		vs++
	}
	if c == ':' && kq == 0 && vs < len(v) && !space[v[vs]] {
		// key:value: a credential key that stands alone, not host:port or a:b:c
		if (start > 0 && v[start-1] == ':') || !x.looksSecret(key) {
			return next
		}
	}
	for vs < len(v) && blank[v[vs]] {
		vs++
	}
	secret := x.looksSecret(key)
	if isNamingKey(key) {
		t, e := x.valueText(vs, encl)
		x.pending = x.looksSecret(t)
		if secret && x.valueFollows(e) {
			secret = false // key="Host" value="db": key names the setting
		}
	} else if x.pending && isValueKey(key) {
		secret = true
		x.pending = false
	}
	if !secret {
		return next
	}
	x.redactValue(start, vs, encl, kq)
	return max(next, vs) // the scan goes on in the value: what it hides may hold a setting
}

// valueText is the text of the value at vs, for a naming key: a quoted string's content or the
// unquoted run, of at most 128 bytes (the scan does not skip it: a longer one names nothing).
func (x *redaction) valueText(vs int, encl byte) (text string, end int) {
	v := x.v
	if vs >= len(v) {
		return "", vs
	}
	if isQuote(v[vs]) {
		if e := quoteOnLine(v, vs); e >= 0 {
			return v[vs+1 : e], e + 1
		}
		return "", vs
	}
	e, _ := plainEnd(v[:min(len(v), vs+128)], vs, encl)
	return strings.TrimSpace(v[vs:e]), e
}

// valueFollows reports whether the next setting after p, within 128 bytes, is a value key
// (value, val, ...), or the content of an XML element (<entry key="db.host">db</entry>): then
// the naming key before it is a name, not a credential.
func (x *redaction) valueFollows(p int) bool {
	v := x.v[:min(len(x.v), p+128)]
	if p < len(v) && v[p] == '>' {
		return true
	}
	for p < len(v) && (space[v[p]] || isQuote(v[p]) || v[p] == ',' || v[p] == ';' || v[p] == '&' || v[p] == '-') {
		p++
	}
	s := p
	for p < len(v) && keyChar[v[p]] {
		p++
	}
	if p < len(v) && isQuote(v[p]) {
		p++
	}
	for p < len(v) && blank[v[p]] {
		p++
	}
	return p < len(v) && (v[p] == '=' || v[p] == ':') && isValueKey(strings.Trim(v[s:p], " \t\"'"))
}

// quoteOnLine finds the quote that closes the one at p on its line, within 4 KiB; -1 when there
// is none. (Its callers do not skip what it scans.)
func quoteOnLine(v string, p int) int {
	seg := v[p+1 : min(len(v), p+1+4096)]
	j := strings.IndexByte(seg, v[p])
	if j < 0 || strings.IndexByte(seg[:j], '\n') >= 0 {
		return -1
	}
	return p + 1 + j
}

// redactValue hides the value at vs of the credential key that starts at keyStart, and
// returns where the value ends. kq is the key's quote: after a double quote, a hidden array or
// object is written as the string "[REDACTED]" (JSON).
func (x *redaction) redactValue(keyStart, vs int, encl, kq byte) int {
	v := x.v
	n := len(v)
	if vs >= n || lineBreak[v[vs]] {
		// nothing on the line: a YAML block or sequence under the key, or, after a quoted key,
		// JSON's value on a later line
		end := x.block(keyStart, vs, vs, true)
		if kq != 0 {
			p := vs
			for p < n && space[v[p]] {
				p++
			}
			if p < n && (isQuote(v[p]) || v[p] == '[' || v[p] == '{' || isDigit(v[p])) {
				end = max(end, x.redactValue(keyStart, p, encl, kq))
			}
		}
		return end
	}
	switch c := v[vs]; {
	case strings.HasPrefix(v[vs:], `"""`) || strings.HasPrefix(v[vs:], "'''"):
		e := strings.Index(v[vs+3:], v[vs:vs+3])
		body := vs + 3
		if strings.HasPrefix(v[body:], "\n") {
			body++
		}
		if e < 0 {
			x.add(body, n, 0)
			return n
		}
		x.add(body, vs+3+e, 0)
		return vs + 6 + e
	case isQuote(c) && c != encl:
		e := x.closeQuote(vs)
		if e < 0 { // unclosed: the run after it
			end, _ := x.plainEnd(vs+1, encl)
			x.add(vs+1, end, 0)
			return end
		}
		return x.closed(vs+1, e, e+1, encl, 0)
	case c == '{' || c == '[':
		e := x.closeBracket(vs)
		if c == '{' {
			e = max(e, x.odbcClose(vs))
		}
		if e < 0 {
			break
		}
		var q byte
		if kq == '"' {
			q = '"'
		}
		return x.closed(vs, e+1, e+1, encl, q)
	case c == '<' && strings.HasPrefix(v[vs:], "<<"):
		if end, ok := x.heredoc(vs); ok {
			return end
		}
	case (c == '|' || c == '>') && blockIndicator(v, vs):
		return x.block(keyStart, lineEnd(v, vs), lineEnd(v, vs), false)
	}
	if schemeAt(v, vs) {
		// Authorization: Digest username="...", response="...": to the end of the line
		end := x.restOfLine(vs, encl)
		x.add(vs, trimBlanks(v, vs, end), 0)
		return end
	}
	end, eol := x.plainEnd(vs, encl)
	if eol {
		return x.block(keyStart, end, vs, false)
	}
	x.add(vs, end, 0)
	return end
}

// closed hides a quoted string's content or a bracketed value, v[start:end], and what is glued
// to it after its closing quote or bracket, at after ("abc"def is one shell word); quote: see
// span.
func (x *redaction) closed(start, end, after int, encl, quote byte) int {
	v := x.v
	if after < len(v) && !glued[v[after]] && v[after] != encl {
		e, _ := x.plainEnd(after, encl)
		x.add(start, e, 0)
		return e
	}
	x.add(start, end, quote)
	return after
}

// restOfLine is where the line that holds start ends (at \r or \n), or the quote encl,
// remembering the last answer like plainEnd.
func (x *redaction) restOfLine(start int, encl byte) int {
	m := &x.lastLine
	if start >= m.from && start < m.end && encl == m.encl {
		return m.end
	}
	v := x.v
	end := start
	for end < len(v) && !lineBreak[v[end]] && !(encl != 0 && v[end] == encl) {
		end++
	}
	*m = plainMemo{start, end, true, encl}
	return end
}

// plainEnd is plainEnd of the value, remembering the last answer: a scan from inside the last
// one ends where it ended (it meets the same separators), so that values that hold keys are
// not scanned again from each.
func (x *redaction) plainEnd(start int, encl byte) (int, bool) {
	m := &x.lastPlain
	if start >= m.from && start < m.end && encl == m.encl {
		return m.end, m.eol
	}
	end, eol := plainEnd(x.v, start, encl)
	*m = plainMemo{start, end, eol, encl}
	return end, eol
}

// plainEnd is the end of an unquoted value that starts at start: the end of its line, the
// quote encl that the setting is in, or a separator (blank ; & , quote bracket) after which
// the next key, a flag or the end of the line comes. eol reports that the value ran to the end
// of its line.
func plainEnd(v string, start int, encl byte) (end int, eol bool) {
	k := start
	for k < len(v) {
		c := v[k]
		if lineBreak[c] {
			return k, true
		}
		if c == encl && encl != 0 && (k == 0 || v[k-1] != '\\') {
			return k, false
		}
		if !valueStop[c] {
			k++
			continue
		}
		j := k
		for j < len(v) && valueStop[v[j]] && !(v[j] == encl && encl != 0) {
			j++
		}
		if j >= len(v) || lineBreak[v[j]] {
			return k, true
		}
		if v[j] == encl || startsKey(v, j) {
			return k, false
		}
		k = j
	}
	return k, true
}

// startsKey reports whether a setting starts at j: a key (optionally quoted) and a separator
// followed by a value, or a command-line flag.
func startsKey(v string, j int) bool {
	p := j
	if v[p] == '-' {
		p++
		if p < len(v) && v[p] == '-' {
			p++
		}
		return p < len(v) && isLetter(v[p])
	}
	quoted := isQuote(v[p])
	if quoted {
		p++
	}
	s := p
	for p < len(v) && keyChar[v[p]] {
		p++
	}
	if p == s {
		return false
	}
	if p < len(v) && isQuote(v[p]) {
		p++
		quoted = true
	}
	for p < len(v) && blank[v[p]] {
		p++
	}
	if p >= len(v) {
		return false
	}
	switch v[p] {
	case '=':
		// a value after it: "==" is base64 padding, not a key (Basic aHVudGVyMg==)
		p++
		if p < len(v) && v[p] == '>' {
			return true
		}
		for p < len(v) && blank[v[p]] {
			p++
		}
		return p < len(v) && v[p] != '=' && !lineBreak[v[p]]
	case ':':
		p++
		return p >= len(v) || space[v[p]] || (quoted && v[p] != '/')
	}
	return false
}

func trimBlanks(v string, start, end int) int {
	for end > start && space[v[end-1]] {
		end--
	}
	return end
}

// closeQuote finds the quote that closes the one at start, on any line: a backslash escapes
// the next byte, and a doubled quote is a quote (ADO.NET, SQL, YAML). -1 when there is none.
func (x *redaction) closeQuote(start int) int {
	v := x.v
	q := v[start]
	memo := &x.noClose[0]
	if q == '\'' {
		memo = &x.noClose[1]
	}
	if *memo > 0 && start >= *memo-1 {
		return -1 // an earlier scan found none after here
	}
	for k := start + 1; k < len(v); {
		j := strings.IndexByte(v[k:], q)
		if j < 0 {
			break
		}
		j += k
		b := j
		for b > start+1 && v[b-1] == '\\' {
			b--
		}
		switch {
		case (j-b)%2 == 1:
			k = j + 1
		case j+1 < len(v) && v[j+1] == q:
			k = j + 2
		default:
			return j
		}
	}
	*memo = start + 1
	return -1
}

// closeBracket finds the bracket that closes the one at start, skipping strings in double
// quotes; -1 when there is none.
func (x *redaction) closeBracket(start int) int {
	v := x.v
	open, shut := v[start], byte(']')
	memo := &x.noBracket[0]
	if open == '{' {
		shut = '}'
		memo = &x.noBracket[1]
	}
	if *memo > 0 && start >= *memo-1 {
		return -1
	}
	if b := x.lastBracket; start > b[0] && start < b[1] {
		return b[1] // inside the last match: this one's end is inside it, and hidden
	}
	depth := 0
	for k := start; k < len(v); k++ {
		switch c := v[k]; c {
		case open:
			depth++
		case shut:
			if depth--; depth == 0 {
				x.lastBracket = [2]int{start, k}
				return k
			}
		case '"':
			e := k + 1
			for e < len(v) && v[e] != '"' && v[e] != '\n' {
				if v[e] == '\\' {
					e++
				}
				e++
			}
			if e < len(v) && v[e] == '"' {
				k = e
			}
		}
	}
	*memo = start + 1
	return -1
}

// odbcClose finds the brace that closes an ODBC or ADO.NET value {...} on its line, where }}
// is a brace; -1 when there is none.
//
// The brace found is the end of the first run of } of odd length after start, whatever start
// is on the line before it (start is a {, so never inside such a run): a scan from before it
// gives the same answer, which is remembered, so that a line of {x}} repeated is read once.
func (x *redaction) odbcClose(start int) int {
	v := x.v
	if start < x.noODBC {
		return -1 // none on the rest of this line
	}
	if start >= x.odbcFrom && start < x.odbcAt {
		return x.odbcAt
	}
	k := start + 1
	for ; k < len(v) && v[k] != '\n'; k++ {
		if v[k] == '}' {
			if k+1 < len(v) && v[k+1] == '}' {
				k++
				continue
			}
			x.odbcFrom, x.odbcAt = start, k
			return k
		}
	}
	x.noODBC = k
	return -1
}

// blockIndicator reports a YAML block scalar header at vs: | or >, chomping and indentation
// indicators, then only blanks or a comment on the line.
func blockIndicator(v string, vs int) bool {
	k := vs + 1
	for k < len(v) && (v[k] == '-' || v[k] == '+' || isDigit(v[k])) {
		k++
	}
	for k < len(v) && blank[v[k]] {
		k++
	}
	return k >= len(v) || lineBreak[v[k]] || (v[k] == '#' && blank[v[k-1]])
}

// schemeAt reports an Authorization scheme and a blank at p.
func schemeAt(v string, p int) bool {
	e := p
	for e < len(v) && e-p <= 10 && isLetter(v[e]) {
		e++
	}
	if e >= len(v) || !blank[v[e]] {
		return false
	}
	k, ok := wordKind(v[p:e])
	return ok && k <= schemeParams
}

// block hides the value from vs to eol, the end of its line, and the lines that belong to it:
// backslash continuations (properties), and the lines after it that are more indented than
// the key's line (a YAML block, flow or plain scalar, or mapping) or, with items, a "- " item
// at the key's column (a YAML sequence).
func (x *redaction) block(keyStart, eol, vs int, items bool) int {
	v := x.v
	n := len(v)
	if vs < x.blockEnd {
		return x.blockEnd // a key inside the last block, which holds this one's
	}
	end := eol
	for end < n && end > vs && oddBackslashes(v, vs, trimBlanks(v, vs, end)) {
		end = lineEnd(v, end+1)
	}
	ls := strings.LastIndexByte(v[:keyStart], '\n') + 1
	indent := 0
	for ls+indent < keyStart && blank[v[ls+indent]] {
		indent++
	}
	col := keyStart - ls
	if keyStart > ls && isQuote(v[keyStart-1]) {
		col--
	}
	first := -1 // the first byte of the block's lines
	for p := lineEnd(v, end); p < n; {
		q := p + 1 // p is a line's \n
		k := q
		for k < n && blank[v[k]] {
			k++
		}
		le := lineEnd(v, k)
		if k >= le || (k+1 == le && v[k] == '\r') { // a blank line: part of the block if more follows
			p = le
			continue
		}
		ind := k - q
		if ind > indent || (items && ind == col && v[k] == '-' && (k+1 >= n || space[v[k+1]])) {
			if first < 0 {
				first = k
			}
			end, p = le, le
			continue
		}
		break
	}
	start := vs
	if vs >= eol || trimBlanks(v, vs, eol) == vs {
		start = first // nothing on the key's line
	}
	if start >= 0 {
		x.add(start, trimBlanks(v, start, end), 0)
	}
	x.blockEnd = end
	return end
}

// oddBackslashes reports whether v[start:end] ends in an odd run of backslashes.
func oddBackslashes(v string, start, end int) bool {
	b := end
	for b > start && v[b-1] == '\\' {
		b--
	}
	return (end-b)%2 == 1
}

// heredoc hides the body of a heredoc value (<<EOF, <<-EOF, <<~EOF, <<'EOF'), to the line
// that is its delimiter, or to the end.
func (x *redaction) heredoc(vs int) (int, bool) {
	v := x.v
	k := vs + 2
	if k < len(v) && (v[k] == '-' || v[k] == '~') {
		k++
	}
	var q byte
	if k < len(v) && isQuote(v[k]) {
		q = v[k]
		k++
	}
	s := k
	for k < len(v) && isWordChar(v[k]) {
		k++
	}
	if k == s || (q != 0 && (k >= len(v) || v[k] != q)) {
		return 0, false
	}
	id := v[s:k]
	body := x.restOfLine(k, 0) + 1
	if p := x.delimiter(id, body); p >= 0 {
		x.add(body, p, 0)
		return p, true
	}
	x.add(min(body, len(v)), len(v), 0)
	return len(v), true
}

// delimiter is where the first line at or after start that is id (blanks around it allowed)
// starts, or -1. The lines that are one word are indexed once, on the first call.
func (x *redaction) delimiter(id string, start int) int {
	v := x.v
	if x.delims == nil {
		x.delims = make(map[string][]int)
		for p := 0; p < len(v); {
			le := lineEnd(v, p)
			if w := strings.TrimSpace(v[p:le]); w != "" && len(w) <= 64 && strings.IndexFunc(w, func(r rune) bool {
				return r > 0x7f || !isWordChar(byte(r))
			}) < 0 {
				x.delims[w] = append(x.delims[w], p)
			}
			p = le + 1
		}
	}
	at := x.delims[id]
	if i, _ := slices.BinarySearch(at, start); i < len(at) {
		return at[i]
	}
	return -1
}

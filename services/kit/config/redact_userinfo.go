package config

// user:password@host without a scheme.

import (
	"strings"
)

// notUserinfo are URI schemes whose user@host is no credential (mailto:ops@example.com).
var notUserinfo = set("mailto", "sip", "sips", "xmpp", "tel", "im", "pres", "acct", "urn")

// userinfo looks at the token around the @ at at: user:password@host without a scheme (Go's
// MySQL DSN user:password@tcp(db)/app) has everything from the first colon after the user to
// the last @ of the token hidden.
func (x *redaction) userinfo(at int) {
	v := x.v
	if at < x.atDone {
		return
	}
	stop := func(k int) bool {
		c := v[k]
		return space[c] || c == '`' || c == '<' || c == '>' || (c == '"' && (k == 0 || v[k-1] != '\\'))
	}
	s := at
	for s > 0 && !stop(s-1) {
		s--
	}
	e := at + 1
	for e < len(v) && !stop(e) {
		e++
	}
	x.atDone = e
	last := s + strings.LastIndexByte(v[s:e], '@')
	for c := s; c < last; {
		k := strings.IndexByte(v[c:last], ':')
		if k < 0 {
			x.oracleUserinfo(s, last)
			return
		}
		k += c
		if strings.HasPrefix(v[k+1:], "//") || strings.HasPrefix(v[k+1:], `\/`) {
			return // a URL: urls did it
		}
		u := k
		for u > s && keyChar[v[u-1]] {
			u--
		}
		if u < k && !notUserinfo[strings.ToLower(v[u:k])] {
			x.add(k+1, last, 0)
			return
		}
		c = k + 1
	}
}

// oracleTools take user/password@database (sqlplus scott/tiger@orcl).
var oracleTools = []string{"sqlplus", "connect", "conn ", "expdp", "impdp", "rman", "sqlldr", "dgmgrl", "exp ", "imp "}

// oracleUserinfo hides the password of user/password@database in the token v[s:e] that ends
// its userinfo at last, when an Oracle tool comes before it on its line.
func (x *redaction) oracleUserinfo(s, last int) {
	v := x.v
	slash := strings.IndexByte(v[s:last], '/')
	if slash <= 0 || !keyChar[v[s+slash-1]] {
		return
	}
	before := strings.ToLower(v[max(0, s-256):s])
	before = before[strings.LastIndexByte(before, '\n')+1:]
	for _, t := range oracleTools {
		if strings.Contains(before, t) {
			x.add(s+slash+1, last, 0)
			return
		}
	}
}

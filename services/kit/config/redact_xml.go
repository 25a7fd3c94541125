package config

// XML in a value: credential elements, attributes and name/value pairs.

import (
	"slices"
	"strings"
)

// xml looks at the element that starts at i. An element whose name looks like a credential
// has its content and attribute values hidden; so has one that a naming attribute names as a
// credential (<entry key="db.password">, <add key="Password" value="..."/>), and a <value>
// after a <name> or <key> that names one.
func (x *redaction) xml(i int) {
	v := x.v
	n := len(v)
	j := i + 1
	if j >= n || !(isLetter(v[j]) || v[j] == '_' || v[j] >= 0x80) {
		return
	}
	k := j
	for k < n && (keyChar[v[k]] || v[k] == ':') {
		k++
	}
	if k < n && !space[v[k]] && v[k] != '>' && v[k] != '/' {
		return
	}
	tag := v[j:k]
	end := tagEnd(v, k)
	if end < 0 {
		return
	}
	self := v[end-1] == '/'
	local := tag[strings.LastIndexByte(tag, ':')+1:]
	secret := x.looksSecret(tag)
	named := !secret && x.attrs(k, end, attrsFind)
	if secret && !self && isNamingKey(local) && x.valueElementFollows(tag, end+1) {
		secret = false // <key>db.host</key><value>db</value>: key names the setting
	}
	if !secret && !named && !self {
		switch {
		case isNamingKey(local):
			if t := strings.TrimSpace(v[end+1 : end+1+max(0, strings.IndexByte(v[end+1:], '<'))]); len(t) <= 256 {
				x.pending = x.looksSecret(t)
			}
		case x.pending && isValueKey(local):
			secret = true
			x.pending = false
		}
	}
	if !secret && !named {
		return
	}
	if secret {
		x.attrs(k, end, attrsAll)
	} else {
		x.attrs(k, end, attrsOthers)
	}
	if self {
		return
	}
	start := end + 1
	c := x.closingTag(tag, start)
	if c < 0 {
		c = nextTag(v, start)
	}
	x.add(start, c, 0)
	return
}

// closingTag is where the first </tag after start is, or -1. The closing tags of the value
// are indexed once, on the first call.
func (x *redaction) closingTag(tag string, start int) int {
	if x.closing == nil {
		x.closing = make(map[string][]int)
		v := x.v
		for i := 0; ; {
			j := strings.Index(v[i:], "</")
			if j < 0 {
				break
			}
			at := i + j
			k := at + 2
			for k < len(v) && (keyChar[v[k]] || v[k] == ':') {
				k++
			}
			if k > at+2 {
				x.closing[v[at+2:k]] = append(x.closing[v[at+2:k]], at)
			}
			i = max(k, at+2)
		}
	}
	at := x.closing[tag]
	if i, _ := slices.BinarySearch(at, start); i < len(at) {
		return at[i]
	}
	return -1
}

// valueElementFollows reports whether the element tag whose content starts at start is
// followed by a value element (<value>, <val>, ...), within 256 bytes of its closing tag.
func (x *redaction) valueElementFollows(tag string, start int) bool {
	c := x.closingTag(tag, start)
	if c < 0 {
		return false
	}
	v := x.v[:min(len(x.v), c+256)]
	p := c + 2 + len(tag)
	for p < len(v) && (space[v[p]] || v[p] == '>') {
		p++
	}
	if p >= len(v) || v[p] != '<' {
		return false
	}
	s := p + 1
	for p = s; p < len(v) && (keyChar[v[p]] || v[p] == ':'); p++ {
	}
	name := v[s:p]
	return isValueKey(name[strings.LastIndexByte(name, ':')+1:])
}

// tagEnd is the index of the > that ends the tag whose attributes start at k, skipping quoted
// values; -1 when there is none before the next <.
func tagEnd(v string, k int) int {
	for k < len(v) {
		switch v[k] {
		case '>':
			return k
		case '<':
			return -1
		case '"', '\'':
			e := strings.IndexByte(v[k+1:], v[k])
			if e < 0 {
				return -1
			}
			k += e + 2
			continue
		}
		k++
	}
	return -1
}

// nextTag is where the text at start ends: the next <, CDATA sections skipped.
func nextTag(v string, start int) int {
	for k := start; k < len(v); {
		j := strings.IndexByte(v[k:], '<')
		if j < 0 {
			return len(v)
		}
		k += j
		if !strings.HasPrefix(v[k:], "<![CDATA[") {
			return k
		}
		e := strings.Index(v[k:], "]]>")
		if e < 0 {
			return len(v)
		}
		k += e + 3
	}
	return len(v)
}

// What attrs does.
const (
	attrsFind   = iota // report whether a naming attribute (name, key, id, ...) names a credential
	attrsOthers        // hide the values of the attributes other than the naming ones
	attrsAll           // hide the values of all attributes
)

// attrs reads the attributes of a tag, v[k:end], for what.
func (x *redaction) attrs(k, end int, what int) bool {
	v := x.v
	for k < end {
		for k < end && !keyChar[v[k]] {
			k++
		}
		s := k
		for k < end && (keyChar[v[k]] || v[k] == ':') {
			k++
		}
		name := v[s:k]
		for k < end && blank[v[k]] {
			k++
		}
		if k >= end || v[k] != '=' {
			continue
		}
		k++
		for k < end && blank[v[k]] {
			k++
		}
		if k >= end || !isQuote(v[k]) {
			continue
		}
		e := strings.IndexByte(v[k+1:end], v[k])
		if e < 0 {
			return false
		}
		val := v[k+1 : k+1+e]
		naming := isNamingKey(name)
		if what == attrsFind && naming && x.looksSecret(val) {
			return true
		}
		if what == attrsAll || (what == attrsOthers && !naming) {
			x.add(k+1, k+1+e, 0)
		}
		k += e + 2
	}
	return false
}

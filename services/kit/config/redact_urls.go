package config

// URLs in a value: userinfo passwords, webhooks, percent-encoded and JSON-escaped forms.

import (
	"slices"
	"strings"
)

// urlStart is where a URL starts: its scheme, and the end of its "://" (or ":\/\/").
type urlStart struct{ scheme, auth int }

// urlStarts finds where URLs start: a scheme (a letter, then letters, digits, + . -) and "://",
// or ":\/\/" as JSON may escape it.
func urlStarts(v string) []urlStart {
	var out []urlStart
	for _, sep := range []string{"://", `:\/\/`} {
		for i := 0; ; {
			// JSON's :\/\/ is found by its rarer backslashes
			j := strings.Index(v[i:], sep[1:])
			if j < 0 {
				break
			}
			at := i + j - 1
			i = at + len(sep)
			if at < 0 || v[at] != ':' {
				continue
			}
			start := at
			for start > 0 && isSchemeChar(v[start-1]) {
				start--
			}
			for start < at && !isLetter(v[start]) {
				start++
			}
			if start < at {
				out = append(out, urlStart{start, at + len(sep)})
			}
		}
	}
	slices.SortFunc(out, func(a, b urlStart) int { return a.scheme - b.scheme })
	// drop a "scheme" inside the previous URL's authority (a://b://c)
	kept := out[:0]
	for _, u := range out {
		if len(kept) > 0 && u.scheme < kept[len(kept)-1].auth {
			continue
		}
		kept = append(kept, u)
	}
	return kept
}

// webhookHosts carry the secret of a webhook URL in its path (or sign it in its query): the
// whole URL is a credential. Subdomains count too.
var webhookHosts = []string{
	"hooks.slack.com", "hooks.slack-gov.com", "webhook.office.com", "outlook.office.com",
	"outlook.office365.com", "discord.com", "discordapp.com", "chat.googleapis.com", "api.telegram.org",
	"maker.ifttt.com", "hooks.zapier.com", "logic.azure.com", "webhook.site",
}

// urls hides the userinfo password of every URL in the value (and a bare userinfo that looks
// like a token). It reports true when a URL is a webhook, whose secret is its path.
func (x *redaction) urls() (whole bool) {
	v := x.v
	starts := urlStarts(v)
	for i, m := range starts {
		limit := len(v)
		if i+1 < len(starts) {
			limit = starts[i+1].scheme
		}
		// A URL ends at a blank, or, in quotes, at the closing quote (a password may hold a
		// blank); its path, for the webhook rule, at a blank, a quote or an angle bracket.
		var q byte
		if m.scheme > 0 && (isQuote(v[m.scheme-1]) || v[m.scheme-1] == '`') {
			q = v[m.scheme-1]
		}
		end, pathEnd := m.auth, m.auth
		for end < limit && !(q == 0 && space[v[end]]) && !lineBreak[v[end]] && !(q != 0 && v[end] == q && v[end-1] != '\\') {
			end++
		}
		for pathEnd < end && !space[v[pathEnd]] && !isQuote(v[pathEnd]) && v[pathEnd] != '<' && v[pathEnd] != '>' {
			pathEnd++
		}
		if u := m.auth + strings.IndexAny(v[m.auth:end], `:/?#\@`); q == 0 && u >= m.auth && v[u] == ':' &&
			strings.IndexAny(v[u:end], "/@") < 0 && strings.Trim(v[u+1:end], "0123456789") != "" {
			// scheme://user:pa ss@host, unquoted: the password runs to an @ further on the line
			if at := strings.IndexByte(v[end:limit], '@'); at >= 0 && strings.IndexByte(v[end:end+at], '\n') < 0 {
				end += at + 1
			}
		}
		// The authority as browsers read it ends at / ? # or \ (which JSON's \/ starts).
		authEnd := m.auth + strings.IndexAny(v[m.auth:pathEnd], `/?#\`)
		if authEnd < m.auth {
			authEnd = pathEnd
		}
		host := v[m.auth:authEnd]
		hosts := [2]string{}
		if at := strings.LastIndexByte(v[m.auth:end], '@'); at >= 0 {
			at += m.auth
			userinfo := v[m.auth:at]
			// A password: from the first ":" of the user to the last "@", whatever between.
			if u := strings.IndexAny(userinfo, `:/?#\`); u >= 0 && userinfo[u] == ':' {
				x.add(m.auth+u+1, at, 0)
				rest := v[at+1 : end]
				if e := strings.IndexAny(rest, `/?#\`); e >= 0 {
					rest = rest[:e]
				}
				hosts[1] = rest
			}
		}
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			if !strings.Contains(host[:at], ":") && looksLikeToken(host[:at]) {
				x.add(m.auth, m.auth+at, 0)
			}
			host = host[at+1:]
		}
		hosts[0] = host
		for _, h := range hosts {
			if h != "" && isWebhook(h, v[min(authEnd, pathEnd):pathEnd]) {
				return true
			}
		}
	}
	x.encodedURLs()
	return false
}

// encodedURLs hides the password of percent-encoded URLs (a URL in a query parameter):
// postgres%3A%2F%2Fapp%3Apassword%40db.
func (x *redaction) encodedURLs() {
	v := x.v
	for i := 0; i < len(v); {
		j := strings.IndexByte(v[i:], '%')
		if j < 0 {
			return
		}
		at := i + j
		i = at + 1
		if at+9 > len(v) || !strings.EqualFold(v[at:at+9], "%3A%2F%2F") {
			continue
		}
		auth := at + 9
		end := auth
		for end < len(v) && !space[v[end]] && !isQuote(v[end]) && v[end] != '&' && v[end] != '<' && v[end] != '>' {
			end++
		}
		colon, last := -1, -1
		for k := auth; k+3 <= end; k++ {
			switch {
			case v[k] == '/' || strings.EqualFold(v[k:k+3], "%2F"):
				if colon < 0 {
					k = end // no user:password before the path
				}
			case colon < 0 && strings.EqualFold(v[k:k+3], "%3A"):
				colon = k + 3
			case strings.EqualFold(v[k:k+3], "%40"):
				last = k
			}
		}
		if k := strings.LastIndexByte(v[auth:end], '@'); k >= 0 && auth+k > last {
			last = auth + k
		}
		if colon >= 0 && last > colon {
			x.add(colon, last, 0)
		}
		i = end
	}
}

func isWebhook(host, rest string) bool {
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	for _, w := range webhookHosts {
		if len(host) >= len(w) && strings.EqualFold(host[len(host)-len(w):], w) &&
			(len(host) == len(w) || host[len(host)-len(w)-1] == '.') {
			return true
		}
	}
	path, _, _ := strings.Cut(rest, "?")
	for i := 0; i+4 <= len(path); i++ {
		if path[i]|0x20 == 'h' && strings.EqualFold(path[i:i+4], "hook") {
			return true
		}
	}
	return false
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

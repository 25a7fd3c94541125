package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/dtap-platform/monorepo/services/kit/config"
)

// GET /config is rendered once, at start: the configuration is immutable for the process's life.
// Its JSON object holds, in this order:
//
//	environment, release, version, logLevel, port   the kit's own settings, always shown
//	view                                             "fingerprints" or "redacted" (config.View)
//	fingerprints                                     how fingerprints are made (fingerprints view)
//	truncated                                        only when the body was cut to its bound
//	config, configBase64, env, secrets               file or variable name -> what is shown
//
// In the fingerprints view a value is shown (through the redaction rules) only when its key is
// public; every other value, every secret and every config file that resolves outside
// CONFIG_DIR show "[fingerprint hmac:<24 hex>, <n> bytes]" (config.Fingerprinter). In the
// redacted view every value goes through the redaction rules, and secrets and config files that
// resolve outside CONFIG_DIR show "[REDACTED]".
//
// Two more rules keep a value shown from giving away one that is not. In the fingerprints view,
// a public value equal to a hidden one is hidden too. In both views, wherever the value of a
// secret (of SECRETS_DIR, or a config file linked there) of 6 bytes or more occurs in a value
// shown, it is replaced by "[REDACTED]" (in a binary file: the file is).
//
// The body is at most config.Config.ViewMaxBytes (CONFIG_VIEW_MAX_BYTES, 1 MiB by default) and
// always valid JSON that starts with the environment. When the values do not fit, the largest
// are replaced, one by one, by "[truncated: <n> bytes, over the <max> bytes of /config]" until
// they do; if the names alone do not fit, the last entries are left out. Then a field
// "truncated": {"values": <replaced>, "omitted": <left out>, "maxBytes": <max>} says so.

// Sections of /config, in their order.
const (
	sectionConfig = iota
	sectionBinary
	sectionEnv
	sectionSecrets
	sections
)

var sectionNames = [sections]string{"config", "configBase64", "env", "secrets"}

// maxHeaderValue bounds each string of the header (environment, release, version): they come
// from the environment.
const maxHeaderValue = 1 << 10

// shown is one entry of a section: its name and what is shown, both JSON-encoded. fp >= 0 is
// the index of the value whose fingerprint it waits for.
type shown struct {
	name, value []byte
	fp          int
}

// item is one value of the configuration before the view: where it goes, its name, what it
// holds, and whether its key lets it show.
type item struct {
	sec    int
	name   string
	raw    string
	open   bool
	binary bool
}

// minKnownSecret is the shortest secret value that is looked for in the values shown: shorter
// ones ("on", a PIN) occur in ordinary text by chance.
const minKnownSecret = 6

// scrubBudget bounds the bytes that looking for secrets in shown values may scan (values times
// secrets); past it, values not yet looked at are hidden rather than shown.
const scrubBudget = 1 << 30

// renderConfig renders GET /config (see above). Every value goes through the view here,
// whoever built cfg.
func renderConfig(cfg config.Config, build BuildInfo) ([]byte, error) {
	view := cfg.View.Normal()
	red := cfg.Redactor
	open := func(name string) bool { return view == config.ViewRedacted || cfg.IsPublic(name) }

	var items []item
	for _, name := range sortedKeys(cfg.Files) {
		items = append(items, item{sec: sectionConfig, name: name, raw: cfg.Files[name], open: open(name)})
	}
	var secretValues []string
	for _, name := range sortedKeys(cfg.LinkedSecrets) {
		if _, dup := cfg.Files[name]; !dup { // names of one directory: never both
			items = append(items, item{sec: sectionConfig, name: name, raw: cfg.LinkedSecrets[name].Reveal()})
			secretValues = append(secretValues, cfg.LinkedSecrets[name].Reveal())
		}
	}
	for _, name := range sortedKeys(cfg.BinaryFiles) {
		items = append(items, item{sec: sectionBinary, name: name, raw: string(cfg.BinaryFiles[name]), open: open(name), binary: true})
	}
	// Env is the values as redacted at load, EnvValues as they are; a Config built by hand may
	// have either.
	envNames := sortedKeys(cfg.Env)
	for name := range cfg.EnvValues {
		if _, ok := cfg.Env[name]; !ok {
			envNames = append(envNames, name)
		}
	}
	slices.Sort(envNames)
	for _, name := range envNames {
		v, ok := cfg.EnvValues[name]
		value := v.Reveal()
		if !ok {
			value = cfg.Env[name]
		}
		items = append(items, item{sec: sectionEnv, name: name, raw: value, open: open(name)})
	}
	for _, name := range sortedKeys(cfg.Secrets) {
		items = append(items, item{sec: sectionSecrets, name: name, raw: cfg.Secrets[name].Reveal()})
		secretValues = append(secretValues, cfg.Secrets[name].Reveal())
	}

	hiddenValues := map[string]bool{}
	if view == config.ViewFingerprints {
		for _, it := range items {
			if !it.open && it.raw != "" {
				hiddenValues[it.raw] = true
			}
		}
	}
	secretValues = slices.DeleteFunc(secretValues, func(v string) bool { return len(v) < minKnownSecret })
	slices.SortFunc(secretValues, func(a, b string) int { return len(b) - len(a) }) // a longer one first, whole
	secretValues = slices.Compact(secretValues)
	budget := int64(scrubBudget)

	var secs [sections][]shown
	var toFingerprint [][]byte
	add := func(sec int, name, value string) {
		secs[sec] = append(secs[sec], shown{name: jsonString(name), value: jsonString(value), fp: -1})
	}
	for _, it := range items {
		raw, ok := it.raw, it.open && !hiddenValues[it.raw]
		if ok {
			raw, ok = scrub(raw, secretValues, &budget)
		}
		switch {
		case !ok && view == config.ViewRedacted:
			add(it.sec, it.name, config.Redacted)
		case !ok:
			secs[it.sec] = append(secs[it.sec], shown{name: jsonString(it.name), fp: len(toFingerprint)})
			toFingerprint = append(toFingerprint, []byte(it.raw))
		case it.binary && (raw != it.raw || red.HidesBinary(it.name, []byte(raw))):
			add(it.sec, it.name, config.Redacted)
		case it.binary:
			add(it.sec, it.name, base64.StdEncoding.EncodeToString([]byte(raw)))
		default:
			add(it.sec, it.name, red.Value(it.name, raw))
		}
	}
	if len(toFingerprint) > 0 {
		fps := cfg.Fingerprinter.Fingerprints(toFingerprint)
		for s := range secs {
			for i := range secs[s] {
				if e := &secs[s][i]; e.fp >= 0 {
					e.value = jsonString(fps[e.fp])
				}
			}
		}
	}

	var head bytes.Buffer
	head.WriteString(`{"environment":`)
	head.Write(jsonString(cut(cfg.Environment)))
	head.WriteString(`,"release":`)
	head.Write(jsonString(cut(cfg.Release)))
	head.WriteString(`,"version":`)
	head.Write(jsonString(cut(build.Version)))
	head.WriteString(`,"logLevel":`)
	head.Write(jsonString(strings.ToLower(cfg.LogLevel.String())))
	head.WriteString(`,"port":`)
	head.WriteString(strconv.Itoa(cfg.Port))
	head.WriteString(`,"view":`)
	head.Write(jsonString(string(view)))
	if view == config.ViewFingerprints {
		head.WriteString(`,"fingerprints":`)
		head.Write(jsonString(cfg.Fingerprinter.Scheme()))
	}
	maxBytes := cfg.ViewMaxBytes
	if maxBytes <= 0 {
		maxBytes = config.DefaultViewMaxBytes
	}
	replaced, omitted := bound(&secs, int64(head.Len()), maxBytes)

	out := bytes.NewBuffer(make([]byte, 0, size(&secs, int64(head.Len()))+128))
	out.Write(head.Bytes())
	if replaced+omitted > 0 {
		out.WriteString(`,"truncated":{"values":` + strconv.Itoa(replaced) + `,"omitted":` + strconv.Itoa(omitted) +
			`,"maxBytes":` + strconv.FormatInt(maxBytes, 10) + `}`)
	}
	for s, entries := range secs {
		out.WriteString(`,"` + sectionNames[s] + `":{`)
		for i, e := range entries {
			if i > 0 {
				out.WriteByte(',')
			}
			out.Write(e.name)
			out.WriteByte(':')
			out.Write(e.value)
		}
		out.WriteByte('}')
	}
	out.WriteString("}\n")
	return out.Bytes(), nil
}

// truncatedReserve is room kept for the "truncated" field: its digits never need more.
const truncatedReserve = 100

// size is the length of the body: the head, the sections and the entries, and the closing.
func size(secs *[sections][]shown, head int64) int64 {
	n := head + 2 // "}\n"
	for s, entries := range secs {
		n += int64(len(sectionNames[s])) + 6 // ,"name":{}
		for _, e := range entries {
			n += int64(len(e.name) + 1 + len(e.value) + 1) // name:value, (one comma too many a section)
		}
	}
	return n
}

// bound makes the body fit in maxBytes: the largest values are replaced by a marker, then, if
// the names alone are too many, the last entries are left out. It returns how many of each.
func bound(secs *[sections][]shown, head, maxBytes int64) (replaced, omitted int) {
	limit := maxBytes - truncatedReserve
	total := size(secs, head)
	if total <= maxBytes {
		return 0, 0
	}
	type ref struct{ s, i int }
	var refs []ref
	for s, entries := range secs {
		for i := range entries {
			refs = append(refs, ref{s, i})
		}
	}
	slices.SortStableFunc(refs, func(a, b ref) int { return len(secs[b.s][b.i].value) - len(secs[a.s][a.i].value) })
	for _, r := range refs {
		if total <= limit {
			break
		}
		e := &secs[r.s][r.i]
		marker := jsonString("[truncated: " + strconv.Itoa(len(e.value)) + " bytes, over the " +
			strconv.FormatInt(maxBytes, 10) + " bytes of /config]")
		if len(marker) >= len(e.value) {
			break // the rest are smaller still
		}
		total -= int64(len(e.value) - len(marker))
		e.value = marker
		replaced++
	}
	for s := sections - 1; s >= 0 && total > limit; s-- {
		for len(secs[s]) > 0 && total > limit {
			e := secs[s][len(secs[s])-1]
			total -= int64(len(e.name) + 1 + len(e.value) + 1)
			secs[s] = secs[s][:len(secs[s])-1]
			omitted++
		}
	}
	return replaced, omitted
}

// scrub replaces every occurrence of each secret value in s by Redacted. It reports false, and
// s unchanged, when the budget of bytes to scan runs out first.
func scrub(s string, secrets []string, budget *int64) (string, bool) {
	for _, secret := range secrets {
		if *budget -= int64(len(s)); *budget < 0 {
			return s, false
		}
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, config.Redacted)
		}
	}
	return s, true
}

// cut bounds a header string to maxHeaderValue bytes, marking the cut with "…".
func cut(s string) string {
	if len(s) <= maxHeaderValue {
		return s
	}
	return s[:cutAt(s, maxHeaderValue)] + "…"
}

// jsonString is s as a JSON string, as encoding/json writes it (invalid UTF-8 as U+FFFD).
func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

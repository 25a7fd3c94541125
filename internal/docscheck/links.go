package docscheck

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// The link rule.
//
// Every relative markdown link ([text](path), [text](path#anchor), [text](#anchor), and
// reference definitions) must lead to a file or directory of the repository, and an anchor
// into a markdown file to one of its headings (GitHub's anchors). Links with a scheme
// (https:, mailto:) are not followed.
//
// A code span is taken for a repository path when it is one word that contains a "/" and whose
// first segment is a top-level file or directory of the repository (`internal/deploy/settings.go`,
// `.ci/run`, `./services/api`); it must exist. Placeholders end what is checked: in
// `services/<name>/values-<env>.yaml` only `services` must exist (a segment with <, >, *, {, }
// or "..." is a placeholder). Paths a fresh clone does not hold because the toolkit, CI or the
// user makes them are not checked: what .gitignore names (.cache/, terraform/backend_override.tf)
// and the Optional paths.

// A section titled "Layout" holds a map of the folders: a fenced code block whose lines start
// with a path (or several, comma-separated), then two spaces and what it is; an indented entry
// is inside the last less-indented one that ends with "/". Every path of the map must exist.

// Optional are repository paths a clone may not hold, as patterns anchored at the root (a
// pattern also covers what is below what it matches), each with who makes it.
var Optional = gitignore{
	"deploy/gitops",            // the image pins `go run mage.go render <env> -pins=deploy/gitops` writes and CI commits (docs/gitops.md)
	"services/*/values-*.yaml", // a service's per-environment values file, written when the service differs in that environment
}

// CheckLinks reads each doc and reports relative links and repository paths that lead nowhere.
// root is the repository's root.
func CheckLinks(root string, docs ...string) ([]Problem, int, error) {
	top, err := os.ReadDir(root)
	if err != nil {
		return nil, 0, err
	}
	tops := map[string]bool{}
	for _, e := range top {
		if e.Name() != ".git" {
			tops[e.Name()] = true
		}
	}
	ignored, err := readGitignore(filepath.Join(root, ".gitignore"))
	if err != nil {
		return nil, 0, err
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, 0, err
	}
	anchors := map[string]map[string]bool{} // markdown file -> its anchors
	anchorsOf := func(p string) (map[string]bool, error) {
		if a, ok := anchors[p]; ok {
			return a, nil
		}
		d, err := readDoc(p)
		if err != nil {
			return nil, err
		}
		anchors[p] = d.anchors()
		return anchors[p], nil
	}

	var problems []Problem
	n := 0
	for _, docPath := range docs {
		d, err := readDoc(docPath)
		if err != nil {
			return nil, 0, err
		}
		report := func(i int, text, cause string) {
			problems = append(problems, Problem{File: docPath, Line: i + 1, Text: text, Cause: cause})
		}
		layout := d.layoutSections()
		for _, b := range d.blocks {
			if b.kind == code {
				if layout[b.section] {
					for _, e := range d.layoutEntries(b) {
						n++
						if ignored.match(e.text) || Optional.match(e.text) {
							continue
						}
						if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(e.text))); err != nil {
							report(e.line, e.text, "the layout map names a path that does not exist")
						}
					}
				}
				continue
			}
			for i := b.start; i < b.end; i++ {
				line := d.lines[i]
				noCode := codeSpan.ReplaceAllStringFunc(line, func(s string) string { return strings.Repeat(" ", len(s)) })
				var targets []string
				for _, m := range linkTarget.FindAllStringSubmatch(noCode, -1) {
					targets = append(targets, m[1])
				}
				if m := refTarget.FindStringSubmatch(noCode); m != nil {
					targets = append(targets, m[1])
				}
				for _, t := range targets {
					if hasScheme(t) {
						continue
					}
					n++
					file, anchor, _ := strings.Cut(t, "#")
					target := docPath
					if file != "" {
						unescaped, err := url.PathUnescape(file)
						if err != nil {
							report(i, t, "a link that cannot be read as a path")
							continue
						}
						target = filepath.Join(filepath.Dir(docPath), filepath.FromSlash(unescaped))
						abs, _ := filepath.Abs(target)
						if rel, err := filepath.Rel(absRoot, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
							report(i, t, "a link that leads out of the repository")
							continue
						}
						if _, err := os.Stat(target); err != nil {
							report(i, t, "a link to a file that does not exist")
							continue
						}
					}
					if anchor != "" && strings.HasSuffix(target, ".md") {
						a, err := anchorsOf(target)
						if err != nil {
							return nil, 0, err
						}
						if !a[anchor] {
							report(i, t, fmt.Sprintf("a link to a heading that %s does not have", filepath.Base(target)))
						}
					}
				}
				for _, c := range codeSpans(line) {
					p, ok := repoPath(c, tops)
					if !ok {
						continue
					}
					n++
					if ignored.match(p) || Optional.match(p) {
						continue
					}
					if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
						report(i, c, "a repository path that does not exist")
					}
				}
			}
		}
	}
	return problems, n, nil
}

var scheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

func hasScheme(t string) bool { return scheme.MatchString(t) }

// repoPath says whether a code span is a repository path, and returns the part of it to check:
// up to its first placeholder, without a leading "./" or a trailing "/".
func repoPath(span string, tops map[string]bool) (string, bool) {
	if span == "" || strings.ContainsAny(span, " \t\n") || strings.Contains(span, "://") {
		return "", false
	}
	p := strings.TrimPrefix(span, "./")
	if !strings.Contains(p, "/") {
		return "", false
	}
	segs := strings.Split(p, "/")
	if !tops[segs[0]] {
		return "", false
	}
	var keep []string
	for _, s := range segs {
		if s == "" || strings.ContainsAny(s, "<>*{}…") || strings.Contains(s, "...") {
			break
		}
		keep = append(keep, s)
	}
	return path.Join(keep...), true
}

// gitignore is the root .gitignore, read as far as this check needs: a pattern with a "/"
// (other than at its end) is anchored at the root, one without matches any segment; either
// also covers what is below what it matches. Negations are not supported (there are none).
type gitignore []string

func readGitignore(p string) (gitignore, error) {
	f, err := os.Open(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var g gitignore
	s := bufio.NewScanner(f)
	for s.Scan() {
		l := strings.TrimSpace(s.Text())
		if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "!") {
			g = append(g, strings.TrimSuffix(l, "/"))
		}
	}
	return g, s.Err()
}

func (g gitignore) match(p string) bool {
	segs := strings.Split(p, "/")
	for _, pat := range g {
		if strings.Contains(pat, "/") {
			pat = strings.TrimPrefix(pat, "/")
			n := strings.Count(pat, "/") + 1
			if len(segs) >= n {
				if ok, _ := path.Match(pat, strings.Join(segs[:n], "/")); ok {
					return true
				}
			}
			continue
		}
		for _, s := range segs {
			if ok, _ := path.Match(pat, s); ok {
				return true
			}
		}
	}
	return false
}

// layoutSections are the sections titled "Layout".
func (d *doc) layoutSections() map[int]bool {
	out := map[int]bool{}
	for _, b := range d.blocks {
		if b.kind == heading && strings.EqualFold(strings.TrimSpace(strings.TrimLeft(d.lines[b.start], "#")), "layout") {
			out[b.section] = true
		}
	}
	return out
}

// layoutEntries are the repository paths a layout map's code block names.
func (d *doc) layoutEntries(b block) []figure {
	type parent struct {
		indent int
		path   string
	}
	var stack []parent
	var out []figure
	for i := b.start + 1; i < b.end-1; i++ {
		line := d.lines[i]
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" {
			continue
		}
		indent := len(line) - len(trimmed)
		col, _, _ := strings.Cut(trimmed, "  ")
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		prefix := ""
		if len(stack) > 0 {
			prefix = stack[len(stack)-1].path
		}
		var last string
		for _, entry := range strings.Split(col, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			last = prefix + entry
			out = append(out, figure{line: i, text: strings.TrimSuffix(last, "/")})
		}
		if strings.HasSuffix(last, "/") && !strings.Contains(col, ",") {
			stack = append(stack, parent{indent: indent, path: last})
		}
	}
	return out
}

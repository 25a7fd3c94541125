package docscheck

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// A doc is a markdown document cut into blocks, the units the checks reason about: a heading, a
// paragraph, a list item (with its continuation lines), a table, or a fenced code block. Blocks
// belong to the section of the heading above them (section 0 is what precedes the first
// heading); a section ends at the next heading of any level.
type doc struct {
	path   string
	lines  []string
	blocks []block
}

type blockKind int

const (
	paragraph blockKind = iota
	listItem
	table
	code
	heading
)

type block struct {
	kind       blockKind
	start, end int // line indexes, [start, end)
	section    int
}

var (
	fenceLine   = regexp.MustCompile("^\\s*(```|~~~)")
	headingLine = regexp.MustCompile(`^#{1,6}\s`)
	tableLine   = regexp.MustCompile(`^\s*\|`)
	itemLine    = regexp.MustCompile(`^\s*(?:[-*+]|\d+[.)])\s+`)
)

func readDoc(path string) (*doc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseDoc(path, string(b)), nil
}

func parseDoc(path, text string) *doc {
	d := &doc{path: path, lines: strings.Split(text, "\n")}
	section := 0
	var cur *block
	end := func(i int) {
		if cur != nil {
			cur.end = i
			d.blocks = append(d.blocks, *cur)
			cur = nil
		}
	}
	for i := 0; i < len(d.lines); i++ {
		line := d.lines[i]
		switch {
		case fenceLine.MatchString(line):
			end(i)
			fence := fenceLine.FindStringSubmatch(line)[1]
			j := i + 1
			for j < len(d.lines) && !strings.HasPrefix(strings.TrimSpace(d.lines[j]), fence) {
				j++
			}
			if j == len(d.lines) {
				j-- // an unclosed fence runs to the end
			}
			d.blocks = append(d.blocks, block{kind: code, start: i, end: j + 1, section: section})
			i = j
		case strings.TrimSpace(line) == "":
			end(i)
		case headingLine.MatchString(line):
			end(i)
			section++
			d.blocks = append(d.blocks, block{kind: heading, start: i, end: i + 1, section: section})
		case tableLine.MatchString(line):
			if cur == nil || cur.kind != table {
				end(i)
				cur = &block{kind: table, start: i, section: section}
			}
		case itemLine.MatchString(line):
			end(i)
			cur = &block{kind: listItem, start: i, section: section}
		default:
			if cur == nil || cur.kind == table {
				end(i)
				cur = &block{kind: paragraph, start: i, section: section}
			}
		}
	}
	end(len(d.lines))
	return d
}

// text is the block's lines, joined.
func (d *doc) text(b block) string { return strings.Join(d.lines[b.start:b.end], "\n") }

var codeSpan = regexp.MustCompile("(`+)([^`]|[^`][\\s\\S]*?[^`])(`+)")

// codeSpans are the contents of the inline code spans of a line.
func codeSpans(line string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
		if len(m[1]) == len(m[3]) {
			out = append(out, strings.TrimSpace(m[2]))
		}
	}
	return out
}

// linkTarget finds inline links and images, [text](target "title"), and reference
// definitions, [label]: target.
var (
	linkTarget = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refTarget  = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
)

// prose is a line as read: code spans and link targets blanked (same length, so columns hold).
func prose(line string) string {
	blank := func(s string) string { return strings.Repeat(" ", len(s)) }
	line = codeSpan.ReplaceAllStringFunc(line, blank)
	return linkTarget.ReplaceAllStringFunc(line, func(s string) string {
		i := strings.Index(s, "](")
		return s[:i+1] + blank(s[i+1:])
	})
}

// slug is GitHub's anchor of a heading: lower case, spaces to '-', and every character but
// letters, digits, '-' and '_' dropped.
func slug(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(title)) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// anchors are the anchors of the doc's headings, with GitHub's -1, -2 ... for repeated ones.
func (d *doc) anchors() map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, b := range d.blocks {
		if b.kind != heading {
			continue
		}
		title := strings.TrimLeft(d.lines[b.start], "#")
		title = linkTarget.ReplaceAllStringFunc(title, func(s string) string {
			return s[strings.Index(s, "[")+1 : strings.Index(s, "](")]
		})
		s := slug(title)
		if n := seen[s]; n > 0 {
			out[s+"-"+strconv.Itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

package docscheck

import (
	"regexp"
	"strings"
)

// The figure rule.
//
// A figure is what a reader takes for a measurement:
//   - a number with a unit of time, in prose: `12 s`, `0.6 s`, `2.7-4.8 ms`, `3m`, `24 min`
//     (on a line that mentions CPU, `50m` is millicores, not minutes);
//   - a percentage, in prose: `15.7%`;
//   - a number in a table column whose heading says "ratio".
//
// Every figure must name its source: a command a user can run, written as a code span or a
// line of a fenced code block (`go run mage.go benchDeploy`, `go test -bench ...`, `.ci/lab/images`),
// in the same paragraph, list item or table, or anywhere in the figure's section (from its
// heading to the next heading of any level). Code spans and fenced code are not prose: a
// duration written as code (`DEPLOY_TIMEOUT` default `5m`, `timeout: 30s`) is a value the code
// sets, not a measurement, and needs no source.
//
// A command is a code span or code line that starts, after any VAR=value assignments and a
// "$ " prompt, with one of commandWords and at least one argument (`go run mage.go` with a
// target), or with a script of the repository under .ci/.

var (
	timeFigure    = regexp.MustCompile(`(?:^|[^\w.,/-])(\d+(?:[.,]\d+)?(?:\s*(?:-|–|to)\s*\d+(?:[.,]\d+)?)?\s?(?:ns|µs|us|ms|s|sec|secs|seconds?|min|mins|minutes?|m|h|hours?))\b`)
	percentFigure = regexp.MustCompile(`(?:^|[^\w.,/-])(\d+(?:[.,]\d+)?\s?%)`)
	cpu           = regexp.MustCompile(`(?i)\bcpu\b`)
	assignments   = regexp.MustCompile(`^(?:[A-Za-z_][A-Za-z0-9_]*=(?:"[^"]*"|'[^']*'|\S*)\s+)+`)
)

// commandWords are the programs whose command lines count as a figure's source.
var commandWords = map[string]bool{
	"go": true, "mage": true, "bash": true, "sh": true, "time": true,
	"kind": true, "kubectl": true, "docker": true, "terraform": true, "helm": true, "curl": true,
}

// isCommand says whether code (a code span, or a line of a code block) is a command line.
func isCommand(code string) bool {
	s := strings.TrimSpace(code)
	s = strings.TrimSpace(strings.TrimPrefix(s, "$ "))
	s = assignments.ReplaceAllString(s, "")
	f := strings.Fields(s)
	if len(f) == 0 {
		return false
	}
	if strings.HasPrefix(f[0], ".ci/") {
		return true
	}
	if len(f) >= 3 && f[0] == "go" && f[1] == "run" && f[2] == "mage.go" {
		return len(f) >= 4 // the bootstrap alone runs no target
	}
	return commandWords[f[0]] && len(f) >= 2
}

// namesCommand says whether a block names a command: one of its code spans, or for a code
// block one of its lines.
func (d *doc) namesCommand(b block) bool {
	if b.kind == code {
		for _, l := range d.lines[b.start+1 : max(b.start+1, b.end-1)] {
			if isCommand(l) {
				return true
			}
		}
		return false
	}
	for _, l := range d.lines[b.start:b.end] {
		for _, c := range codeSpans(l) {
			if isCommand(c) {
				return true
			}
		}
	}
	return false
}

// figure is a figure found in a doc.
type figure struct {
	line int // index in doc.lines
	text string
}

// figures lists the figures of a block.
func (d *doc) figures(b block) []figure {
	if b.kind == code {
		return nil
	}
	var out []figure
	for i := b.start; i < b.end; i++ {
		p := prose(d.lines[i])
		for _, re := range []*regexp.Regexp{timeFigure, percentFigure} {
			for _, m := range re.FindAllStringSubmatch(p, -1) {
				f := strings.TrimSpace(m[1])
				if strings.HasSuffix(f, "m") && !strings.HasSuffix(f, " m") && cpu.MatchString(p) {
					continue // CPU millicores
				}
				out = append(out, figure{line: i, text: f})
			}
		}
	}
	if b.kind == table {
		out = append(out, d.ratioCells(b)...)
	}
	return out
}

// ratioCells are the numbers in a table's columns whose heading says "ratio".
func (d *doc) ratioCells(b block) []figure {
	header := cells(d.lines[b.start])
	var cols []int
	for i, h := range header {
		if strings.Contains(strings.ToLower(h), "ratio") {
			cols = append(cols, i)
		}
	}
	var out []figure
	for i := b.start + 2; i < b.end && len(cols) > 0; i++ {
		row := cells(d.lines[i])
		for _, c := range cols {
			if c < len(row) && strings.ContainsAny(row[c], "0123456789") {
				out = append(out, figure{line: i, text: strings.Trim(row[c], " *")})
			}
		}
	}
	return out
}

// cells splits a table row into its cells.
func cells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	row = strings.TrimSuffix(row, "|")
	out := strings.Split(row, "|")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

// CheckFigures reads each doc and reports every figure that names no source (see the figure
// rule above).
func CheckFigures(docs ...string) ([]Problem, int, error) {
	var problems []Problem
	n := 0
	for _, path := range docs {
		d, err := readDoc(path)
		if err != nil {
			return nil, 0, err
		}
		sourced := map[int]bool{} // sections that name a command
		for _, b := range d.blocks {
			if d.namesCommand(b) {
				sourced[b.section] = true
			}
		}
		for _, b := range d.blocks {
			for _, f := range d.figures(b) {
				n++
				if sourced[b.section] {
					continue
				}
				problems = append(problems, Problem{File: path, Line: f.line + 1, Text: f.text,
					Cause: "a figure with no source: name the command that produces it (for example `go run mage.go benchDeploy`) in its paragraph, list item or table, or in its section, with the machine and date it ran on; or write a value the code sets as code"})
			}
		}
	}
	return problems, n, nil
}

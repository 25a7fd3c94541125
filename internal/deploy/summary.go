package deploy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is the end of a deploy's output: one row per service of the environment that the
// run touched or looked at, then the notes and the time of each step.
func (r *Result) Summary(took time.Duration) string {
	var b strings.Builder
	change := "changes applied"
	if !r.Changed {
		change = "no changes"
	}
	fmt.Fprintf(&b, "\ndeployed %s to namespace %s (%s) in %s\n", r.Env, r.Namespace, change, took.Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERVICE\tCHANGE\tIMAGE\tREVISION\tREADY IN\tVERSION\tURL")
	for _, row := range r.Rows {
		ready := "-"
		if row.Ready > 0 {
			ready = row.Ready.Round(100 * time.Millisecond).String()
		}
		img := row.Image.Repository
		if row.Image.Digest != "" {
			img += "@" + short(row.Image.Digest)
		} else if row.Image.Tag != "" {
			img += ":" + row.Image.Tag
		}
		version := "-"
		if v, ok := row.Config["version"].(string); ok {
			version = v
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\t%s\n", row.Service, row.Change, img, row.Revision, ready, version, row.URL)
	}
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	for _, st := range r.Steps {
		fmt.Fprintf(&b, "  %-60s %8s\n", st.Name, st.Took.Round(100*time.Millisecond))
	}
	return b.String()
}

// Summary says what a deploy of env would change.
func (p *PlanResult) Summary(env string) string {
	var b strings.Builder
	if len(p.Changes) == 0 {
		fmt.Fprintf(&b, "\n%s: no changes; every release matches the source\n", env)
	} else {
		fmt.Fprintf(&b, "\n%s: a deploy would change:\n", env)
		for _, name := range slices.Sorted(maps.Keys(p.Changes)) {
			line := p.Changes[name]
			if v := p.Secrets[name]; v != "" {
				line += ", new secret version " + v
			}
			if slices.Contains(p.Builds, name) {
				line += ", image built first"
			}
			fmt.Fprintf(&b, "  %-12s %s\n", name, line)
		}
		b.WriteString("nothing was changed\n")
	}
	for _, name := range slices.Sorted(maps.Keys(p.Drift)) {
		what := "a deploy repairs it"
		if p.Changes[name] != "" {
			what = "its upgrade puts it back"
		}
		fmt.Fprintf(&b, "%s has drifted (%s):\n", name, what)
		for _, line := range p.Drift.Lines(name) {
			fmt.Fprintf(&b, "  %s\n", line)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Terraform)) {
		if p.Changes[name] == "" {
			fmt.Fprintf(&b, "note: Terraform's plan also changes %s (%s): its release differs from the state's record\n", name, p.Terraform[name])
		}
	}
	return b.String()
}

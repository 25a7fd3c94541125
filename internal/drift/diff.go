// Package drift finds where the objects of a Helm release differ from the release's manifest,
// as Flux's helm-controller does: a server-side-apply dry run of each manifest object against
// the live one (so the API server defaults and normalises both sides alike), compared with the
// live object. Fields the manifest does not set (an injected sidecar, replicas under an HPA,
// which the chart leaves out then) never differ; fields a controller owns are not drift. It can
// repair what it finds with a server-side apply of the manifest objects.
package drift

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// segment is one step of a field path: a map key, a list item by its name (or by its index
// when it has none), and the item itself (to match Kubernetes' k:{...} keys of managedFields).
type segment struct {
	key   string
	item  map[string]any
	index int
	list  bool
}

// Field is one field whose live value differs from the manifest's.
type Field struct {
	Path    string // spec.template.spec.containers[api].env[LOG_LEVEL].value
	Live    string // the live value as text ("<none>" when absent, "(hidden)" in a Secret)
	Want    string // the manifest's value
	Manager string // who last set it, from the live object's managedFields ("" when none says)

	segs []segment
}

func (f Field) String() string {
	s := fmt.Sprintf("%s %s -> %s", f.Path, f.Live, f.Want)
	if f.Manager != "" {
		s += " (set by " + f.Manager + ")"
	}
	return s
}

// ignoredTop are the fields of every object that are the server's, not the manifest's.
var ignoredTop = map[string][]string{
	"metadata": {"managedFields", "resourceVersion", "generation", "creationTimestamp", "uid"},
}

// diff lists the fields where want (the dry-run result) and live differ; status is left out.
func diff(want, live map[string]any, hidden bool) []Field {
	var out []Field
	for _, k := range keys(want, live) {
		if k == "status" {
			continue
		}
		w, l := want[k], live[k]
		if skip, ok := ignoredTop[k]; ok {
			w, l = without(w, skip), without(l, skip)
		}
		walk([]segment{{key: k}}, w, l, hidden, &out)
	}
	return out
}

func without(v any, drop []string) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	c := map[string]any{}
	for k, x := range m {
		if !slices.Contains(drop, k) {
			c[k] = x
		}
	}
	return c
}

func walk(path []segment, want, live any, hidden bool, out *[]Field) {
	if empty(want) && empty(live) {
		return
	}
	wm, wok := want.(map[string]any)
	lm, lok := live.(map[string]any)
	if wok && lok {
		for _, k := range keys(wm, lm) {
			walk(append(slices.Clip(path), segment{key: k}), wm[k], lm[k], hidden, out)
		}
		return
	}
	wl, wok := want.([]any)
	ll, lok := live.([]any)
	if wok && lok && named(wl) && named(ll) {
		byName := map[string]map[string]any{}
		for _, x := range ll {
			byName[x.(map[string]any)["name"].(string)] = x.(map[string]any)
		}
		seen := map[string]bool{}
		for _, x := range wl {
			item := x.(map[string]any)
			name := item["name"].(string)
			seen[name] = true
			walk(append(slices.Clip(path), segment{item: item, list: true}), item, byName[name], hidden, out)
		}
		for _, x := range ll {
			if item := x.(map[string]any); !seen[item["name"].(string)] {
				walk(append(slices.Clip(path), segment{item: item, list: true}), nil, item, hidden, out)
			}
		}
		return
	}
	if wok && lok && len(wl) == len(ll) && allMaps(wl) && allMaps(ll) {
		for i := range wl {
			walk(append(slices.Clip(path), segment{index: i, list: true}), wl[i], ll[i], hidden, out)
		}
		return
	}
	if reflect.DeepEqual(want, live) {
		return
	}
	f := Field{Path: pathString(path), Live: show(live), Want: show(want), segs: path}
	if hidden {
		f.Live, f.Want = "(hidden)", "(hidden)"
	}
	*out = append(*out, f)
}

// empty treats an absent field, null, {} and [] alike: the server drops some of them.
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// named reports whether every item of a list is an object with a name: such lists are keyed by
// name in Kubernetes (containers, env, ports, volumes).
func named(l []any) bool {
	for _, x := range l {
		m, ok := x.(map[string]any)
		if !ok {
			return false
		}
		if _, ok := m["name"].(string); !ok {
			return false
		}
	}
	return true
}

func allMaps(l []any) bool {
	for _, x := range l {
		if _, ok := x.(map[string]any); !ok {
			return false
		}
	}
	return true
}

func keys(a, b map[string]any) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func pathString(path []segment) string {
	var b strings.Builder
	for i, s := range path {
		switch {
		case !s.list:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		case s.item != nil:
			fmt.Fprintf(&b, "[%s]", s.item["name"])
		default:
			fmt.Fprintf(&b, "[%d]", s.index)
		}
	}
	return b.String()
}

// show is a value as the report prints it: scalars as they are (long ones cut), objects and
// lists by their size.
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "<none>"
	case map[string]any:
		return fmt.Sprintf("{%d fields}", len(x))
	case []any:
		return fmt.Sprintf("[%d items]", len(x))
	case string:
		if len(x) > 40 {
			return fmt.Sprintf("%q...", x[:40])
		}
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprint(v)
}

// owners are the managers whose managedFields entry holds the field's path.
func owners(managed []managedEntry, path []segment) []string {
	var out []string
	for _, e := range managed {
		if holds(e.fields, path) && !slices.Contains(out, e.manager) {
			out = append(out, e.manager)
		}
	}
	return out
}

type managedEntry struct {
	manager string
	fields  map[string]any
}

// holds walks a FieldsV1 tree ({"f:spec":{"f:replicas":{}}}, list items as k:{"name":"x"} or
// i:<n>) along path.
func holds(tree map[string]any, path []segment) bool {
	node := tree
	for _, s := range path {
		var next any
		switch {
		case !s.list:
			next = node["f:"+s.key]
		case s.item != nil:
			for k, v := range node {
				if rest, ok := strings.CutPrefix(k, "k:"); ok && matchesKey(rest, s.item) {
					next = v
					break
				}
			}
		default:
			next = node[fmt.Sprintf("i:%d", s.index)]
		}
		m, ok := next.(map[string]any)
		if !ok {
			return false
		}
		node = m
	}
	return true
}

// matchesKey reports whether a list item has every field of a managedFields key ({"name":"x"}).
func matchesKey(key string, item map[string]any) bool {
	var fields map[string]any
	if err := json.Unmarshal([]byte(key), &fields); err != nil || len(fields) == 0 {
		return false
	}
	for k, v := range fields {
		if fmt.Sprint(item[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

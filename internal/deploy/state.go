package deploy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
)

// stateKey is the data key of a workspace's Secret, holding the gzip-compressed state JSON.
const stateKey = "tfstate"

// listBySuffix selects the Secrets and Leases of the kubernetes backend's workspaces of a
// project (its secret_suffix).
func listBySuffix(project string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: suffixLabel + "=" + project}
}

// peekState reads the environment's state straight from the kubernetes backend's Secrets,
// instead of terraform init, workspace select, output and show for each workspace. ok is false
// when the state cannot be read this way: another backend (TF_BACKEND_CONFIG), or a Secret in a
// form this does not know; the caller then reads it with terraform. The state is read only,
// never written here: Terraform stays the only writer.
//
// One metadata list names the workspaces and their versions; what each says is parsed once per
// version of its Secret and kept (statecache.go), so a deploy that changed nothing reads no
// state, and one that changed a service reads that service's. Many new versions (a first read,
// another machine's deploy) are read with one list of the Secrets instead of a get each.
func (r *Runner) peekState(ctx context.Context) (st State, ok bool, err error) {
	if r.S.Backend != "" {
		return st, false, nil
	}
	meta, err := metadata.NewForConfig(r.kube)
	if err != nil {
		return st, false, err
	}
	byWorkspace, ok, err := readWorkspaces(ctx, meta, r.clients.CoreV1().Secrets(r.S.StateNamespace), r.S.StateNamespace, r.S.Env, r.S.Project,
		stateCachePath(r.server, r.S.StateNamespace, r.S.Project, r.S.Env))
	if err != nil {
		return st, false, fmt.Errorf("read the state of %s (secrets in %s): %w", r.S.Env, r.S.StateNamespace, err)
	}
	if !ok {
		return st, false, nil
	}
	st, err = mergeStates(r.S.Env, byWorkspace)
	return st, err == nil, err
}

// stateOf decompresses and parses one workspace's Secret; ok is false for a form this does
// not know.
func stateOf(sec *corev1.Secret) (State, bool) {
	raw, found := sec.Data[stateKey]
	if !found {
		return State{}, false
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return State{}, false
	}
	doc, err := io.ReadAll(zr)
	if err != nil {
		return State{}, false
	}
	one, err := parseState(doc)
	return one, err == nil
}

// parseState reads what a Terraform state document (format version 4) says runs: the root
// module's outputs and the service releases among its resources.
func parseState(doc []byte) (State, error) {
	var raw struct {
		Version int    `json:"version"`
		Lineage string `json:"lineage"`
		Serial  int    `json:"serial"`
		Outputs map[string]struct {
			Value json.RawMessage `json:"value"`
		} `json:"outputs"`
		Resources []struct {
			Module string `json:"module"`
			Mode   string `json:"mode"`
			Type   string `json:"type"`
			Name   string `json:"name"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return State{}, err
	}
	if raw.Version != 4 {
		return State{}, fmt.Errorf("state format version %d, not 4", raw.Version)
	}
	st := State{Exists: true, Managed: map[string]bool{}, Serials: map[string]Serial{"": {Lineage: raw.Lineage, Serial: raw.Serial}}}
	outs := map[string]json.RawMessage{}
	for k, v := range raw.Outputs {
		outs[k] = v.Value
	}
	var addrs []string
	for _, res := range raw.Resources {
		if res.Mode != "managed" {
			continue
		}
		addr := res.Type + "." + res.Name
		if res.Module != "" {
			addr = res.Module + "." + addr
		}
		addrs = append(addrs, addr)
	}
	if err := st.fill(outs, addrs); err != nil {
		return State{}, err
	}
	return st, nil
}

// fill sets the state from its root outputs and its resources' addresses, as terraform output
// and show give them, or as the state document holds them.
func (st *State) fill(outs map[string]json.RawMessage, addrs []string) error {
	if v, ok := outs["namespace"]; ok {
		_ = json.Unmarshal(v, &st.Namespace)
	}
	if v, ok := outs["services"]; ok {
		if err := json.Unmarshal(v, &st.Services); err != nil {
			return fmt.Errorf("the state's services output: %w", err)
		}
	}
	if v, ok := outs["releases"]; ok {
		_ = json.Unmarshal(v, &st.Releases)
	}
	if st.Managed == nil {
		st.Managed = map[string]bool{}
	}
	if st.Other == nil {
		st.Other = map[string]bool{}
	}
	for _, a := range addrs {
		if name, ok := strings.CutPrefix(a, `module.service["`); ok {
			svc, rest, _ := strings.Cut(name, `"]`)
			st.Managed[svc] = true
			if rest != ".helm_release.this" {
				st.Other[svc] = true
			}
		}
		if strings.HasPrefix(a, "module.app.") {
			st.Managed["api"] = true // the one release before the monorepo layout: moved to api
		}
	}
	for name := range st.Services {
		if !st.Managed[name] {
			delete(st.Services, name) // an output without its release: not what runs
		}
	}
	return nil
}

// hasLocalState reports whether this checkout holds a state from before state lived in the
// cluster, which only terraform can migrate.
func (r *Runner) hasLocalState() bool {
	for _, p := range []string{
		filepath.Join(r.S.RepoRoot, "terraform", "terraform.tfstate.d"),
		filepath.Join(r.cacheDir, "terraform", "local-states", r.S.Env+".tfstate"),
	} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

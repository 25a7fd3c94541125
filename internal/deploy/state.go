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

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// stateSecretName is where Terraform's kubernetes backend keeps a workspace's state:
// tfstate-<workspace>-<secret_suffix> in the state namespace (its documented naming).
func (r *Runner) stateSecretName() string {
	return "tfstate-" + r.S.Env + "-" + r.S.Project
}

// stateKey is the data key of that Secret, holding the gzip-compressed state JSON.
const stateKey = "tfstate"

// peekState reads the environment's state straight from the kubernetes backend's Secret: one
// GET, instead of terraform init, workspace select, output and show (about 4 s, growing with
// the number of services). ok is false when the state cannot be read this way: another backend
// (TF_BACKEND_CONFIG), or a Secret in a form this does not know (a chunked state); the caller
// then reads it with terraform. The state is read only, never written here: Terraform stays
// the only writer.
func (r *Runner) peekState(ctx context.Context) (st State, ok bool, err error) {
	if r.S.Backend != "" {
		return st, false, nil
	}
	sec, err := r.clients.CoreV1().Secrets(r.S.StateNamespace).Get(ctx, r.stateSecretName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return st, true, nil // no workspace yet: nothing deployed
	}
	if err != nil {
		return st, false, fmt.Errorf("read the state of %s (secret %s/%s): %w", r.S.Env, r.S.StateNamespace, r.stateSecretName(), err)
	}
	raw, found := sec.Data[stateKey]
	if !found {
		return st, false, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return st, false, nil
	}
	doc, err := io.ReadAll(zr)
	if err != nil {
		return st, false, nil
	}
	st, err = parseState(doc)
	if err != nil {
		return st, false, nil
	}
	return st, true, nil
}

// parseState reads what a Terraform state document (format version 4) says runs: the root
// module's outputs and the service releases among its resources.
func parseState(doc []byte) (State, error) {
	var raw struct {
		Version int `json:"version"`
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
	st := State{Exists: true, Managed: map[string]bool{}}
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
	for _, a := range addrs {
		if name, ok := strings.CutPrefix(a, `module.service["`); ok {
			st.Managed[strings.SplitN(name, `"]`, 2)[0]] = true
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

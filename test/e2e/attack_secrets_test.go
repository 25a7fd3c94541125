//go:build integration

package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Attack 7 of issue 22: a deploy that gives only some keys of a service. It keeps the others,
// value for value, says so, changes nothing of the other service, and only SECRET_REMOVE
// drops a key.
func TestAttackAPartialSecretDeployKeepsTheOtherKeys(t *testing.T) {
	p := newProject(t, "psec")
	ns := p.ns("dev")
	dbPassword, token1, token2 := "db-"+randomText(t, 12), "tok-"+randomText(t, 12), "tok-"+randomText(t, 12)
	if _, _, err := p.deploy(repoRoot, "dev", map[string]string{"SECRET_API_DB_PASSWORD": dbPassword, "SECRET_API_API_TOKEN": token1}); err != nil {
		t.Fatal(err)
	}
	first := mountedVersion(t, ns, "api")
	statusRevision := revisionOf(t, ns, "status")

	// Only the token, rotated: what a user gives when one credential changes.
	mark := len(p.out.String())
	res, _, err := p.deploy(repoRoot, "dev", map[string]string{"SERVICES": "api", "SECRET_API_API_TOKEN": token2})
	if err != nil {
		t.Fatal(err)
	}
	out := p.out.String()[mark:]
	second := mountedVersion(t, ns, "api")
	if second == first || res.Secrets["api"] != second {
		t.Fatalf("api mounts %s (was %s, the run wrote %v): want the new version", second, first, res.Secrets)
	}
	data := versionData(t, ns, second)
	if data["db-password"] != dbPassword || data["api-token"] != token2 || len(data) != 2 {
		t.Errorf("%s holds keys %v: want db-password carried over with its value and api-token rotated", second, slices.Sorted(maps.Keys(data)))
	}
	if !strings.Contains(out, "secret keys changed api-token; kept db-password: new version "+second) {
		t.Errorf("the output does not list db-password as kept:\n%s", out)
	}
	checkServes(t, ns, "api", "dev")

	// An explicit removal: plan names the version, deploy writes that one without the key.
	remove := map[string]string{"SERVICES": "api", "SECRET_REMOVE": "api:db-password"}
	plan, err := p.plan(repoRoot, "dev", remove)
	if err != nil {
		t.Fatal(err)
	}
	mark = len(p.out.String())
	res, _, err = p.deploy(repoRoot, "dev", remove)
	if err != nil {
		t.Fatal(err)
	}
	out = p.out.String()[mark:]
	third := mountedVersion(t, ns, "api")
	if plan.Secrets["api"] != third || res.Secrets["api"] != third {
		t.Errorf("plan named %v, deploy wrote %v, api mounts %s: want one version", plan.Secrets, res.Secrets, third)
	}
	if data := versionData(t, ns, third); len(data) != 1 || data["api-token"] != token2 {
		t.Errorf("%s holds keys %v: want api-token alone, unchanged", third, slices.Sorted(maps.Keys(data)))
	}
	if !strings.Contains(out, "secret keys removed db-password; kept api-token: new version "+third) {
		t.Errorf("the output does not list db-password as removed:\n%s", out)
	}

	// Removing a key that is also given is refused before anything.
	if _, _, err := p.deploy(repoRoot, "dev", map[string]string{"SERVICES": "api", "SECRET_REMOVE": "api:api-token", "SECRET_API_API_TOKEN": token1}); err == nil ||
		!strings.Contains(err.Error(), "SECRET_REMOVE removes api's key api-token, and SECRET_API_API_TOKEN gives it: keep one") {
		t.Errorf("removing a given key = %v, want a refusal naming both", err)
	}
	if got := mountedVersion(t, ns, "api"); got != third {
		t.Errorf("the refused run changed api's secret version: %s -> %s", third, got)
	}
	if got := revisionOf(t, ns, "status"); got != statusRevision {
		t.Errorf("status, in no run's SERVICES, went from revision %d to %d", statusRevision, got)
	}
	for _, v := range []string{dbPassword, token1, token2} {
		if strings.Contains(p.out.String(), v) {
			t.Error("a secret value is in the output of deploy or plan")
		}
	}
}

// Attack 6 of issue 22: a password in a VALUES_FILES file. Deploy and plan refuse it before
// any change, naming the variable to use and the way out for a false positive; no revision,
// no Secret and no state change follows, and the value is printed nowhere.
func TestAttackACredentialInAValuesFileIsRefusedBeforeAnyChange(t *testing.T) {
	p := newProject(t, "pval")
	ns := p.ns("dev")
	if _, _, err := p.deploy(repoRoot, "dev", nil); err != nil {
		t.Fatal(err)
	}
	before, serial := namespaceSecrets(t, ns), stateSerial(t, p)

	const value = "S3cr3t"
	file := filepath.Join(t.TempDir(), "db.yaml")
	if err := os.WriteFile(file, []byte("db: {password: "+value+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	extra := map[string]string{"VALUES_FILES": file}
	_, _, deployErr := p.deploy(repoRoot, "dev", extra)
	_, planErr := p.plan(repoRoot, "dev", extra)
	for what, err := range map[string]error{"deploy": deployErr, "plan": planErr} {
		if err == nil {
			t.Errorf("%s with a password in VALUES_FILES succeeded", what)
			continue
		}
		for _, want := range []string{file + ": db.password looks like a credential", "SECRET_API_DB_PASSWORD", "ALLOW_PLAINTEXT_VALUES=db.password"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s's refusal does not name %q:\n%v", what, want, err)
			}
		}
		if strings.Contains(err.Error(), value) {
			t.Errorf("%s's refusal prints the value", what)
		}
	}
	if after := namespaceSecrets(t, ns); !maps.Equal(before, after) {
		t.Errorf("the Secrets of %s changed (a release revision or a secret version):\nbefore %v\nafter  %v", ns, before, after)
	}
	if got := stateSerial(t, p); got != serial {
		t.Errorf("the state changed: %s -> %s", serial, got)
	}
	if strings.Contains(p.out.String(), value) {
		t.Error("the value is in the output")
	}
}

// mountedVersion is the secret version the service's Deployment mounts.
func mountedVersion(t *testing.T, ns, service string) string {
	t.Helper()
	d, err := lab.clients.AppsV1().Deployments(ns).Get(t.Context(), service, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil && strings.HasPrefix(v.Secret.SecretName, service+"-secrets-") {
			return v.Secret.SecretName
		}
	}
	return ""
}

// versionData is what a secret version holds, as text.
func versionData(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	sec, err := lab.clients.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range sec.Data {
		out[k] = string(v)
	}
	return out
}

// namespaceSecrets are the Secrets of ns (Helm's release records and deploy's versions) by
// name, with their resource versions.
func namespaceSecrets(t *testing.T, ns string) map[string]string {
	t.Helper()
	list, err := lab.clients.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range list.Items {
		out[s.Name] = s.ResourceVersion
	}
	return out
}

// stateSerial is the serial and the Secret's resource version of each of dev's Terraform states.
func stateSerial(t *testing.T, p *project) string {
	t.Helper()
	out := map[string]any{}
	for _, sec := range p.stateSecrets(t, "dev") {
		var doc struct {
			Serial int `json:"serial"`
		}
		if err := json.Unmarshal(gunzipBytes(t, sec.Data["tfstate"]), &doc); err != nil {
			t.Fatal(err)
		}
		out[sec.Name] = map[string]any{"serial": doc.Serial, "resourceVersion": sec.ResourceVersion}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

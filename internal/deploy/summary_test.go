package deploy

import (
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/internal/tf"
)

func TestChangedServicesSaysWhatHappensToEachService(t *testing.T) {
	svc := func(name string) string { return `module.service["` + name + `"]` }
	tests := []struct {
		name    string
		changes []tf.Change
		want    map[string]string
	}{
		{"no changes change nothing", nil, map[string]string{}},
		{"a created release is installed",
			[]tf.Change{{Address: svc("api") + ".helm_release.this", Module: svc("api"), Actions: []string{"create"}}},
			map[string]string{"api": "installed"}},
		{"an updated release is upgraded",
			[]tf.Change{{Module: svc("api-gw"), Actions: []string{"update"}}}, map[string]string{"api-gw": "upgraded"}},
		{"a deleted release is removed",
			[]tf.Change{{Module: svc("old"), Actions: []string{"delete"}}}, map[string]string{"old": "removed"}},
		{"a replaced release (delete then create) is upgraded",
			[]tf.Change{{Module: svc("api"), Actions: []string{"delete", "create"}}}, map[string]string{"api": "upgraded"}},
		{"a replaced release (create then delete) is upgraded",
			[]tf.Change{{Module: svc("api"), Actions: []string{"create", "delete"}}}, map[string]string{"api": "upgraded"}},
		{"several services at once",
			[]tf.Change{
				{Module: svc("api"), Actions: []string{"update"}},
				{Module: svc("new"), Actions: []string{"create"}},
				{Module: svc("gone"), Actions: []string{"delete"}},
			},
			map[string]string{"api": "upgraded", "new": "installed", "gone": "removed"}},
		// Not covered: a keyed module of another name, module.other["api"], which changedServices
		// today counts as a service named `module.other["api` (it trims the `"]` suffix even when
		// the module.service[" prefix is absent).
		{"other modules and root resources are ignored",
			[]tf.Change{
				{Module: "module.other", Actions: []string{"create"}},
				{Module: "", Address: "kubernetes_namespace.this", Actions: []string{"create"}},
				{Module: `module.service[""]`, Actions: []string{"create"}},
				{Module: svc("api"), Actions: []string{"update"}},
			},
			map[string]string{"api": "upgraded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := changedServices(tt.changes); !maps.Equal(got, tt.want) {
				t.Errorf("changedServices = %v, want %v", got, tt.want)
			}
		})
	}
	if got := describe(map[string]string{"web": "installed", "api": "upgraded"}); got != "api upgraded, web installed" {
		t.Errorf("describe = %q", got)
	}
}

func TestSummaryHasOneRowPerServiceWithItsChangeAndURL(t *testing.T) {
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	r := &Result{
		Env: "dev", Namespace: "dtap-dev", Changed: true,
		Rows: []Row{
			{Service: "api", Change: "rolled", Image: image.Ref{Repository: "localhost:5001/api", Tag: "src-1", Digest: digest},
				Revision: 4, Ready: 12340 * time.Millisecond, URL: "http://127.0.0.1:30085", Config: map[string]any{"version": "src-1"}},
			{Service: "api-gw", Change: "installed", Image: image.Ref{Repository: "localhost:5001/api-gw", Tag: "src-2"},
				Revision: 1, URL: "none: kubectl -n dtap-dev port-forward svc/api-gw 8080:8080"},
			{Service: "old", Change: "removed"},
		},
		Notes: []string{"api: required pod anti-affinity relaxed"},
		Steps: []Step{{Name: "terraform apply", Took: 3 * time.Second}},
	}
	out := r.Summary(65 * time.Second)
	lines := strings.Split(out, "\n")
	row := func(service string) string {
		t.Helper()
		var found []string
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == service {
				found = append(found, l)
			}
		}
		if len(found) != 1 {
			t.Fatalf("%d rows for %s in:\n%s", len(found), service, out)
		}
		return found[0]
	}
	checks := []struct {
		service string
		want    []string
	}{
		{"api", []string{"rolled", "localhost:5001/api@sha256:0123456789ab ", " 4 ", "12.3s", "src-1", "http://127.0.0.1:30085"}},
		{"api-gw", []string{"installed", "localhost:5001/api-gw:src-2", " 1 ", "none: kubectl -n dtap-dev port-forward svc/api-gw 8080:8080"}},
		{"old", []string{"removed"}},
	}
	for _, c := range checks {
		l := row(c.service)
		for _, w := range c.want {
			if !strings.Contains(l, w) {
				t.Errorf("row of %s lacks %q: %q", c.service, w, l)
			}
		}
	}
	for _, want := range []string{"deployed dev to namespace dtap-dev (changes applied) in 1m5s", "SERVICE", "CHANGE", "URL",
		"note: api: required pod anti-affinity relaxed", "terraform apply"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}

	r.Changed = false
	if out := r.Summary(time.Second); !strings.Contains(out, "(no changes)") {
		t.Errorf("summary without changes:\n%s", out)
	}
}

// TestKeptServicesAreThoseTheStateHoldsAndTheRunLeavesAlone: a run restricted to api passes
// status back as it was applied; a service whose folder is gone stops the run, naming it and
// CONFIRM_REMOVE, unless CONFIRM_REMOVE names it, and then it is left out (removed).
func TestKeptServicesAreThoseTheStateHoldsAndTheRunLeavesAlone(t *testing.T) {
	api, status := services.Service{Name: "api", Dir: "services/api"}, services.Service{Name: "status", Dir: "services/status"}
	st := State{
		Managed:  map[string]bool{"api": true, "status": true, "old": true},
		Services: map[string]ServiceInputs{"api": {ImageTag: "a"}, "status": {ImageTag: "s"}, "old": {ImageTag: "o"}},
	}
	r := &Runner{S: Settings{Env: "dev", Namespace: "dtap-dev", All: []services.Service{api, status}, Run: []services.Service{api}}, Out: io.Discard}
	_, err := r.kept(st, Live{})
	if err == nil || !strings.Contains(err.Error(), "service old is deployed in dev, but its folder services/old is gone") || !strings.Contains(err.Error(), "CONFIRM_REMOVE=old") {
		t.Fatalf("kept with a gone folder = %v, want a refusal naming old and CONFIRM_REMOVE=old", err)
	}
	r.S.ConfirmRemove = []string{"old"}
	keep, err := r.kept(st, Live{})
	if err != nil {
		t.Fatal(err)
	}
	if len(keep) != 1 || keep["status"].ImageTag != "s" {
		t.Errorf("kept = %v, want status alone, as applied (api is in the run, old is removed)", keep)
	}
}

// TestARowIsUntouchedWhateverItsPodsReadiness: a service the run did not change is untouched
// even while its pods are not all ready; promotion notes and tests go by that.
func TestARowIsUntouchedWhateverItsPodsReadiness(t *testing.T) {
	for change, want := range map[string]bool{
		"unchanged": true, "unchanged (0/1 pods ready)": true,
		"rolled": false, "installed": false, "upgraded": false, "failed, rolled back to 3": false,
	} {
		if got := (Row{Change: change}).Untouched(); got != want {
			t.Errorf("Row{Change: %q}.Untouched() = %v, want %v", change, got, want)
		}
	}
}

package deploy

import (
	"maps"
	"testing"

	helmrelease "helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/dtap-platform/monorepo/internal/release"
)

// running is what runs of one service: its release's newest revision and its Deployment,
// annotated with the fingerprint it was applied with.
func running(l Live, name, fingerprint string, status helmrelease.Status) Live {
	l.Releases[name] = release.Meta{Version: 3, Status: status}
	d := appsv1.Deployment{}
	d.Annotations = map[string]string{fingerprintAnnotation: fingerprint}
	l.Deployments[name] = d
	return l
}

func liveOf() Live {
	return Live{Releases: map[string]release.Meta{}, Deployments: map[string]appsv1.Deployment{}}
}

func inputsWith(fingerprint string) ServiceInputs {
	return ServiceInputs{ImageRepository: "r/x", ImageTag: "t", Values: []string{"a: 1\n", "# set by mage deploy\nfingerprint: " + fingerprint + "\n"}}
}

func TestChangesFollowTheFingerprintsAndNothingElse(t *testing.T) {
	want := &Desired{Want: map[string]*Want{"api": {Fingerprint: "aaa"}, "web": {Fingerprint: "bbb"}}, Kept: map[string]ServiceInputs{}}
	managed := State{Exists: true, Managed: map[string]bool{"api": true, "web": true},
		Services: map[string]ServiceInputs{"api": inputsWith("aaa"), "web": inputsWith("bbb")}}
	both := func() Live {
		return running(running(liveOf(), "api", "aaa", helmrelease.StatusDeployed), "web", "bbb", helmrelease.StatusDeployed)
	}
	tests := []struct {
		name   string
		st     func(State) State
		live   func(Live) Live
		remove []string
		want   map[string]string
	}{
		{"everything as desired changes nothing", nil, nil, nil, map[string]string{}},
		{"a release with another fingerprint is upgraded", nil, func(l Live) Live {
			return running(l, "web", "old", helmrelease.StatusDeployed)
		}, nil, map[string]string{"web": "upgraded"}},
		{"a release that is not deployed is upgraded again", nil, func(l Live) Live {
			return running(l, "api", "aaa", helmrelease.StatusFailed)
		}, nil, map[string]string{"api": "upgraded"}},
		{"a missing release is installed", nil, func(l Live) Live {
			delete(l.Releases, "web")
			return l
		}, nil, map[string]string{"web": "installed"}},
		{"a release the state does not hold goes through Terraform (adoption)", func(s State) State {
			delete(s.Managed, "api")
			delete(s.Services, "api")
			return s
		}, nil, nil, map[string]string{"api": "upgraded"}},
		{"a state that recorded other inputs goes through Terraform", func(s State) State {
			s.Services["api"] = inputsWith("zzz")
			return s
		}, nil, nil, map[string]string{"api": "upgraded"}},
		{"a release whose folder is gone is removed only when confirmed", func(s State) State {
			s.Managed["old"] = true
			return s
		}, nil, []string{"old"}, map[string]string{"old": "removed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := State{Exists: true, Managed: maps.Clone(managed.Managed), Services: maps.Clone(managed.Services)}
			live := both()
			if tt.st != nil {
				st = tt.st(st)
			}
			if tt.live != nil {
				live = tt.live(live)
			}
			if got := want.Changes(st, live, tt.remove); !maps.Equal(got, tt.want) {
				t.Errorf("Changes = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInputsFingerprintReadsDeploysOwnDocument(t *testing.T) {
	if got := inputsFingerprint(inputsWith("abc")); got != "abc" {
		t.Errorf("inputsFingerprint = %q, want abc", got)
	}
	if got := inputsFingerprint(ServiceInputs{}); got != "" {
		t.Errorf("inputsFingerprint of no values = %q, want empty", got)
	}
}

func TestParseStateReadsOutputsAndReleases(t *testing.T) {
	doc := `{"version":4,"outputs":{"namespace":{"value":"dtap-dev","type":"string"},
	"services":{"value":{"api":{"image_repository":"r/api","image_tag":"t","image_digest":"","values":["x"]},"gone":{"image_repository":"r/g","image_tag":"t"}},"sensitive":true}},
	"resources":[{"module":"module.service[\"api\"]","mode":"managed","type":"helm_release","name":"this"},
	{"mode":"data","type":"x","name":"y"}]}`
	st, err := parseState([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Exists || st.Namespace != "dtap-dev" || !st.Managed["api"] || len(st.Managed) != 1 {
		t.Errorf("state = %+v, want dtap-dev with api managed", st)
	}
	if _, ok := st.Services["gone"]; ok || st.Services["api"].ImageRepository != "r/api" {
		t.Errorf("services = %+v, want api only (gone has no release)", st.Services)
	}
	if _, err := parseState([]byte(`{"version":3}`)); err == nil {
		t.Error("parseState accepted a state format it does not know")
	}
}

package deploy

import (
	"strings"
	"testing"
)

// A bare destroy goes only where this checkout deployed: settings that now point at another
// kubeconfig, context, namespace or kind of target are refused, naming each difference.
func TestDeployedMatchesRefusesAnotherPlace(t *testing.T) {
	recorded := Deployed{Env: "staging", Namespace: "dtap-staging", Kubeconfig: "/home/a/.kube/config", Context: "stage-eu"}
	same := Settings{Env: "staging", Namespace: "dtap-staging", Kubeconfig: "/home/a/.kube/config", KubeContext: "stage-eu"}
	if err := recorded.Matches(same); err != nil {
		t.Fatalf("Matches(the recorded place) = %v", err)
	}
	tests := []struct {
		name   string
		change func(*Settings)
		want   string
	}{
		{"another kubeconfig", func(s *Settings) { s.Kubeconfig = "/tmp/prod-config" }, "kubeconfig /tmp/prod-config, not the recorded /home/a/.kube/config"},
		{"another context", func(s *Settings) { s.KubeContext = "prod-eu" }, `context "prod-eu", not the recorded "stage-eu"`},
		{"another namespace", func(s *Settings) { s.Namespace = "shop-staging" }, "namespace shop-staging, not the recorded dtap-staging"},
		{"the local cluster instead", func(s *Settings) { s.Local = true }, "target the local kind cluster, not the recorded a kubeconfig cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := same
			tt.change(&s)
			err := recorded.Matches(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "destroy -env=staging") {
				t.Errorf("Matches = %v, want a refusal with %q and the fix", err, tt.want)
			}
		})
	}
	local := Deployed{Env: "dev", Namespace: "dtap-dev", Kubeconfig: "/repo/.cache/kind/kubeconfig", Local: true}
	if err := local.Matches(Settings{Env: "dev", Namespace: "dtap-dev", Local: true, Kubeconfig: "/other/checkout/.cache/kind/kubeconfig"}); err != nil {
		t.Errorf("the local cluster's kubeconfig is written per run, so its path must not matter: %v", err)
	}
}

func TestDestroyRefusesAnotherClusterBehindTheSameNames(t *testing.T) {
	rec := Deployed{Env: "dev", Server: "https://127.0.0.1:40001", ClusterUID: "uid-a"}
	for _, tc := range []struct {
		name, server, uid string
		ok                bool
	}{
		{"the recorded cluster", "https://127.0.0.1:40001", "uid-a", true},
		{"the recorded cluster at a new address", "https://127.0.0.1:40999", "uid-a", true},
		{"a switched context: another cluster", "https://team.example:6443", "uid-b", false},
		{"the same address, another cluster (recreated)", "https://127.0.0.1:40001", "uid-b", false},
		{"no right to read kube-system: the server decides", "https://127.0.0.1:40001", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rec.SameCluster(tc.server, tc.uid)
			if (err == nil) != tc.ok {
				t.Fatalf("SameCluster(%s, %s) = %v, want ok %v", tc.server, tc.uid, err, tc.ok)
			}
			if err != nil && (!strings.Contains(err.Error(), "uid-a") || !strings.Contains(err.Error(), tc.server)) {
				t.Errorf("the refusal does not name both clusters: %v", err)
			}
		})
	}
	if err := (Deployed{Env: "dev"}).SameCluster("https://x", "u"); err != nil {
		t.Errorf("a record without an identity (older) is refused: %v", err)
	}
}

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

package deploy

import (
	"strings"
	"testing"
)

func TestPromoteFollowsThePipelineUnlessAReasonIsGiven(t *testing.T) {
	env := func(name, upstream string) Settings { return Settings{Env: name, Upstream: upstream} }
	tests := []struct {
		name     string
		from, to Settings
		skip     string
		want     string // part of the error; "" for none
	}{
		{"from the upstream", env("staging", "test"), env("prod", "staging"), "", ""},
		{"past the upstream is refused, naming it", env("dev", ""), env("staging", "test"), "",
			"staging's images come from test (environments.yaml upstream), not dev; nothing was done. Promote from test (go run mage.go promote test staging)"},
		{"past the upstream with a reason", env("dev", ""), env("staging", "test"), "hotfix INC-42", ""},
		{"a blank reason is no reason", env("dev", ""), env("staging", "test"), "  ", "-skip"},
		{"into an environment built from source", env("test", "dev"), env("dev", ""), "", "dev has no upstream in environments.yaml"},
		{"a reason where none is needed", env("staging", "test"), env("prod", "staging"), "because", "-skip is not needed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckUpstream(tt.from, tt.to, tt.skip)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckUpstream = %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("CheckUpstream = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

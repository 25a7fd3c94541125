package deploy

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSmokeReadsTheEnvironmentOfAConfigOfAnySize(t *testing.T) {
	big := strings.Repeat("x", 3<<20) // a 3 MB ConfigMap file, as /config shows it
	tests := []struct {
		name, body, env string
		wantErr         string
	}{
		{"a small config", `{"environment":"dev","version":"src-1","config":{"a":"b"}}`, "dev", ""},
		{"a config of megabytes, the environment after it", `{"config":{"files":{"big":"` + big + `"},"list":[1,[2,{"c":3}]]},"environment":"dev","version":"src-1"}`, "dev", ""},
		{"another environment", `{"environment":"test"}`, "dev", "reports environment test, want dev"},
		{"not JSON", `<html>`, "dev", "not a JSON object"},
		{"a truncated document", `{"environment":"dev","config":{"a":`, "dev", "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/config" {
					_, _ = w.Write([]byte(tt.body))
				}
			}))
			defer srv.Close()
			cfg, err := Smoke(t.Context(), srv.URL, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Smoke = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || cfg["version"] != "src-1" {
				t.Fatalf("Smoke = %v, %v; want the version read", cfg, err)
			}
		})
	}
}

// TestASmokeCheckAsksAgainOnlyWhatAskingAgainCanCure: a lost port-forward or a draining pod is
// asked again until it answers; a service that answers as another environment is not; a check
// that never passes gives its last error when the time is up.
func TestASmokeCheckAsksAgainOnlyWhatAskingAgainCanCure(t *testing.T) {
	calls, said := 0, 0
	again := func(error) { said++ }
	err := retrySmoke(t.Context(), time.Minute, func() error {
		if calls++; calls < 3 {
			return errors.New("lost connection to pod")
		}
		return nil
	}, again)
	if err != nil || calls != 3 || said != 2 {
		t.Errorf("a check that passes at the third time: %v after %d calls (%d said), want nil after 3 (2 said)", err, calls, said)
	}

	calls = 0
	err = retrySmoke(t.Context(), time.Minute, func() error {
		calls++
		return fmt.Errorf("%w: /config reports environment test, want dev", errWrongEnvironment)
	}, again)
	if !errors.Is(err, errWrongEnvironment) || calls != 1 {
		t.Errorf("another environment: %v after %d calls, want it at once", err, calls)
	}

	calls = 0
	err = retrySmoke(t.Context(), 0, func() error {
		calls++
		return fmt.Errorf("GET /readyz: 503 Service Unavailable (call %d)", calls)
	}, again)
	if err == nil || !strings.Contains(err.Error(), "503") || calls != 1 {
		t.Errorf("time up: %v after %d calls, want the last error", err, calls)
	}
}

package kit

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestBadConfigurationExitsWith2AndNamesTheFix(t *testing.T) {
	for _, tt := range []struct{ env, want string }{
		{"PORT=abc", `PORT="abc": not a number; set PORT to a TCP port between 1 and 65535`},
		{"PORT=70000", `PORT="70000": port out of range`},
		{"LOG_LEVEL=loud", `LOG_LEVEL="loud": unknown log level; use one of debug, info, warn, error`},
		{"SHUTDOWN_TIMEOUT=soon", `SHUTDOWN_TIMEOUT="soon": not a duration`},
		{"CONFIG_DIR=/nope", `CONFIG_DIR="/nope": cannot read directory`},
	} {
		t.Run(tt.env, func(t *testing.T) {
			var stderr bytes.Buffer
			code := Run(t.Context(), Service{Name: "api"}, nil, []string{tt.env}, io.Discard, &stderr)
			if code != ExitConfig || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("run with %s = %d, %q; want %d and %q", tt.env, code, stderr.String(), ExitConfig, tt.want)
			}
		})
	}
}

func TestUnknownSubcommandIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	if code := Run(t.Context(), Service{Name: "api"}, []string{"serve-please"}, nil, io.Discard, &stderr); code != ExitConfig || !strings.Contains(stderr.String(), "unknown command") {
		t.Errorf("got %d, %q", code, stderr.String())
	}
}

func TestVersionSubcommandPrintsBuildInfo(t *testing.T) {
	var stdout bytes.Buffer
	if code := Run(t.Context(), Service{Name: "api"}, []string{"version"}, nil, &stdout, io.Discard); code != 0 || !strings.Contains(stdout.String(), `"version":"dev"`) {
		t.Errorf("got %d, %q", code, stdout.String())
	}
}

func TestProbeDefaultsToOwnReadyz(t *testing.T) {
	if got := DefaultProbeURL([]string{"PORT=9000"}); got != "http://127.0.0.1:9000/readyz" {
		t.Errorf("defaultProbeURL = %q", got)
	}
	if got := DefaultProbeURL(nil); got != "http://127.0.0.1:8080/readyz" {
		t.Errorf("defaultProbeURL = %q", got)
	}
}

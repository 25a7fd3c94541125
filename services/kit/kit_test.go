package kit

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
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

func TestOverlappingDirsExit2NamingBoth(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	code := Run(t.Context(), Service{Name: "api"}, nil, []string{"CONFIG_DIR=" + dir, "SECRETS_DIR=" + dir}, io.Discard, &stderr)
	if code != ExitConfig || !strings.Contains(stderr.String(), "CONFIG_DIR=") || !strings.Contains(stderr.String(), "SECRETS_DIR=") {
		t.Errorf("got %d, %q; want %d naming CONFIG_DIR and SECRETS_DIR", code, stderr.String(), ExitConfig)
	}
}

// TestRunFlushesEveryLogLineBeforeItReturns: the logs go through a buffering sink, and none
// is lost on the way out: every request's access line is in stdout when Run returns.
func TestRunFlushesEveryLogLineBeforeItReturns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	ctx, stop := context.WithCancel(t.Context())
	var stdout bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, Service{Name: "api"}, nil, []string{"PORT=" + port, "SHUTDOWN_DRAIN=0s"}, &stdout, io.Discard)
	}()
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	const n = 200
	for range n {
		resp, err := http.Get(base + "/config")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	stop()
	if code := <-done; code != ExitOK {
		t.Fatalf("Run = %d", code)
	}
	if got := strings.Count(stdout.String(), `"route":"/config"`); got != n {
		t.Errorf("%d access lines for /config, want %d", got, n)
	}
	if !strings.Contains(stdout.String(), `"msg":"stopped"`) {
		t.Errorf("the last line, written just before Run returns, is missing")
	}
}

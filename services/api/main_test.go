package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests below run this test binary as the real service process (real signals, real exit
// codes): with API_TEST_RUN_MAIN=1 it runs main() instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("API_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func startProcess(t *testing.T, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append([]string{"API_TEST_RUN_MAIN=1"}, env...)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, out
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func status(url string) int {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestSIGTERMDrainsAndExits0 runs the real process: on SIGTERM, /readyz turns 503 while the
// process still serves, and after the drain and shutdown it exits 0. The secret mounted in
// SECRETS_DIR is never in its output.
func TestSIGTERMDrainsAndExits0(t *testing.T) {
	secrets := t.TempDir()
	if err := os.WriteFile(filepath.Join(secrets, "token"), []byte("tok-123-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd, out := startProcess(t, fmt.Sprintf("PORT=%d", port), "SECRETS_DIR="+secrets, "SHUTDOWN_DRAIN=1s", "SHUTDOWN_TIMEOUT=5s")
	deadline := time.Now().Add(10 * time.Second)
	for status(base+"/readyz") != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 10s: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := status(base + "/config"); code != 200 {
		t.Fatalf("/config = %d", code)
	}

	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if code := status(base + "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz right after SIGTERM = %d, want 503", code)
	}
	if code := status(base + "/config"); code != http.StatusOK {
		t.Errorf("config during the drain = %d, want 200", code)
	}
	err := cmd.Wait()
	if err != nil {
		t.Fatalf("process exit: %v, want 0\n%s", err, out)
	}
	if waited := time.Since(sent); waited < time.Second {
		t.Errorf("exited %s after SIGTERM, before the 1s drain was over", waited)
	}
	if strings.Contains(out.String(), "tok-123-secret") {
		t.Errorf("secret value in the process output:\n%s", out)
	}
	lines := 0
	for sc := bufio.NewScanner(strings.NewReader(out.String())); sc.Scan(); lines++ {
		if !strings.HasPrefix(sc.Text(), "{") {
			t.Errorf("log line is not JSON: %q", sc.Text())
		}
	}
	if lines == 0 {
		t.Error("no log output")
	}
}

// TestOverlappingConfigAndSecretsDirsExit2 runs the real process with CONFIG_DIR equal to, or
// around, SECRETS_DIR: it refuses to start, exits 2, and its stderr names both variables.
func TestOverlappingConfigAndSecretsDirsExit2(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "db-password"), []byte("hunter2-do-not-show"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string][]string{
		"the same directory":       {"CONFIG_DIR=" + dir, "SECRETS_DIR=" + dir},
		"secrets inside config":    {"CONFIG_DIR=" + filepath.Dir(dir), "SECRETS_DIR=" + dir},
		"a trailing slash differs": {"CONFIG_DIR=" + dir + "/", "SECRETS_DIR=" + dir},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append([]string{"API_TEST_RUN_MAIN=1", fmt.Sprintf("PORT=%d", freePort(t))}, env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v, want exit status 2\nstderr: %s\nstdout: %s", err, &stderr, &stdout)
			}
			for _, want := range []string{"CONFIG_DIR", "SECRETS_DIR"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not name %s:\n%s", want, &stderr)
				}
			}
			if strings.Contains(stderr.String()+stdout.String(), "hunter2-do-not-show") {
				t.Errorf("a secret value in the output")
			}
		})
	}
}

// TestTheRunningBinaryShowsNoCredentialAndAnswersHTTPByTheBook: /config of the real process in
// the redacted view (dev's) shows no password, in a URL or under a credential's name, and shows
// ordinary values; HEAD answers 200 and DELETE 405 with Allow.
func TestTheRunningBinaryShowsNoCredentialAndAnswersHTTPByTheBook(t *testing.T) {
	const pw = "hunter2"
	credentials := []string{
		"APP_CONNECTION_STRING=postgres://user:" + pw + "@db/app",
		"APP_DATABASE_URL=postgresql://app:" + pw + "@db.internal:5432/app?sslmode=require",
		"APP_REDIS_URL=redis://:" + pw + "@redis:6379/0",
		"APP_WEBHOOK_URL=https://hooks.slack.com/services/T000/B000/" + pw,
		"APP_NOTIFY=https://hooks.slack.com/services/T111/B111/" + pw,
	}
	for _, name := range []string{"DB_PASS", "DB_DSN", "DB_PWD", "PROXY_AUTH", "BEARER", "SERVICE_JWT", "ENCRYPTION_KEY",
		"SESSION_KEY", "TLS_KEY", "SSH_KEY", "AWS_ACCESS_KEY", "HMAC", "PASSWORD_SALT", "GPG_PASSPHRASE", "SMTP_CREDS", "OTP_SEED",
		"DB_PASSWORD", "CLIENT_SECRET", "GITHUB_TOKEN", "API_KEY", "LICENSE"} {
		credentials = append(credentials, "APP_"+name+"="+pw)
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	_, out := startProcess(t, append(credentials, fmt.Sprintf("PORT=%d", port), "CONFIG_VIEW=redacted", "REDACT_NAMES=LICENSE",
		"APP_AUTHOR=Ada Lovelace", "APP_KEYBOARD_LAYOUT=de-nodeadkeys")...)
	deadline := time.Now().Add(10 * time.Second)
	for status(base+"/readyz") != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 10s: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(base + "/config")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if strings.Contains(string(body), pw) {
		t.Errorf("/config shows a password:\n%s", body)
	}
	var cfg struct{ Env map[string]string }
	if err := json.Unmarshal(body, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Env["APP_AUTHOR"] != "Ada Lovelace" || cfg.Env["APP_KEYBOARD_LAYOUT"] != "de-nodeadkeys" {
		t.Errorf("ordinary values are not shown in clear: %v", cfg.Env)
	}
	if got := cfg.Env["APP_CONNECTION_STRING"]; got != "postgres://user:[REDACTED]@db/app" {
		t.Errorf("APP_CONNECTION_STRING = %q, want the URL with its password replaced", got)
	}

	for _, tt := range []struct {
		method string
		status int
		allow  string
	}{{"HEAD", 200, ""}, {"DELETE", 405, "GET, HEAD"}, {"OPTIONS", 204, "GET, HEAD"}} {
		req, _ := http.NewRequest(tt.method, base+"/config", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s /config = %d Allow %q, want %d Allow %q", tt.method, resp.StatusCode, resp.Header.Get("Allow"), tt.status, tt.allow)
		}
	}
}

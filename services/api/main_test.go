package main

import (
	"bufio"
	"bytes"
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

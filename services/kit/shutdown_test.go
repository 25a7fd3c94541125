package kit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dtap-platform/monorepo/services/kit/config"
)

// The tests below run this test binary as a service process (real signals, real exit codes):
// with KIT_TEST_RUN_MAIN=1 it runs Main instead of the tests, and with KIT_TEST_SLOW_LOAD=<d>
// its configuration takes d to load.
func TestMain(m *testing.M) {
	if os.Getenv("KIT_TEST_RUN_MAIN") == "1" {
		if d, err := time.ParseDuration(os.Getenv("KIT_TEST_SLOW_LOAD")); err == nil {
			loadConfig = func(environ []string) (config.Config, error) {
				fmt.Fprintln(os.Stderr, loadingMarker) // the signal handler is in place
				time.Sleep(d)
				return config.Load(environ)
			}
		}
		Main(Service{Name: "kit-test"})
		return
	}
	os.Exit(m.Run())
}

// loadingMarker is what a process with KIT_TEST_SLOW_LOAD writes when its load begins.
const loadingMarker = "kit-test: loading the configuration"

// syncBuffer is a process's output, written by its goroutines and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestASignalWhileLoadingEndsRunAt0: the configuration takes its time to load (a slow volume);
// the signal ends Run at once, exit 0, without serving.
func TestASignalWhileLoadingEndsRunAt0(t *testing.T) {
	loading, release := make(chan struct{}), make(chan struct{})
	defer func(f func([]string) (config.Config, error)) { loadConfig = f }(loadConfig)
	loadConfig = func(environ []string) (config.Config, error) {
		close(loading)
		<-release
		return config.Load(environ)
	}
	defer close(release)
	ctx, signal := context.WithCancel(t.Context())
	stdout := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, Service{Name: "api"}, nil, []string{"PORT=" + freePort(t)}, stdout, io.Discard)
	}()
	<-loading
	signal()
	select {
	case code := <-done:
		if code != ExitOK || !strings.Contains(stdout.String(), "shutdown signal while starting") {
			t.Errorf("Run = %d, logs %s; want 0 and the signal logged", code, stdout)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run waited for the load to end")
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// process is this test binary started as a service.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	base string
}

func startService(t *testing.T, env ...string) *process {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append([]string{"KIT_TEST_RUN_MAIN=1", "PORT=" + port}, env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &process{cmd: cmd, out: out, base: "http://127.0.0.1:" + port}
}

func (p *process) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(p.base + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 30s:\n%s", p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exit waits for the process to exit, at most within, and returns its exit code and how long it
// took from since.
func (p *process) exit(t *testing.T, since time.Time, within time.Duration) (int, time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
		return p.cmd.ProcessState.ExitCode(), time.Since(since)
	case <-time.After(within):
		t.Fatalf("still running %s after SIGTERM:\n%.2000s", within, p.out)
		return -1, 0
	}
}

// TestSIGTERMWhileLoadingExits0: a process whose configuration takes 30 s to load exits 0 at
// once on SIGTERM.
func TestSIGTERMWhileLoadingExits0(t *testing.T) {
	p := startService(t, "KIT_TEST_SLOW_LOAD=30s")
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(p.out.String(), loadingMarker); {
		if time.Now().After(deadline) {
			t.Fatalf("the load did not begin within 30s:\n%s", p.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, took := p.exit(t, sent, 5*time.Second)
	if code != 0 || took > 2*time.Second {
		t.Errorf("exit %d %s after SIGTERM, want 0 at once:\n%s", code, took, p.out)
	}
}

// largeConfig is a CONFIG_DIR whose /config is about 40 MB: far more than the socket buffers
// hold, so that a client that stops reading keeps its request in flight.
func largeConfig(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for i := range 40 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("blob-%02d", i)), chunk, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"CONFIG_DIR=" + dir, "CONFIG_VIEW=redacted", "CONFIG_VIEW_MAX_BYTES=64Mi"}
}

// download starts GET /config on its own connection, reads its head and first MiB, and returns
// the response to read on.
func download(t *testing.T, base, id string) (*http.Response, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := io.WriteString(conn, "GET /config HTTP/1.1\r\nHost: x\r\nX-Request-Id: "+id+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/config: %v %v", resp, err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	return resp, conn
}

// accessLine is the access line of the request with id, decoded; nil when there is none.
func accessLine(out, id string) map[string]any {
	for l := range strings.SplitSeq(out, "\n") {
		if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, `"request_id":"`+id+`"`) {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil {
				return m
			}
		}
	}
	return nil
}

// TestSIGTERMDuringALargeDownload: SIGTERM comes while a client downloads a /config of 40 MB.
// A client that reads on gets the whole body, and the process exits 0 once it is sent; a client
// that stalls has its request ended at the shutdown timeout, with an access line that says so,
// and the process exits 0 within drain + timeout + a second.
func TestSIGTERMDuringALargeDownload(t *testing.T) {
	env := largeConfig(t)
	t.Run("the download completes", func(t *testing.T) {
		p := startService(t, append(env, "SHUTDOWN_DRAIN=300ms", "SHUTDOWN_TIMEOUT=20s")...)
		p.waitReady(t)
		resp, _ := download(t, p.base, "reads-on")
		sent := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond) // past the drain: the shutdown waits for this request
		rest, err := io.Copy(io.Discard, resp.Body)
		if err != nil || rest+1<<20 != resp.ContentLength || resp.ContentLength < 40<<20 {
			t.Errorf("read %d of %d bytes: %v", rest+1<<20, resp.ContentLength, err)
		}
		code, took := p.exit(t, sent, 20*time.Second)
		line := accessLine(p.out.String(), "reads-on")
		if code != 0 || line == nil || line["status"] != float64(200) || line["bytes"] != float64(resp.ContentLength) || line["aborted"] != nil {
			t.Errorf("exit %d after %s, access line %v:\n%.3000s", code, took, line, p.out)
		}
	})
	t.Run("a stalled download is ended at the timeout", func(t *testing.T) {
		const drain, timeout = 300 * time.Millisecond, time.Second
		p := startService(t, append(env, "SHUTDOWN_DRAIN="+drain.String(), "SHUTDOWN_TIMEOUT="+timeout.String())...)
		p.waitReady(t)
		download(t, p.base, "stalls") // and reads no more
		sent := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		code, took := p.exit(t, sent, 10*time.Second)
		line := accessLine(p.out.String(), "stalls")
		if code != 0 || took > drain+timeout+2*time.Second {
			t.Errorf("exit %d %s after SIGTERM, want 0 within drain + timeout + ShutdownForceWait:\n%.3000s", code, took, p.out)
		}
		if line == nil || line["aborted"] != "shutdown deadline" || line["level"] != "WARN" {
			t.Errorf("access line of the stalled download: %v\n%.3000s", line, p.out)
		}
	})
}

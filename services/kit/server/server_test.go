package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dtap-platform/monorepo/services/kit/config"
)

const secretValue = "s3cr3t-do-not-show"

// syncBuffer is a log sink that the server's goroutines and the test can share.
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

// configDoc is the JSON of GET /config, as a client reads it.
type configDoc struct {
	Environment  string `json:"environment"`
	Release      string `json:"release"`
	Version      string `json:"version"`
	LogLevel     string `json:"logLevel"`
	Port         int    `json:"port"`
	View         string `json:"view"`
	Fingerprints string `json:"fingerprints"`
	Truncated    *struct {
		Values   int   `json:"values"`
		Omitted  int   `json:"omitted"`
		MaxBytes int64 `json:"maxBytes"`
	} `json:"truncated"`
	Config       map[string]string `json:"config"`
	ConfigBase64 map[string]string `json:"configBase64"`
	Env          map[string]string `json:"env"`
	Secrets      map[string]string `json:"secrets"`
}

// testConfig is a configuration in the redacted view, as dev runs.
func testConfig() config.Config {
	return config.Config{
		View: config.ViewRedacted,
		Port: 18081, LogLevel: slog.LevelDebug, Environment: "dev", Release: "api-dev",
		ShutdownDrain: 200 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Files:   map[string]string{"greeting": "hello"},
		Env:     map[string]string{"APP_FEATURE": "on"},
		Secrets: map[string]config.Secret{"db-password": secretValue},
	}
}

// newTestServer is a server as kit.Run builds it: access lines written straight to the log
// output. Its logs are written synchronously, so a test reads them right after a request.
func newTestServer(t *testing.T) (*Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := New(testConfig(), slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BuildInfo{Version: "1.2.3", Go: "go1.26.0"}, WithAccessLog(logs))
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

func do(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body is not JSON: %v: %q", err, rec.Body.String())
	}
	return m
}

func TestEndpointsAnswerWithStatusAndJSON(t *testing.T) {
	s, _ := newTestServer(t)
	s.ready.Store(true)
	tests := []struct {
		method, path string
		status       int
		field, want  string
	}{
		{"GET", PathHealthz, 200, "status", "ok"},
		{"GET", PathReadyz, 200, "status", "ready"},
		{"GET", PathVersion, 200, "go", "go1.26.0"},
		{"GET", PathConfig, 200, "environment", "dev"},
		{"GET", "/no/such/path", 404, "error", "no route for this path"},
		{"POST", PathConfig, 405, "error", "method not allowed for this path"},
		{"DELETE", PathHealthz, 405, "error", "method not allowed for this path"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := do(t, s.Router(), tt.method, tt.path)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if got := decode(t, rec)[tt.field]; got != tt.want {
				t.Errorf("%s = %v, want %q", tt.field, got, tt.want)
			}
		})
	}
}

func TestReadyzIs503UntilServing(t *testing.T) {
	s, _ := newTestServer(t)
	if rec := do(t, s.Router(), "GET", PathReadyz); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz before Run = %d, want 503", rec.Code)
	}
}

func TestConfigShowsEverythingButSecretValues(t *testing.T) {
	s, logs := newTestServer(t)
	rec := do(t, s.Router(), "GET", PathConfig)
	body := rec.Body.String()
	var got configDoc
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Environment != "dev" || got.Release != "api-dev" || got.Version != "1.2.3" || got.LogLevel != "debug" ||
		got.Port != 18081 || got.Config["greeting"] != "hello" || got.Env["APP_FEATURE"] != "on" {
		t.Errorf("/config = %s", body)
	}
	if got.Secrets["db-password"] != config.Redacted {
		t.Errorf("secret key must be listed with a redacted value: %s", body)
	}
	if strings.Contains(body, secretValue) || strings.Contains(logs.String(), secretValue) {
		t.Errorf("secret value leaked:\nbody: %s\nlogs: %s", body, logs)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", rec.Header().Get("Cache-Control"))
	}
}

func TestAPanicBecomesALoggedJSON500AndTheServerSurvives(t *testing.T) {
	s, logs := newTestServer(t)
	s.Router().Get("/boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })

	rec := do(t, s.Router(), "GET", "/boom")
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	if got := decode(t, rec)["error"]; got != "Internal Server Error" {
		t.Errorf("error = %v", got)
	}
	if !strings.Contains(logs.String(), `"panic":"kaboom"`) || !strings.Contains(logs.String(), `"stack":`) {
		t.Errorf("panic not logged with its stack: %s", logs)
	}
	if rec := do(t, s.Router(), "GET", PathHealthz); rec.Code != http.StatusOK {
		t.Errorf("after a panic, healthz = %d", rec.Code)
	}
}

func TestAccessLogHasOneJSONLinePerRequest(t *testing.T) {
	s, logs := newTestServer(t)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", PathConfig, nil)
	req.Header.Set("X-Request-Id", "req-42")
	s.Router().ServeHTTP(rec, req)

	var line map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &line); err != nil {
		t.Fatalf("want exactly one JSON line, got %q: %v", logs, err)
	}
	want := map[string]any{"msg": "request", "method": "GET", "route": PathConfig, "status": float64(200), "request_id": "req-42"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access line %s = %v, want %v (line: %v)", k, line[k], v, line)
		}
	}
	if _, ok := line["duration_ms"]; !ok {
		t.Errorf("access line has no duration_ms: %v", line)
	}
}

func TestMetricsLabelRoutesByPatternNotByRawPath(t *testing.T) {
	s, _ := newTestServer(t)
	s.Router().Get("/items/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, p := range []string{"/items/1", "/items/2", "/items/3", "/nope/a", "/nope/b"} {
		do(t, s.Router(), "GET", p)
	}
	do(t, s.Router(), "GET", PathConfig)

	body := do(t, s.Router(), "GET", PathMetrics).Body.String()
	for _, want := range []string{
		`http_requests_total{code="204",method="GET",route="/items/{id}"} 3`,
		`http_requests_total{code="404",method="GET",route="unmatched"} 2`,
		`http_requests_total{code="200",method="GET",route="/config"} 1`,
		`http_request_duration_seconds_count{code="204",method="GET",route="/items/{id}"} 3`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, raw := range []string{`route="/items/1"`, `route="/nope/a"`} {
		if strings.Contains(body, raw) {
			t.Errorf("metrics carry a raw path label %s", raw)
		}
	}
	if n, err := testutil.GatherAndCount(s.registry, MetricRequests); err != nil || n != 4 {
		t.Errorf("%s series = %d (%v), want 4: one per route, method and code", MetricRequests, n, err)
	}
}

func TestMetricsBoundTheMethodLabel(t *testing.T) {
	s, _ := newTestServer(t)
	do(t, s.Router(), "BREW", PathConfig)
	if body := do(t, s.Router(), "GET", PathMetrics).Body.String(); !strings.Contains(body, `method="other"`) || strings.Contains(body, "BREW") {
		t.Errorf("non-standard method not folded into other")
	}
}

// TestShutdownDrainsThenFinishesInFlightRequests: after the signal, readiness is 503 at once
// while the server still serves; a request in flight when Shutdown starts completes; Run
// returns nil (the process then exits 0).
func TestShutdownDrainsThenFinishesInFlightRequests(t *testing.T) {
	s, logs := newTestServer(t)
	started, release := make(chan struct{}), make(chan struct{})
	s.Router().Get("/slow", func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		writeJSON(w, http.StatusOK, map[string]string{"slow": "done"})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, signal := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, ln) }()
	waitFor(t, func() bool { return get(base+PathReadyz) == 200 })

	slow := make(chan int, 1)
	go func() { slow <- get(base + "/slow") }()
	<-started

	signal() // SIGTERM
	waitFor(t, func() bool { return !s.Ready() })
	if code := get(base + PathReadyz); code != http.StatusServiceUnavailable {
		t.Errorf("readyz during drain = %d, want 503", code)
	}
	if code := get(base + PathHealthz); code != http.StatusOK {
		t.Errorf("healthz during drain = %d, want 200: the server still serves", code)
	}
	// Past the drain delay, Shutdown is under way with /slow still in flight.
	waitFor(t, func() bool { return strings.Contains(logs.String(), "draining") })
	time.Sleep(s.cfg.ShutdownDrain + 100*time.Millisecond)
	close(release)
	if code := <-slow; code != http.StatusOK {
		t.Errorf("in-flight request = %d, want 200", code)
	}
	if err := <-runErr; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// TestAHandlerThatWillNotReturnIsAnError: past the shutdown timeout the connections are
// closed; a handler that ignores its context and writes nothing still runs ShutdownForceWait
// later, and Run says so (the process then exits 1).
func TestAHandlerThatWillNotReturnIsAnError(t *testing.T) {
	s, _ := newTestServer(t)
	s.cfg.ShutdownDrain, s.cfg.ShutdownTimeout = 0, 100*time.Millisecond
	started := make(chan struct{})
	s.Router().Get("/stuck", func(http.ResponseWriter, *http.Request) { close(started); time.Sleep(3 * time.Second) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, signal := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, ln) }()
	go get("http://" + ln.Addr().String() + "/stuck")
	<-started
	signal()
	if err := <-runErr; err == nil || !strings.Contains(err.Error(), "1 requests still running 1s after the shutdown timeout (100ms)") {
		t.Errorf("Run = %v, want an error naming the request that would not return", err)
	}
}

func TestServerSetsHardeningLimits(t *testing.T) {
	hs := NewHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	for name, got := range map[string]time.Duration{
		"ReadHeaderTimeout": hs.ReadHeaderTimeout, "ReadTimeout": hs.ReadTimeout,
		"WriteTimeout": hs.WriteTimeout, "IdleTimeout": hs.IdleTimeout,
	} {
		want := map[string]time.Duration{"ReadHeaderTimeout": ReadHeaderTimeout, "ReadTimeout": ReadTimeout,
			"WriteTimeout": WriteTimeout, "IdleTimeout": IdleTimeout}[name]
		if got != want || got <= 0 {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	if hs.MaxHeaderBytes != MaxHeaderBytes || hs.ErrorLog == nil {
		t.Errorf("MaxHeaderBytes = %d, ErrorLog = %v", hs.MaxHeaderBytes, hs.ErrorLog)
	}
	// A slow client gets less time for its headers than for its whole request, and a response
	// gets more time than the request it answers.
	if !(ReadHeaderTimeout < ReadTimeout && ReadTimeout <= WriteTimeout && WriteTimeout <= IdleTimeout) {
		t.Errorf("timeouts out of order: header %s, read %s, write %s, idle %s", ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout)
	}

	s, _ := newTestServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = s.Run(ctx, ln) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A header block over MaxHeaderBytes is refused with 431.
	_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", MaxHeaderBytes+4096)+"\r\n\r\n")
	status, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.Contains(status, "431") {
		t.Errorf("oversized headers: got %q, want 431", status)
	}
}

func get(url string) int {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShutdownEndsAStalledDownloadAtTheDeadlineWithAnAccessLine: a client that stops reading a
// large response holds its request past the shutdown timeout; the server then closes the
// connection, the handler returns, its access line says "aborted":"shutdown deadline", and Run
// returns nil (exit 0): the drain ended every request it had, within its time.
func TestShutdownEndsAStalledDownloadAtTheDeadlineWithAnAccessLine(t *testing.T) {
	s, logs := newTestServer(t)
	s.cfg.ShutdownDrain, s.cfg.ShutdownTimeout = 100*time.Millisecond, 300*time.Millisecond
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	s.Router().Get("/download", func(w http.ResponseWriter, _ *http.Request) {
		for range 2000 { // 128 MiB, far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, signal := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, ln) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /download HTTP/1.1\r\nHost: x\r\nX-Request-Id: stalled-1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, 1<<20)); err != nil { // in flight, then the client stalls
		t.Fatal(err)
	}
	start := time.Now()
	signal()
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("Run = %v, want nil: every request was ended and logged", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within drain + timeout + ShutdownForceWait")
	}
	if took := time.Since(start); took < 400*time.Millisecond || took > 400*time.Millisecond+ShutdownForceWait {
		t.Errorf("Run returned %s after the signal, want the drain and the timeout (400ms), and little more", took)
	}
	var line map[string]any
	for l := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(l, `"request_id":"stalled-1"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line == nil || line["aborted"] != "shutdown deadline" || line["level"] != "WARN" || line["route"] != "/download" {
		t.Errorf("access line of the ended request: %v\nlogs:\n%s", line, logs)
	}
	if !strings.Contains(logs.String(), `"msg":"shutdown timeout: ending the requests still in flight"`) ||
		!strings.Contains(logs.String(), `"ended_at_deadline":1`) {
		t.Errorf("the shutdown does not say what it ended:\n%s", logs)
	}
}

package server

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/dtap-platform/monorepo/services/kit/config"
)

// TestHEADAndOPTIONSAndAllowFollowRFC9110 runs over a real connection, so that net/http's own
// handling of HEAD (no body, the GET's Content-Length) is part of what is checked.
func TestHEADAndOPTIONSAndAllowFollowRFC9110(t *testing.T) {
	s, _ := newTestServer(t)
	s.ready.Store(true)
	s.Router().Post("/items", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) })
	s.Router().Get("/items", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, []string{}) })
	ts := httptest.NewServer(s.Router())
	t.Cleanup(ts.Close)
	getConfig, err := http.Get(ts.URL + PathConfig)
	if err != nil {
		t.Fatal(err)
	}
	_ = getConfig.Body.Close()

	tests := []struct {
		name, method, path string
		status             int
		allow              string
		jsonError          string
	}{
		{"HEAD on /config answers as GET does", "HEAD", PathConfig, 200, "", ""},
		{"HEAD on /healthz answers", "HEAD", PathHealthz, 200, "", ""},
		{"HEAD on /metrics answers", "HEAD", PathMetrics, 200, "", ""},
		{"HEAD on a service's GET route answers", "HEAD", "/items", 200, "", ""},
		{"HEAD on no route is 404", "HEAD", "/nope", 404, "", ""},
		{"DELETE on /config is 405 with Allow", "DELETE", PathConfig, 405, "GET, HEAD", "method not allowed for this path"},
		{"POST on /healthz is 405 with Allow", "POST", PathHealthz, 405, "GET, HEAD", "method not allowed for this path"},
		{"PUT on a service route lists its methods", "PUT", "/items", 405, "GET, HEAD, POST", "method not allowed for this path"},
		{"an unknown method on /config is 405 with Allow", "BREW", PathConfig, 405, "GET, HEAD", "method not allowed for this path"},
		{"an unknown method on no route is 404", "BREW", "/nope", 404, "", "no route for this path"},
		{"OPTIONS on /config is 204 with Allow", "OPTIONS", PathConfig, 204, "GET, HEAD", ""},
		{"OPTIONS on a service route lists its methods", "OPTIONS", "/items", 204, "GET, HEAD, POST", ""},
		{"OPTIONS on no route is 404", "OPTIONS", "/nope", 404, "", "no route for this path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, ts.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if got := strings.Join(resp.Header.Values("Allow"), ", "); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if tt.method == "HEAD" {
				if len(body) != 0 {
					t.Errorf("HEAD has a body: %q", body)
				}
				if tt.path == PathConfig && resp.ContentLength != getConfig.ContentLength {
					t.Errorf("HEAD Content-Length = %d, GET's is %d", resp.ContentLength, getConfig.ContentLength)
				}
			}
			if tt.jsonError != "" {
				var e map[string]any
				if err := json.Unmarshal(body, &e); err != nil || e["error"] != tt.jsonError || e["status"] != float64(tt.status) {
					t.Errorf("body = %s, want a JSON error %q with its status", body, tt.jsonError)
				}
			}
		})
	}
}

func TestHEADIsCountedAsHEADOnTheGETRoute(t *testing.T) {
	s, logs := newTestServer(t)
	do(t, s.Router(), "HEAD", PathConfig)
	line := onlyLine(t, logs.String())
	if line["method"] != "HEAD" || line["route"] != PathConfig || line["status"] != float64(200) {
		t.Errorf("access line %v", line)
	}
	if body := do(t, s.Router(), "GET", PathMetrics).Body.String(); !strings.Contains(body, `http_requests_total{code="200",method="HEAD",route="/config"} 1`) {
		t.Errorf("HEAD not counted on the route pattern")
	}
}

var generatedID = regexp.MustCompile(`^[0-9a-v]{12}-[0-9]{6,}$`)

func TestRequestIDIsBoundedInLengthAndCharset(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		keep   bool
	}{
		{"a UUID is kept", []string{"3f2b8c1e-4d5a-4e6f-9a8b-7c6d5e4f3a2b"}, true},
		{"a trace-style id is kept", []string{"Root=1-67891233-abcdef012345678912345678"}, true},
		{"128 characters are kept", []string{strings.Repeat("a", MaxRequestIDLength)}, true},
		{"129 characters are replaced", []string{strings.Repeat("a", MaxRequestIDLength+1)}, false},
		{"60 KiB are replaced", []string{strings.Repeat("x", 60<<10)}, false},
		{"a space is replaced", []string{"abc def"}, false},
		{"a quote is replaced", []string{`abc"def`}, false},
		{"a control character is replaced", []string{"abc\x1bdef"}, false},
		{"non-ASCII is replaced", []string{"café"}, false},
		{"an empty id is replaced", []string{""}, false},
		{"two ids are replaced", []string{"a", "b"}, false},
		{"no header gets one", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, logs := newTestServer(t)
			var seen, kits string
			s.Router().Get("/id", func(w http.ResponseWriter, r *http.Request) {
				seen, kits = middleware.GetReqID(r.Context()), RequestID(r.Context())
			})
			req := httptest.NewRequest("GET", "/id", nil)
			for _, v := range tt.header {
				req.Header.Add(RequestIDHeader, v)
			}
			s.Router().ServeHTTP(httptest.NewRecorder(), req)
			logged, _ := onlyLine(t, logs.String())["request_id"].(string)
			if logged != seen || seen != kits {
				t.Errorf("handler saw %q (RequestID %q), access line says %q", seen, kits, logged)
			}
			if tt.keep {
				if seen != tt.header[0] {
					t.Errorf("request id = %q, want the client's %q", seen, tt.header[0])
				}
			} else if !generatedID.MatchString(seen) {
				t.Errorf("request id = %q, want a generated one", seen)
			}
		})
	}
}

func TestAccessLogCutsLongPathsAndMethods(t *testing.T) {
	s, logs := newTestServer(t)
	long := "/" + strings.Repeat("é", 30<<10) // 60 KiB, two bytes a character
	req := httptest.NewRequest("GET", "/", nil)
	req.URL.Path = long
	req.Method = strings.Repeat("M", 1000)
	s.Router().ServeHTTP(httptest.NewRecorder(), req)
	line := onlyLine(t, logs.String())
	path, _ := line["path"].(string)
	if len(path) > MaxLoggedPath+len("…") || !strings.HasSuffix(path, "…") || !strings.HasPrefix(long, strings.TrimSuffix(path, "…")) {
		t.Errorf("logged path is %d bytes (%q...), want at most %d and a … at the cut", len(path), path[:min(len(path), 20)], MaxLoggedPath)
	}
	if !utf8.ValidString(path) {
		t.Errorf("the cut split a character")
	}
	if m, _ := line["method"].(string); len(m) > MaxLoggedMethod+len("…") {
		t.Errorf("logged method is %d bytes", len(m))
	}
	if len(logs.String()) > 2*MaxLoggedPath+512 {
		t.Errorf("the access line is %d bytes", len(logs.String()))
	}
}

// TestAccessLineIsWhatSlogWrites: the hand-encoded line and the one built through the slog
// handler have the same fields and values, but for time and duration.
func TestAccessLineIsWhatSlogWrites(t *testing.T) {
	fast, fastLogs := newTestServer(t)
	slowLogs := &syncBuffer{}
	slow, err := New(testConfig(), slog.New(slog.NewJSONHandler(slowLogs, nil)), fast.build)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{PathConfig, "/nope/\"quoted\"\\back\tslash", "/ünïcode/\u2028", "/%ff%fe"} {
		for _, s := range []*Server{fast, slow} {
			req := httptest.NewRequest("GET", "/", nil)
			req.URL, _ = url.Parse(path)
			if req.URL == nil {
				req.URL = &url.URL{Path: path}
			}
			req.Header.Set(RequestIDHeader, "same-id")
			s.Router().ServeHTTP(httptest.NewRecorder(), req)
		}
	}
	fastLines, slowLines := strings.Split(strings.TrimSpace(fastLogs.String()), "\n"), strings.Split(strings.TrimSpace(slowLogs.String()), "\n")
	if len(fastLines) != len(slowLines) {
		t.Fatalf("%d lines against %d", len(fastLines), len(slowLines))
	}
	for i := range fastLines {
		var f, s map[string]any
		if err := json.Unmarshal([]byte(fastLines[i]), &f); err != nil {
			t.Fatalf("not JSON: %q: %v", fastLines[i], err)
		}
		if err := json.Unmarshal([]byte(slowLines[i]), &s); err != nil {
			t.Fatal(err)
		}
		if _, err := time.Parse(time.RFC3339Nano, f["time"].(string)); err != nil {
			t.Errorf("time %q, slog writes %q", f["time"], s["time"])
		}
		delete(f, "time")
		delete(s, "time")
		delete(f, "duration_ms")
		delete(s, "duration_ms")
		fj, _ := json.Marshal(f)
		sj, _ := json.Marshal(s)
		if string(fj) != string(sj) {
			t.Errorf("line %d:\n fast %s\n slog %s", i, fj, sj)
		}
	}
}

func TestAppendMillisReadsAsSlogsFloat(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, 10 * time.Microsecond, 123 * time.Microsecond, time.Millisecond,
		1500 * time.Microsecond, 12*time.Millisecond + 340*time.Microsecond, 3 * time.Second, 90*time.Minute + 7*time.Microsecond} {
		want := strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', -1, 64)
		if got := string(appendMillis(nil, d)); got != want {
			t.Errorf("appendMillis(%s) = %s, want %s", d, got, want)
		}
		f, _ := strconv.ParseFloat(want, 64)
		if math.Abs(f-float64(d.Microseconds())/1000) > 1e-9 {
			t.Errorf("%s reads back as %v", want, f)
		}
	}
}

func TestAnErrorStatusWithoutABodyGetsAJSONOne(t *testing.T) {
	s, _ := newTestServer(t)
	s.Router().Get("/teapot", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	rec := do(t, s.Router(), "GET", "/teapot")
	if rec.Code != http.StatusTeapot || decode(t, rec)["error"] != "I'm a teapot" {
		t.Errorf("got %d %q", rec.Code, rec.Body)
	}
}

func TestConfigRedactsFilesAndShowsBinaryFilesAsBase64(t *testing.T) {
	cfg := testConfig()
	cfg.Files = map[string]string{"db.url": "postgres://app:hunter2@db/app", "greeting": "hello"}
	cfg.BinaryFiles = map[string][]byte{"logo.bin": {0xff, 0x00, 0x01}, "tls.key": {0x30, 0x82}}
	cfg.Env = map[string]string{"APP_DB_PASS": "hunter2", "APP_AUTHOR": "ada"}
	body, got := configOf(t, cfg)
	if strings.Contains(body, "hunter2") {
		t.Errorf("a password is shown: %s", body)
	}
	want := map[string]string{
		"config db.url": "postgres://app:[REDACTED]@db/app", "config greeting": "hello",
		"configBase64 logo.bin": "/wAB", "configBase64 tls.key": config.Redacted,
		"env APP_DB_PASS": config.Redacted, "env APP_AUTHOR": "ada",
	}
	gotFlat := map[string]string{}
	for k, v := range got.Config {
		gotFlat["config "+k] = v
	}
	for k, v := range got.ConfigBase64 {
		gotFlat["configBase64 "+k] = v
	}
	for k, v := range got.Env {
		gotFlat["env "+k] = v
	}
	for k, v := range want {
		if gotFlat[k] != v {
			t.Errorf("%s = %q, want %q", k, gotFlat[k], v)
		}
	}
}

// TestConfigHidesCredentialsInFilesThatAreNotUTF8: a Latin-1 application.properties with a
// password was shown whole, base64-encoded; it is now [REDACTED], while a binary file without
// a credential stays base64-encoded.
func TestConfigHidesCredentialsInFilesThatAreNotUTF8(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"application.properties": "# R\xe9glages\ndb.url=jdbc:postgresql://db/app\ndb.password=hunter2\n",
		"messages.properties":    "greeting=Bonjour \xe0 tous\n",
		"logo.bin":               "\xff\x00\x01",
		"app.yaml":               "db:\n  password: |\n    hunter2\n  user: app\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load([]string{"CONFIG_DIR=" + dir, "CONFIG_VIEW=redacted"})
	if err != nil {
		t.Fatal(err)
	}
	body, got := configOf(t, cfg)
	want := map[string]string{
		"application.properties": config.Redacted,
		"messages.properties":    base64.StdEncoding.EncodeToString([]byte(files["messages.properties"])),
		"logo.bin":               "/wAB",
	}
	for name, v := range want {
		if got.ConfigBase64[name] != v {
			t.Errorf("configBase64[%s] = %q, want %q", name, got.ConfigBase64[name], v)
		}
	}
	if got.Config["app.yaml"] != "db:\n  password: |\n    [REDACTED]\n  user: app" {
		t.Errorf("config[app.yaml] = %q", got.Config["app.yaml"])
	}
	for _, b64 := range got.ConfigBase64 {
		if raw, _ := base64.StdEncoding.DecodeString(b64); strings.Contains(string(raw), "hunter2") {
			t.Errorf("a password is shown base64-encoded: %s", body)
		}
	}
	if strings.Contains(body, "hunter2") {
		t.Errorf("a password is shown: %s", body)
	}
}

// FuzzRequestIDAndPathBounds: whatever id and path a client sends, the access line is one
// valid JSON line, its request id is the client's only when valid (and otherwise a generated
// one), and its path is bounded.
func FuzzRequestIDAndPathBounds(f *testing.F) {
	for _, seed := range [][2]string{
		{"req-42", "/config"},
		{"", "/"},
		{strings.Repeat("a", MaxRequestIDLength), "/" + strings.Repeat("b", MaxLoggedPath)},
		{strings.Repeat("a", MaxRequestIDLength+1), "/" + strings.Repeat("é", MaxLoggedPath)},
		{"abc\"def", "/a\"b\\c\nd"},
		{"\xff\xfe", "/\xff\xfe"},
		{"Root=1-67891233-abcdef0123456789", "/\u2028\u2029"},
		{"id with space", "/%2e%2e/%00"},
	} {
		f.Add(seed[0], seed[1])
	}
	s, logs := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, id, path string) {
		logs.mu.Lock()
		logs.b.Reset()
		logs.mu.Unlock()
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path = "/" + path
		req.Header[RequestIDHeader] = []string{id}
		s.Router().ServeHTTP(httptest.NewRecorder(), req)

		out := logs.String()
		if strings.Count(out, "\n") != 1 {
			t.Fatalf("want one line, got %q", out)
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(out), &line); err != nil {
			t.Fatalf("not JSON: %v: %q", err, out)
		}
		got, _ := line["request_id"].(string)
		if validRequestID(id) {
			if got != id {
				t.Errorf("a valid id %q was logged as %q", id, got)
			}
		} else if !generatedID.MatchString(got) {
			t.Errorf("an invalid id %q was logged as %q, want a generated one", id, got)
		}
		if len(got) > MaxRequestIDLength {
			t.Errorf("request id of %d bytes", len(got))
		}
		p, _ := line["path"].(string)
		// Counted in characters: each byte that is not UTF-8 is logged as U+FFFD.
		if n := utf8.RuneCountInString(p); n > MaxLoggedPath+1 {
			t.Errorf("logged path of %d characters", n)
		}
		if len(req.URL.Path) <= MaxLoggedPath && utf8.ValidString(req.URL.Path) && !strings.ContainsAny(req.URL.Path, "\u2028\u2029") && p != req.URL.Path {
			t.Errorf("a short path %q was logged as %q", req.URL.Path, p)
		}
	})
}

func newFuzzServer(f *testing.F) (*Server, *syncBuffer) {
	logs := &syncBuffer{}
	s, err := New(testConfig(), slog.New(slog.NewJSONHandler(logs, nil)), BuildInfo{}, WithAccessLog(logs))
	if err != nil {
		f.Fatal(err)
	}
	return s, logs
}

func onlyLine(t *testing.T, logs string) map[string]any {
	t.Helper()
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs)), &line); err != nil {
		t.Fatalf("want exactly one JSON line, got %q: %v", logs, err)
	}
	return line
}

func TestAccessLineTimeIsSlogsTime(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 25, 22, 0, 0, 123456789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 100000, time.FixedZone("CET", 3600)),
	} {
		var slogs strings.Builder
		h := slog.NewJSONHandler(&slogs, nil)
		_ = h.Handle(t.Context(), slog.NewRecord(at, slog.LevelInfo, "request", 0))
		var want map[string]any
		if err := json.Unmarshal([]byte(slogs.String()), &want); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		line := appendAccessLine(nil, at, slog.LevelInfo, requestID{client: "id"}, "GET", "/", "/", 200, 0, 0, false)
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if got["time"] != want["time"] {
			t.Errorf("time %q, slog writes %q", got["time"], want["time"])
		}
	}
}

// TestAnAbortedResponseIsLoggedButNotAsAPanic: http.ErrAbortHandler is net/http's way to cut
// a response short; the kit counts and logs the request and lets net/http close the connection.
func TestAnAbortedResponseIsLoggedButNotAsAPanic(t *testing.T) {
	s, logs := newTestServer(t)
	s.Router().Get("/abort", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		panic(http.ErrAbortHandler)
	})
	ts := httptest.NewServer(s.Router())
	t.Cleanup(ts.Close)
	if resp, err := http.Get(ts.URL + "/abort"); err == nil {
		_, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err == nil {
			t.Error("the aborted response was read whole")
		}
	}
	ts.Close()
	out := logs.String()
	if !strings.Contains(out, `"route":"/abort"`) || strings.Contains(out, "panic while serving") {
		t.Errorf("logs:\n%s", out)
	}
}

// configOf is GET /config of a server over cfg: the body as served, and decoded.
func configOf(t *testing.T, cfg config.Config) (string, configDoc) {
	t.Helper()
	s, err := New(cfg, slog.New(slog.DiscardHandler), BuildInfo{})
	if err != nil {
		t.Fatal(err)
	}
	body := do(t, s.Router(), "GET", PathConfig).Body.String()
	var got configDoc
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	return body, got
}

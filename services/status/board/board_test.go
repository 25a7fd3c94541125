package board

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dtap-platform/monorepo/services/kit/config"
	"github.com/dtap-platform/monorepo/services/kit/server"
)

func TestParseTargetsAcceptsNameURLPairsSortedByName(t *testing.T) {
	got, err := ParseTargets("web=http://web.ns.svc:9000/, api=http://api:8080")
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{{"api", "http://api:8080"}, {"web", "http://web.ns.svc:9000"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ParseTargets = %v, want %v", got, want)
	}
	if got, err := ParseTargets(""); err != nil || len(got) != 0 {
		t.Errorf("empty SERVICE_URLS = %v, %v; want none", got, err)
	}
}

func TestParseTargetsRefusesWhatIsNotAServiceURL(t *testing.T) {
	for _, bad := range []string{
		"api",                           // no URL
		"API=http://api:8080",           // not a DNS label
		"api=ftp://api",                 // not http
		"api=http://user:pw@api:8080",   // credentials
		"api=http://api:8080?x=1",       // query
		"api=http://a:1,api=http://b:2", // twice
		"api=/relative",
	} {
		_, err := ParseTargets(bad)
		var cerr *config.Error
		if err == nil || !errorsAs(err, &cerr) || cerr.Var != EnvTargets || !strings.Contains(err.Error(), "for example") {
			t.Errorf("ParseTargets(%q) = %v, want a config.Error naming %s and the fix", bad, err, EnvTargets)
		}
	}
}

func errorsAs(err error, target **config.Error) bool {
	e, ok := err.(*config.Error)
	*target = e
	return ok
}

// fakeService is a real kit server, so the board reads /version and /readyz as they are.
func fakeService(t *testing.T, version string, ready bool) string {
	t.Helper()
	srv, err := server.New(config.Config{Environment: "test", ShutdownTimeout: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)),
		server.BuildInfo{Version: version, Go: "go1.26.0"})
	if err != nil {
		t.Fatal(err)
	}
	if !ready { // never run: /readyz answers 503
		ts := httptest.NewServer(srv.Router())
		t.Cleanup(ts.Close)
		return ts.URL
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

func TestPollReportsVersionReadinessAndUnreachableServices(t *testing.T) {
	api := fakeService(t, "src-1111", true)
	web := fakeService(t, "src-2222", false)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	b := New("dev", []Target{{"api", api}, {"gone", gone.URL}, {"web", web}}, time.Second)
	if r := b.Report(); r.Services[0].State != "pending" {
		t.Errorf("before the first poll: %+v", r.Services[0])
	}
	b.Poll(t.Context())
	r := b.Report()
	if r.Environment != "dev" || r.Total != 3 || r.Ready != 1 {
		t.Fatalf("report = %+v", r)
	}
	byName := map[string]Check{}
	for _, c := range r.Services {
		byName[c.Name] = c
	}
	if c := byName["api"]; !c.Ready || c.State != "ready" || c.Version != "src-1111" || c.Go != "go1.26.0" || c.CheckedAt.IsZero() {
		t.Errorf("api = %+v", c)
	}
	if c := byName["web"]; c.Ready || c.State != "not-ready" || c.Version != "src-2222" || !strings.Contains(c.Error, "503") {
		t.Errorf("web = %+v", c)
	}
	if c := byName["gone"]; c.Ready || c.State != "unreachable" || c.Error == "" {
		t.Errorf("gone = %+v", c)
	}
}

func TestPageAndJSONShowEveryService(t *testing.T) {
	api := fakeService(t, "src-1111", true)
	b := New("staging", []Target{{"api", api}}, time.Second)
	b.Poll(t.Context())
	r := chi.NewRouter()
	b.Routes(r)
	ts := httptest.NewServer(r)
	defer ts.Close()

	body, resp := get(t, ts.URL+PathPage)
	if resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("page headers: %v", resp.Header)
	}
	for _, want := range []string{`data-name="api"`, "src-1111", ">ready<", "1 of 1 services ready", `name="viewport"`, "/static/status.js"} {
		if !strings.Contains(body, want) {
			t.Errorf("page does not contain %q:\n%s", want, body)
		}
	}
	body, _ = get(t, ts.URL+PathJSON)
	var rep Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.Environment != "staging" || len(rep.Services) != 1 || !rep.Services[0].Ready {
		t.Errorf("status.json = %s (%v)", body, err)
	}
	for _, f := range []string{"/static/status.js", "/static/status.css"} {
		if _, resp := get(t, ts.URL+f); resp.StatusCode != 200 {
			t.Errorf("%s = %d", f, resp.StatusCode)
		}
	}
	if _, resp := get(t, ts.URL+"/static/nothing.js"); resp.StatusCode != 404 {
		t.Errorf("a missing static file answers %d, want 404", resp.StatusCode)
	}
}

func TestPageEscapesWhatServicesReport(t *testing.T) {
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == server.PathVersion {
			_, _ = io.WriteString(w, `{"version":"<script>alert(1)</script>","commit":"x"}`)
		}
	}))
	defer evil.Close()
	b := New("dev", []Target{{"evil", evil.URL}}, time.Second)
	b.Poll(t.Context())
	rec := httptest.NewRecorder()
	b.page(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if strings.Contains(rec.Body.String(), "<script>alert") {
		t.Errorf("a service's version reached the page unescaped:\n%s", rec.Body)
	}
}

func get(t *testing.T, url string) (string, *http.Response) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp
}

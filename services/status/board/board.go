// Package board is the status service's work: it polls each target service for /version and
// /readyz on an interval, keeps the last result of each, and serves them as an HTML page and
// as JSON.
package board

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dtap-platform/monorepo/services/kit"
	"github.com/dtap-platform/monorepo/services/kit/config"
	"github.com/dtap-platform/monorepo/services/kit/server"
)

// The variables the status service reads, besides the kit's.
const (
	EnvTargets  = "SERVICE_URLS"    // name=http://host:port,...: the services to watch (the chart sets it from discovery)
	EnvInterval = "STATUS_INTERVAL" // how often each is checked
	EnvTimeout  = "STATUS_TIMEOUT"  // how long one check may take

	DefaultInterval = 5 * time.Second
	DefaultTimeout  = 2 * time.Second
)

// Routes of the page.
const (
	PathPage = "/"
	PathJSON = "/status.json"
)

// Target is one service to watch: its name and the base URL of its HTTP port.
type Target struct {
	Name string
	URL  string
}

// Check is what the last poll of one target found.
type Check struct {
	Name      string    `json:"name"`
	Version   string    `json:"version"`
	Go        string    `json:"go"` // the Go toolchain it was built with
	Ready     bool      `json:"ready"`
	State     string    `json:"state"` // ready, not-ready, unreachable or pending
	LatencyMS float64   `json:"latencyMs"`
	CheckedAt time.Time `json:"checkedAt"`
	Error     string    `json:"error,omitempty"`
}

// Report is GET /status.json.
type Report struct {
	Environment string    `json:"environment"`
	Services    []Check   `json:"services"`
	Ready       int       `json:"ready"`
	Total       int       `json:"total"`
	GeneratedAt time.Time `json:"generatedAt"`
}

var targetName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ParseTargets reads SERVICE_URLS: comma-separated name=URL pairs, URL http(s)://host[:port].
func ParseTargets(v string) ([]Target, error) {
	var out []Target
	fix := fmt.Sprintf("use name=http://host:port pairs separated by commas, for example %s=api=http://api:8080", EnvTargets)
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, raw, ok := strings.Cut(item, "=")
		if !ok || !targetName.MatchString(name) {
			return nil, &config.Error{Var: EnvTargets, Value: v, Cause: fmt.Sprintf("%q is not name=URL with a DNS-label name", item), Fix: fix}
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			return nil, &config.Error{Var: EnvTargets, Value: v, Cause: fmt.Sprintf("%q is not an http(s) base URL", raw), Fix: fix}
		}
		if slices.ContainsFunc(out, func(t Target) bool { return t.Name == name }) {
			return nil, &config.Error{Var: EnvTargets, Value: v, Cause: fmt.Sprintf("%s is listed twice", name), Fix: fix}
		}
		out = append(out, Target{Name: name, URL: strings.TrimSuffix(u.String(), "/")})
	}
	slices.SortFunc(out, func(a, b Target) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func parseDuration(name, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, &config.Error{Var: name, Value: v, Cause: "not a positive duration", Fix: fmt.Sprintf("use a Go duration, for example %s=%s", name, def)}
	}
	return d, nil
}

// Board holds the last check of every target.
type Board struct {
	env     string
	targets []Target
	timeout time.Duration
	client  *http.Client
	mu      sync.RWMutex
	checks  map[string]Check
}

// New makes a board for targets; nothing is polled until Poll or Run.
func New(env string, targets []Target, timeout time.Duration) *Board {
	b := &Board{env: env, targets: targets, timeout: timeout, checks: map[string]Check{},
		client: &http.Client{Timeout: timeout}}
	for _, t := range targets {
		b.checks[t.Name] = Check{Name: t.Name, State: "pending"}
	}
	return b
}

// Setup is the status service's kit.Service.Setup: it reads its variables, adds its routes
// and polls until ctx is done.
func Setup(ctx context.Context, env kit.Env) error {
	targets, err := ParseTargets(env.Getenv(EnvTargets))
	if err != nil {
		return err
	}
	interval, err := parseDuration(EnvInterval, env.Getenv(EnvInterval), DefaultInterval)
	if err != nil {
		return err
	}
	timeout, err := parseDuration(EnvTimeout, env.Getenv(EnvTimeout), DefaultTimeout)
	if err != nil {
		return err
	}
	b := New(env.Config.Environment, targets, timeout)
	b.Routes(env.Router)
	env.Log.Info("watching", "targets", len(targets), "interval", interval.String())
	go b.Run(ctx, interval)
	return nil
}

// Routes adds the page, its JSON and its static files.
func (b *Board) Routes(r chi.Router) {
	r.Get(PathPage, b.page)
	r.Get(PathJSON, b.json)
	r.Get("/static/*", b.staticFile)
}

// Run polls every target now and then every interval until ctx is done.
func (b *Board) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		b.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll checks every target once, concurrently.
func (b *Board) Poll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range b.targets {
		wg.Go(func() {
			c := b.check(ctx, t)
			b.mu.Lock()
			b.checks[t.Name] = c
			b.mu.Unlock()
		})
	}
	wg.Wait()
}

// check reads the target's /version (what runs) and /readyz (whether it serves).
func (b *Board) check(ctx context.Context, t Target) Check {
	c := Check{Name: t.Name, CheckedAt: time.Now().UTC()}
	var info server.BuildInfo
	if _, err := b.get(ctx, t.URL+server.PathVersion, &info); err == nil {
		c.Version, c.Go = info.Version, info.Go
	}
	start := time.Now()
	code, err := b.get(ctx, t.URL+server.PathReadyz, nil)
	c.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	switch {
	case err != nil:
		c.State, c.Error = "unreachable", err.Error()
	case code == http.StatusOK:
		c.State, c.Ready = "ready", true
	default:
		c.State, c.Error = "not-ready", fmt.Sprintf("/readyz answered %d", code)
	}
	return c
}

func (b *Board) get(ctx context.Context, u string, into any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, err
	}
	if into != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, into); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: not JSON: %w", u, err)
		}
	}
	return resp.StatusCode, nil
}

// Report is the current state of every target, by name.
func (b *Board) Report() Report {
	b.mu.RLock()
	defer b.mu.RUnlock()
	r := Report{Environment: b.env, GeneratedAt: time.Now().UTC(), Services: make([]Check, 0, len(b.targets))}
	for _, t := range b.targets {
		c := b.checks[t.Name]
		r.Services = append(r.Services, c)
		if c.Ready {
			r.Ready++
		}
	}
	r.Total = len(r.Services)
	return r
}

//go:embed static
var static embed.FS

func (b *Board) page(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = io.WriteString(w, renderPage(b.Report()))
}

// renderPage is the HTML page of a report. It is written by hand rather than with
// html/template, which would make every service image 2 MB larger (its reflection keeps the
// linker from dropping unused methods); every value is escaped. static/status.js renders the
// same cards when it refreshes them.
func renderPage(r Report) string {
	e := html.EscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s status</title>
<link rel="stylesheet" href="/static/status.css">
<noscript><meta http-equiv="refresh" content="10"></noscript>
<script src="/static/status.js" defer></script>
</head>
<body>
<header>
  <h1>Status of <span id="env">%s</span></h1>
  <p id="summary" class="summary">%d of %d services ready</p>
</header>
<main>
  <ul id="services" class="services">
`, e(r.Environment), e(r.Environment), r.Ready, r.Total)
	for _, c := range r.Services {
		checked := "not yet"
		if !c.CheckedAt.IsZero() {
			checked = c.CheckedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(&b, `    <li class="service state-%s" data-name="%s">
      <div class="head"><span class="name">%s</span><span class="badge">%s</span></div>
      <dl>
        <dt>version</dt><dd class="version">%s</dd>
        <dt>go</dt><dd class="go">%s</dd>
        <dt>latency</dt><dd class="latency">%.1f ms</dd>
        <dt>checked</dt><dd class="checked"><time datetime="%s">%s</time></dd>
      </dl>
`, e(c.State), e(c.Name), e(c.Name), e(c.State), e(or(c.Version, "unknown")), e(or(c.Go, "unknown")),
			c.LatencyMS, e(checked), e(checked))
		if c.Error != "" {
			fmt.Fprintf(&b, "      <p class=\"error\">%s</p>\n", e(c.Error))
		}
		b.WriteString("    </li>\n")
	}
	if len(r.Services) == 0 {
		b.WriteString("    <li class=\"empty\">No services to watch.</li>\n")
	}
	b.WriteString(`  </ul>
</main>
<footer><p>Refreshes every few seconds · <a href="/status.json">status.json</a></p></footer>
</body>
</html>
`)
	return b.String()
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (b *Board) json(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(b.Report())
}

func (b *Board) staticFile(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	data, err := static.ReadFile(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(data)
}

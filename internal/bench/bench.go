// Package bench measures what the api service's stack (chi routing, request IDs, JSON access
// logs, Prometheus metrics, panic recovery) costs over a bare net/http handler that returns the
// same bytes. Both run in this process on loopback, under the same load, in alternating rounds.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/dtap-platform/monorepo/internal/load"
	"github.com/dtap-platform/monorepo/services/kit/config"
	"github.com/dtap-platform/monorepo/services/kit/server"
)

// Options of a benchmark run.
type Options struct {
	Rounds  int           // alternating rounds per handler
	Round   time.Duration // length of one round
	Workers int           // concurrent connections
}

// Report is the outcome: one summary per handler and the throughput ratio service/bare.
type Report struct {
	Service, Bare load.Result
	Ratio         float64
}

// Run benchmarks GET /config of the real service against the bare handler.
func Run(ctx context.Context, o Options, out io.Writer) (Report, error) {
	dir, err := os.MkdirTemp("", "api-bench-")
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(dir)
	cfg, err := benchConfig(dir)
	if err != nil {
		return Report{}, err
	}
	// The access log is formatted for every request, as in production; only its sink differs.
	srv, err := server.New(cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), server.BuildInfo{Version: "bench"})
	if err != nil {
		return Report{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serviceURL, err := serve(ctx, srv.Run)
	if err != nil {
		return Report{}, err
	}
	body, err := fetch(serviceURL + server.PathConfig)
	if err != nil {
		return Report{}, err
	}
	bareURL, err := serve(ctx, func(ctx context.Context, ln net.Listener) error {
		// The same server settings as the service: only the handler differs.
		hs := server.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}), slog.New(slog.NewJSONHandler(io.Discard, nil)))
		go func() { <-ctx.Done(); _ = hs.Close() }()
		return hs.Serve(ln)
	})
	if err != nil {
		return Report{}, err
	}

	fmt.Fprintf(out, "bench: GET /config (%d bytes), %d workers, %d x %s per handler, alternating\n",
		len(body), o.Workers, o.Rounds, o.Round)
	var rep Report
	targets := []struct {
		name string
		url  string
		sum  *load.Result
	}{
		{"service", serviceURL + server.PathConfig, &rep.Service},
		{"bare", bareURL + "/config", &rep.Bare},
	}
	// A short warm-up of each, so neither pays for first connections and page faults.
	for _, t := range targets {
		if _, err := load.Run(ctx, load.Options{URL: t.url, Duration: o.Round / 4, Workers: o.Workers}); err != nil {
			return rep, err
		}
	}
	for i := 0; i < o.Rounds; i++ {
		for _, t := range targets {
			r, err := load.Run(ctx, load.Options{URL: t.url, Duration: o.Round, Workers: o.Workers})
			if err != nil {
				return rep, err
			}
			fmt.Fprintf(out, "  round %d %-7s %s\n", i+1, t.name, r)
			merge(t.sum, r, i)
		}
	}
	rep.Ratio = rep.Service.Throughput / rep.Bare.Throughput
	fmt.Fprintf(out, "\n%-8s %12s %10s %10s %8s\n", "handler", "req/s", "p50", "p99", "failed")
	for _, t := range targets {
		fmt.Fprintf(out, "%-8s %12.0f %10s %10s %8d\n", t.name, t.sum.Throughput, t.sum.P50, t.sum.P99, t.sum.Failed)
	}
	fmt.Fprintf(out, "ratio service/bare throughput: %.3f (goal >= 0.90)\n", rep.Ratio)
	return rep, nil
}

// merge folds round i into the running summary: throughput and percentiles are averaged over
// rounds, counts are summed.
func merge(sum *load.Result, r load.Result, i int) {
	n := float64(i)
	avg := func(a, b time.Duration) time.Duration { return time.Duration((float64(a)*n + float64(b)) / (n + 1)) }
	sum.Throughput = (sum.Throughput*n + r.Throughput) / (n + 1)
	sum.P50, sum.P99 = avg(sum.P50, r.P50), avg(sum.P99, r.P99)
	sum.Requests += r.Requests
	sum.Failed += r.Failed
}

// benchConfig is a realistic configuration: a few config files, APP_ keys and a secret.
func benchConfig(dir string) (config.Config, error) {
	files := map[string]string{
		"config/greeting": "hello", "config/features": "search,export", "config/limits.json": `{"rps":100,"burst":20}`,
		"secrets/db-password": "bench-secret",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return config.Config{}, err
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			return config.Config{}, err
		}
	}
	return config.Load([]string{
		"APP_ENV=bench", "APP_RELEASE=api-bench", "APP_REGION=local", "LOG_LEVEL=info",
		"CONFIG_DIR=" + filepath.Join(dir, "config"), "SECRETS_DIR=" + filepath.Join(dir, "secrets"),
		"SHUTDOWN_DRAIN=0s",
	})
}

// serve starts run on a fresh loopback listener and returns its base URL.
func serve(ctx context.Context, run func(context.Context, net.Listener) error) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = run(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if resp, err := http.Get(base + server.PathReadyz); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				return base, nil
			}
		}
	}
	return "", fmt.Errorf("bench: %s did not come up within 5s", base)
}

func fetch(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

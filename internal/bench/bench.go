// Package bench measures what the api service's stack (chi routing, request IDs, JSON access
// logs, Prometheus metrics, panic recovery) costs over a bare net/http handler that returns the
// same bytes. Both run in this process on loopback, behind the same http.Server settings, under
// the same load, in alternating rounds.
//
// The service is built as kit.Run builds it, and it writes every access line to a real file
// (through the kit's log sink), not to io.Discard. After the run the bench counts the lines of
// that file and fails unless there is exactly one per request the service answered.
//
// The figure is the median, over the rounds, of each round's ratio of the service's throughput
// to the bare handler's; req/s, p50 and p99 are the medians of the rounds too.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dtap-platform/monorepo/internal/load"
	"github.com/dtap-platform/monorepo/services/kit/config"
	"github.com/dtap-platform/monorepo/services/kit/logs"
	"github.com/dtap-platform/monorepo/services/kit/server"
)

// EnvConnections is the variable that sets Options.Connections for `mage bench`.
const EnvConnections = "BENCH_CONNECTIONS"

// DefaultConnections is the number of connections of `mage bench`.
const DefaultConnections = 16

// Options of a benchmark run.
type Options struct {
	Rounds      int           // alternating rounds per handler
	Round       time.Duration // length of one round
	Connections int           // concurrent connections, each with one request in flight
}

// Connections reads BENCH_CONNECTIONS: empty means DefaultConnections.
func Connections(v string) (int, error) {
	if v == "" {
		return DefaultConnections, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > 4096 {
		return 0, fmt.Errorf("%s=%q: want a number of connections from 1 to 4096, for example %s=64", EnvConnections, v, EnvConnections)
	}
	return n, nil
}

// Round is one round: each handler under the same load, one after the other.
type Round struct {
	Service, Bare load.Result
	Ratio         float64 // Service.Throughput / Bare.Throughput
}

// Report is the outcome: the rounds, and per handler the medians of the rounds.
type Report struct {
	Rounds        []Round
	Service, Bare load.Result // medians of throughput, p50 and p99; requests and failures summed
	Ratio         float64     // the median of the rounds' ratios
	AccessLines   int         // the service's access lines, one per request it answered
}

// Run benchmarks GET /config of the real service against the bare handler.
func Run(ctx context.Context, o Options, out io.Writer) (Report, error) {
	if o.Rounds < 1 || o.Round <= 0 || o.Connections < 1 {
		return Report{}, fmt.Errorf("bench: rounds, round length and connections must be positive: %+v", o)
	}
	dir, err := os.MkdirTemp("", "api-bench-")
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(dir)
	cfg, err := benchConfig(dir)
	if err != nil {
		return Report{}, err
	}

	// The service as kit.Run builds it: every log line, access lines included, through a sink
	// into a real file.
	logPath := filepath.Join(dir, "access.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return Report{}, err
	}
	defer logFile.Close()
	sink := logs.NewSink(logFile)
	defer sink.Close()
	srv, err := server.New(cfg, logs.NewLogger(sink, cfg.LogLevel), server.BuildInfo{Version: "bench"}, server.WithAccessLog(sink))
	if err != nil {
		return Report{}, err
	}
	serviceCtx, stopService := context.WithCancel(ctx)
	defer stopService()
	serviceURL, serviceDone, err := serve(serviceCtx, srv.Run)
	if err != nil {
		return Report{}, err
	}
	body, err := fetch(serviceURL + server.PathConfig)
	if err != nil {
		return Report{}, err
	}
	bareCtx, stopBare := context.WithCancel(ctx)
	defer stopBare()
	bareURL, _, err := serveBare(bareCtx, body)
	if err != nil {
		return Report{}, err
	}

	fmt.Fprintf(out, "bench: GET /config (%d bytes), %d connections, %d x %s per handler, alternating; service logs to %s\n",
		len(body), o.Connections, o.Rounds, o.Round, "a file (O_WRONLY)")
	type target struct{ name, url string }
	service, bare := target{"service", serviceURL + server.PathConfig}, target{"bare", bareURL + "/config"}
	attack := func(t target, d time.Duration) (load.Result, error) {
		r, err := load.Run(ctx, load.Options{URL: t.url, Duration: d, Workers: o.Connections})
		if err == nil && r.Failed > 0 {
			err = fmt.Errorf("bench: %s: %d of %d requests failed: %s %v", t.name, r.Failed, r.Requests, r.Codes(), r.Errors)
		}
		return r, err
	}
	// A short warm-up of each, so neither pays for first connections and page faults.
	for _, t := range []target{service, bare} {
		if _, err := attack(t, o.Round/4); err != nil {
			return Report{}, err
		}
	}
	var rep Report
	for i := range o.Rounds {
		order := []target{service, bare}
		if i%2 == 1 { // alternate which goes first, so neither always runs on a warmer machine
			order = []target{bare, service}
		}
		var round Round
		for _, t := range order {
			r, err := attack(t, o.Round)
			if err != nil {
				return rep, err
			}
			if t == service {
				round.Service = r
			} else {
				round.Bare = r
			}
		}
		round.Ratio = round.Service.Throughput / round.Bare.Throughput
		rep.Rounds = append(rep.Rounds, round)
		fmt.Fprintf(out, "  round %d service %s\n", i+1, round.Service)
		fmt.Fprintf(out, "  round %d bare    %s\n", i+1, round.Bare)
		fmt.Fprintf(out, "  round %d ratio   %.3f\n", i+1, round.Ratio)
	}
	rep.Service = median(rep.Rounds, func(r Round) load.Result { return r.Service })
	rep.Bare = median(rep.Rounds, func(r Round) load.Result { return r.Bare })
	ratios := make([]float64, len(rep.Rounds))
	for i, r := range rep.Rounds {
		ratios[i] = r.Ratio
	}
	rep.Ratio = medianOf(ratios)

	// Every request the service answered has its access line in the file.
	answered, err := requestsAnswered(serviceURL)
	if err != nil {
		return rep, err
	}
	answered++ // the scrape itself
	stopService()
	if err := <-serviceDone; err != nil {
		return rep, fmt.Errorf("bench: the service stopped with %w", err)
	}
	if err := sink.Close(); err != nil {
		return rep, fmt.Errorf("bench: writing the access log: %w", err)
	}
	if rep.AccessLines, err = countAccessLines(logPath); err != nil {
		return rep, err
	}

	fmt.Fprintf(out, "\n%-8s %12s %10s %10s %10s %8s\n", "handler", "req/s", "p50", "p99", "requests", "failed")
	for _, t := range []struct {
		name string
		r    load.Result
	}{{"service", rep.Service}, {"bare", rep.Bare}} {
		fmt.Fprintf(out, "%-8s %12.0f %10s %10s %10d %8d\n", t.name, t.r.Throughput, round(t.r.P50), round(t.r.P99), t.r.Requests, t.r.Failed)
	}
	fmt.Fprintf(out, "access lines: %d in the file, %d requests answered by the service\n", rep.AccessLines, answered)
	fmt.Fprintf(out, "ratio service/bare throughput (median of %d rounds): %.3f (goal >= 0.90)\n", len(rep.Rounds), rep.Ratio)
	if rep.AccessLines != answered {
		return rep, fmt.Errorf("bench: %d access lines for %d requests answered: the log lost or duplicated lines", rep.AccessLines, answered)
	}
	return rep, nil
}

// median is the round with the median throughput's figures: throughput, p50 and p99 are each
// the median of the rounds; requests and failures are summed.
func median(rounds []Round, pick func(Round) load.Result) load.Result {
	var tput []float64
	var p50, p99 []time.Duration
	var sum load.Result
	for _, r := range rounds {
		x := pick(r)
		tput, p50, p99 = append(tput, x.Throughput), append(p50, x.P50), append(p99, x.P99)
		sum.Requests += x.Requests
		sum.Failed += x.Failed
	}
	sum.Throughput = medianOf(tput)
	sum.P50, sum.P99 = medianOf(p50), medianOf(p99)
	return sum
}

func medianOf[T float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// requestsAnswered is the service's own count of the requests it answered: the sum of
// http_requests_total on its /metrics. The scrape is not in it.
func requestsAnswered(base string) (int, error) {
	b, err := fetch(base + server.PathMetrics)
	if err != nil {
		return 0, err
	}
	total := 0.0
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, server.MetricRequests+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("bench: reading %s: %q: %w", server.MetricRequests, line, err)
		}
		total += v
	}
	return int(total), nil
}

// countAccessLines counts the access lines of the log file.
func countAccessLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(`"msg":"request"`)) {
			n++
		}
	}
	return n, sc.Err()
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

// serve starts run on a fresh loopback listener and returns its base URL, and a channel that
// gets run's result.
func serve(ctx context.Context, run func(context.Context, net.Listener) error) (string, <-chan error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if resp, err := http.Get(base + server.PathReadyz); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				return base, done, nil
			}
		}
	}
	return "", nil, fmt.Errorf("bench: %s did not come up within 5s", base)
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

// serveBare serves body from a bare net/http handler behind the same server settings as the
// service's: only the handler differs.
func serveBare(ctx context.Context, body []byte) (string, <-chan error, error) {
	return serve(ctx, func(ctx context.Context, ln net.Listener) error {
		hs := server.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}), slog.New(slog.DiscardHandler))
		go func() { <-ctx.Done(); _ = hs.Close() }()
		return hs.Serve(ln)
	})
}

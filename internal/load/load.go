// Package load drives bounded HTTP load with vegeta and summarises it: throughput, latency
// percentiles and failures. `mage bench` and the zero-downtime rollout test use it. Every run
// is bounded by its duration (and its context), never open-ended.
package load

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Options describe one run against one URL.
type Options struct {
	URL      string
	Duration time.Duration // required: how long to send
	Rate     int           // requests per second; 0 sends as fast as Workers allow
	Workers  int           // concurrent requests; default 8
	Timeout  time.Duration // per request; default 5s
}

// Result summarises a run.
type Result struct {
	Requests    uint64
	Failed      uint64        // transport errors and non-2xx answers
	Throughput  float64       // successful requests per second
	P50, P99    time.Duration // latency percentiles
	Max         time.Duration
	StatusCodes map[string]int
	Errors      []string // distinct errors, as vegeta reports them
}

func (r Result) String() string {
	return fmt.Sprintf("%d requests, %d failed, %.0f req/s, p50 %s, p99 %s, max %s",
		r.Requests, r.Failed, r.Throughput, round(r.P50), round(r.P99), round(r.Max))
}

// Codes renders the status code histogram as "200=5943 503=2".
func (r Result) Codes() string {
	keys := make([]string, 0, len(r.StatusCodes))
	for k := range r.StatusCodes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, r.StatusCodes[k]))
	}
	return strings.Join(parts, " ")
}

// Run sends GET requests to o.URL for o.Duration and returns the summary. It stops early when
// ctx is done.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Duration <= 0 {
		return Result{}, fmt.Errorf("load: a duration is required, so that the run is bounded")
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	w := uint64(o.Workers)
	attacker := vegeta.NewAttacker(
		vegeta.Workers(w), vegeta.MaxWorkers(w), vegeta.Connections(o.Workers),
		vegeta.Timeout(o.Timeout), vegeta.KeepAlive(true),
	)
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: o.URL})
	rate := vegeta.Rate{Freq: o.Rate, Per: time.Second}

	var m vegeta.Metrics
	results := attacker.Attack(targeter, rate, o.Duration, "load")
	done := ctx.Done()
	for res := range results {
		m.Add(res)
		select {
		case <-done:
			attacker.Stop()
			done = nil
		default:
		}
	}
	m.Close()
	return Result{
		Requests:    m.Requests,
		Failed:      m.Requests - uint64(float64(m.Requests)*m.Success+0.5),
		Throughput:  m.Throughput,
		P50:         m.Latencies.P50,
		P99:         m.Latencies.P99,
		Max:         m.Latencies.Max,
		StatusCodes: m.StatusCodes,
		Errors:      m.Errors,
	}, ctx.Err()
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

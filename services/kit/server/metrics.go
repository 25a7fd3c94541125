package server

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// UnmatchedRoute is the route label of requests that matched no route, so that scans of
// random paths cannot grow the metrics without bound.
const UnmatchedRoute = "unmatched"

// Metric names, shared with the tests and dashboards.
const (
	MetricRequests = "http_requests_total"
	MetricDuration = "http_request_duration_seconds"
)

var metricLabels = []string{"route", "method", "code"}

// newRegistry is a private registry, so tests and several servers in one process never clash
// on the global one.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// registerMetrics creates the RED metrics: requests counted and timed per chi route pattern
// (never the raw path), method and status code.
func (s *Server) registerMetrics() {
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests,
		Help: "HTTP requests served, by chi route pattern, method and status code.",
	}, metricLabels)
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricDuration,
		Help:    "HTTP request latency in seconds, by chi route pattern, method and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, metricLabels)
	s.registry.MustRegister(s.requests, s.duration)
}

// observe counts and times one request.
func (s *Server) observe(route, method string, code int, elapsed time.Duration) {
	m := s.series.get(seriesKey{route, method, code}, s.newSeries)
	m.requests.Inc()
	m.duration.Observe(elapsed.Seconds())
}

func (s *Server) newSeries(k seriesKey) *series {
	labels := []string{k.route, k.method, strconv.Itoa(k.code)}
	return &series{requests: s.requests.WithLabelValues(labels...), duration: s.duration.WithLabelValues(labels...)}
}

// seriesKey and series: the metrics of one route, method and code. The labels are bounded
// (route patterns, methodLabel, status codes), and so is the cache.
type seriesKey struct {
	route, method string
	code          int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// seriesCache resolves a label set to its metrics without hashing the labels and locking the
// vector on every request: reads see an immutable map; a new label set copies it.
type seriesCache struct {
	m  atomic.Pointer[map[seriesKey]*series]
	mu sync.Mutex
}

func (c *seriesCache) get(k seriesKey, create func(seriesKey) *series) *series {
	if m := c.m.Load(); m != nil {
		if s := (*m)[k]; s != nil {
			return s
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if s := (*old)[k]; s != nil {
			return s
		}
	}
	next := make(map[seriesKey]*series, 1+len(ptrMap(old)))
	for key, s := range ptrMap(old) {
		next[key] = s
	}
	s := create(k)
	next[k] = s
	c.m.Store(&next)
	return s
}

func ptrMap(m *map[seriesKey]*series) map[seriesKey]*series {
	if m == nil {
		return nil
	}
	return *m
}

// routePattern is the matched chi pattern, read after routing has happened.
func routePattern(rctx *chi.Context) string {
	if rctx != nil {
		if p := rctx.RoutePattern(); p != "" {
			return p
		}
	}
	return UnmatchedRoute
}

// methodLabel keeps the method label bounded: anything non-standard is "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

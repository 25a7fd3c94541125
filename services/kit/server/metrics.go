package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
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

// metrics counts and times requests per chi route pattern (never the raw path), method and
// status code.
func (s *Server) metrics() func(http.Handler) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests,
		Help: "HTTP requests served, by chi route pattern, method and status code.",
	}, metricLabels)
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricDuration,
		Help:    "HTTP request latency in seconds, by chi route pattern, method and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, metricLabels)
	s.registry.MustRegister(requests, duration)

	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			// Reuse the writer wrapper of the access log when there is one.
			ww, ok := w.(middleware.WrapResponseWriter)
			if !ok {
				ww = middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			}
			defer func() {
				route, method, code := routePattern(r), methodLabel(r.Method), strconv.Itoa(ww.Status())
				requests.WithLabelValues(route, method, code).Inc()
				duration.WithLabelValues(route, method, code).Observe(time.Since(start).Seconds())
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// routePattern is the matched chi pattern, read after routing has happened.
func routePattern(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
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

package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes adds the kit's handlers to the router. The request id, metrics, access log and
// recovery are not chi middleware: the front handler (serve) does them around chi.
func (s *Server) routes() {
	r := s.mux
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no route for this path")
	})
	r.MethodNotAllowed(s.methodNotAllowed)

	r.Get(PathHealthz, s.healthz)
	r.Get(PathReadyz, s.readyz)
	r.Get(PathConfig, s.config)
	r.Get(PathVersion, s.version)
	r.Method(http.MethodGet, PathMetrics, promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		Registry: s.registry, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	}))
}

// methodNotAllowed answers a path that has routes, but none for the request's method: 405
// with the Allow header that RFC 9110 requires, or, for OPTIONS, 204 with that header.
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	allow := s.allowed(routingPath(r))
	if allow == "" { // a method chi does not know, on a path with no route at all
		writeError(w, http.StatusNotFound, "no route for this path")
		return
	}
	w.Header().Set("Allow", allow)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeError(w, http.StatusMethodNotAllowed, "method not allowed for this path")
}

// allowMethods are the methods that Allow may list, in its order.
var allowMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace}

// allowed is the Allow header of a path: the methods it has routes for, and HEAD wherever GET
// is (the front handler answers it). OPTIONS is listed only where a service routes it itself.
func (s *Server) allowed(path string) string {
	rctx := chi.NewRouteContext()
	var out []string
	get := false
	for _, m := range allowMethods {
		rctx.Reset()
		if s.mux.Match(rctx, m, path) || (m == http.MethodHead && get) {
			out = append(out, m)
			get = get || m == http.MethodGet
		}
	}
	return strings.Join(out, ", ")
}

// healthz is liveness: the process is alive and serving. It checks no dependency, so a slow
// dependency can never get the pod restarted.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is readiness: configuration is loaded and the process is not shutting down.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// The header values of /config, shared by every response: assigned to the header map
// directly, they cost no canonicalisation and no allocation. net/http only reads them.
var (
	headerJSON    = []string{"application/json"}
	headerNoStore = []string{"no-store"}
)

func (s *Server) config(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h["Content-Type"] = headerJSON
	h["Cache-Control"] = headerNoStore
	h["Content-Length"] = s.configLength
	_, _ = w.Write(s.configJSON)
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.build)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg, "status": status})
}

package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dtap-platform/monorepo/services/kit/config"
)

// routes wires the middleware and the handlers. Order matters: the request ID comes first so
// every log line has it; the access log and metrics sit outside the recoverer so they see the
// 500 a panic becomes; errorBody gives that bare 500 its JSON body.
func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.RequestID)
	r.Use(middleware.RequestLogger(&logFormatter{log: s.log}))
	r.Use(s.metrics())
	r.Use(errorBody)
	r.Use(middleware.Recoverer)

	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no route for this path")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed for this path")
	})

	r.Get(PathHealthz, s.healthz)
	r.Get(PathReadyz, s.readyz)
	r.Get(PathConfig, s.config)
	r.Get(PathVersion, s.version)
	r.Method(http.MethodGet, PathMetrics, promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		Registry: s.registry, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	}))
	return r
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

func (s *Server) config(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", s.configLength)
	_, _ = w.Write(s.configJSON)
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.build)
}

// configView is the JSON shape of GET /config. Secrets are config.Secret values, which
// marshal as "[REDACTED]" whatever they hold.
type configView struct {
	Environment string                   `json:"environment"`
	Release     string                   `json:"release"`
	Version     string                   `json:"version"`
	LogLevel    string                   `json:"logLevel"`
	Port        int                      `json:"port"`
	Config      map[string]string        `json:"config"`
	Env         map[string]string        `json:"env"`
	Secrets     map[string]config.Secret `json:"secrets"`
}

// renderConfig renders /config once: the configuration is immutable for the process's life.
func renderConfig(cfg config.Config, build BuildInfo) ([]byte, error) {
	b, err := json.Marshal(configView{
		Environment: cfg.Environment,
		Release:     cfg.Release,
		Version:     build.Version,
		LogLevel:    strings.ToLower(cfg.LogLevel.String()),
		Port:        cfg.Port,
		Config:      cfg.Files,
		Env:         cfg.Env,
		Secrets:     cfg.Secrets,
	})
	return append(b, '\n'), err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg, "status": status})
}

// errorBody makes an error response that has no body (such as the bare 500 that chi's
// Recoverer writes after a panic) a JSON one, so every error the service returns is JSON.
func errorBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ew := &errorBodyWriter{ResponseWriter: w}
		next.ServeHTTP(ew, r)
		if ew.pending != 0 {
			_ = json.NewEncoder(w).Encode(map[string]any{"error": http.StatusText(ew.pending), "status": ew.pending})
		}
	})
}

type errorBodyWriter struct {
	http.ResponseWriter
	wrote   bool
	pending int // an error status written with no Content-Type and, so far, no body
}

func (w *errorBodyWriter) WriteHeader(code int) {
	if !w.wrote && code >= 400 && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
		w.pending = code
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *errorBodyWriter) Write(b []byte) (int, error) {
	w.wrote = true
	w.pending = 0
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *errorBodyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Package server is every service's HTTP side: the chi router with the kit's handlers and
// probes, metrics and access logs, and a graceful shutdown that drains before it stops. Its
// route and port constants are the contract the chart and the delivery toolkit rely on.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dtap-platform/monorepo/services/kit/config"
)

// Routes and the port name: the chart and its tests use these, so the probes match the service.
const (
	PathConfig  = "/config"
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathMetrics = "/metrics"
	PathVersion = "/version"

	// PortName is the name of the container and Service port.
	PortName = "http"
)

// Hardening limits of the HTTP server.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 64 << 10
)

// BuildInfo identifies the running binary; it is stamped at build time.
type BuildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildTime string `json:"buildTime"`
}

// NewHTTPServer is an http.Server with the service's hardening limits, so that a slow or
// oversized client cannot hold a connection or memory for long.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Server serves one service process.
type Server struct {
	cfg        config.Config
	log        *slog.Logger
	build      BuildInfo
	ready      atomic.Bool
	router     chi.Router
	registry   *prometheus.Registry
	configJSON []byte
	// configLength is len(configJSON), formatted once.
	configLength string
}

// New builds the server and its routes. It is not ready until Run has bound its listener.
func New(cfg config.Config, log *slog.Logger, build BuildInfo) (*Server, error) {
	s := &Server{cfg: cfg, log: log, build: build, registry: newRegistry()}
	body, err := renderConfig(cfg, build)
	if err != nil {
		return nil, fmt.Errorf("render /config: %w", err)
	}
	s.configJSON, s.configLength = body, strconv.Itoa(len(body))
	s.router = s.routes()
	return s, nil
}

// Router is the service's handler. Tests may add routes to it before serving.
func (s *Server) Router() chi.Router { return s.router }

// Ready reports whether /readyz answers 200.
func (s *Server) Ready() bool { return s.ready.Load() }

// Run serves on ln until ctx is done (SIGTERM or SIGINT in main). Then readiness turns to 503
// at once, the server keeps serving for the drain delay so endpoints and load balancers stop
// sending traffic, and finally it shuts down, letting in-flight requests finish within the
// shutdown timeout. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := NewHTTPServer(s.router, s.log)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	s.ready.Store(true)
	s.log.Info("serving", "addr", ln.Addr().String(), "environment", s.cfg.Environment,
		"release", s.cfg.Release, "version", s.build.Version)

	select {
	case err := <-serveErr:
		s.ready.Store(false)
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	s.ready.Store(false)
	s.log.Info("shutdown signal: readiness is now 503, draining", "drain", s.cfg.ShutdownDrain.String())
	if s.cfg.ShutdownDrain > 0 {
		select {
		case <-time.After(s.cfg.ShutdownDrain):
		case err := <-serveErr:
			return fmt.Errorf("serve during drain: %w", err)
		}
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown within %s: %w", s.cfg.ShutdownTimeout, err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	s.log.Info("stopped", "shutdown", time.Since(start).String())
	return nil
}

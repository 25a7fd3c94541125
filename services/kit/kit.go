// Package kit is what every service of this monorepo is built on. A service's main is a few
// lines:
//
//	func main() { kit.Main(kit.Service{Name: "api"}) }
//
// and it gets, with no code of its own: configuration from the environment and mounted
// directories, validated, bad input exiting 2 with the fix (config); a chi router with a
// request id, one JSON access line per request, RED metrics by route pattern and panic
// recovery; GET /config, /healthz, /readyz, /metrics and /version; the SIGTERM drain (server);
// and the `probe` and `version` subcommands (probe). A service adds its own routes and
// background work in Setup.
//
// GET /config fails closed: in the fingerprints view (CONFIG_VIEW=fingerprints, the default,
// and what the chart sets in staging and prod) it shows a value only when its key is public,
// declared in Service.Public or in CONFIG_PUBLIC (the chart's configView.public), and every
// other value as a fingerprint and its length (keyed when the mounted Secret holds
// config-fingerprint-key); CONFIG_VIEW=redacted (dev and test) shows values through the
// redaction rules. Its body is bounded (CONFIG_VIEW_MAX_BYTES, 1 MiB) and always JSON that
// starts with the environment. See packages config and server.
//
// Configuration is read from the environment: see package config for every variable
// (PORT, LOG_LEVEL, APP_*, CONFIG_DIR, SECRETS_DIR, CONFIG_VIEW, CONFIG_PUBLIC,
// CONFIG_VIEW_MAX_BYTES, CONFIG_DIR_MAX_BYTES, REDACT_NAMES, SHUTDOWN_DRAIN,
// SHUTDOWN_TIMEOUT). Logs are JSON lines on stdout, written through a logs.Sink that batches
// them and never drops one; Run flushes it before it returns.
//
// SIGTERM (or SIGINT) is obeyed at any moment. While the configuration loads or Setup runs, the
// process exits 0 at once, serving nothing. While serving, it drains (server.Server.Run):
// readiness 503 for SHUTDOWN_DRAIN, then SHUTDOWN_TIMEOUT for the requests in flight, the
// ones still running then ended with an access line that says so, and exits 0; 1 only when
// serving failed or a handler would not return.
//
// The kit never imports the delivery toolkit (internal/): it is linked into every image.
package kit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/go-chi/chi/v5"

	"github.com/dtap-platform/monorepo/services/kit/config"
	"github.com/dtap-platform/monorepo/services/kit/logs"
	"github.com/dtap-platform/monorepo/services/kit/probe"
	"github.com/dtap-platform/monorepo/services/kit/server"
)

// Set at build time for every service with
// -ldflags "-X github.com/dtap-platform/monorepo/services/kit.version=<content tag>".
var version = "dev"

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitConfig = 2
)

// Service describes one service. Only Name is required.
type Service struct {
	// Name is the service's folder name under services/; it prefixes errors and usage lines.
	Name string
	// Public are the keys (APP_* variable names, CONFIG_DIR file names) whose values GET /config
	// shows in the fingerprints view, besides those of CONFIG_PUBLIC. Declare only keys whose
	// values are no secret; the redaction rules still apply to them, and a secret of SECRETS_DIR,
	// or a config file that resolves outside CONFIG_DIR, is never shown.
	Public []string
	// Setup adds the service's own routes and starts its background work, which must stop
	// when ctx is done. It runs after the kit's configuration is loaded and before the
	// listener opens. A *config.Error it returns exits 2, like the kit's own bad input.
	Setup func(ctx context.Context, env Env) error
}

// Env is what Setup gets: the process's configuration, its own environment lookup, the
// router to add routes to, and the logger.
type Env struct {
	Config config.Config
	Getenv func(string) string
	Router chi.Router
	Log    *slog.Logger
	Build  server.BuildInfo
}

// Main runs the service as a process: it serves until SIGTERM or SIGINT, then drains and
// exits 0; bad configuration exits 2.
func Main(svc Service) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := Run(ctx, svc, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// BuildInfo is the build information stamped into this binary.
func BuildInfo() server.BuildInfo {
	return server.BuildInfo{Version: version, Go: runtime.Version()}
}

// Run is Main with its inputs explicit, for tests: it returns the exit code.
func Run(ctx context.Context, svc Service, args, environ []string, stdout, stderr io.Writer) int {
	build := BuildInfo()
	if len(args) > 0 {
		switch args[0] {
		case "probe":
			return probe.Run(ctx, svc.Name, args[1:], DefaultProbeURL(environ), stdout, stderr)
		case "version":
			_ = json.NewEncoder(stdout).Encode(build)
			return ExitOK
		default:
			fmt.Fprintf(stderr, "unknown command %q: use no argument to serve, or probe, or version\n", args[0])
			return ExitConfig
		}
	}

	// The logger exists before the configuration, so that a signal during the load is logged;
	// its level is the configuration's once loaded.
	sink := logs.NewSink(stdout)
	defer func() { _ = sink.Close() }()
	level := new(slog.LevelVar)
	log := logs.NewLogger(sink, level)

	// Loading and Setup run aside, so that SIGTERM is obeyed while they take their time.
	started := make(chan start, 1)
	go func() { started <- prepare(ctx, svc, environ, build, sink, log, level) }()
	var st start
	select {
	case st = <-started:
	case <-ctx.Done():
		log.Info("shutdown signal while starting: exiting without serving")
		return ExitOK
	}
	if st.code != ExitOK {
		if st.stderr != "" {
			fmt.Fprint(stderr, st.stderr)
		}
		return st.code
	}
	if ctx.Err() != nil {
		log.Info("shutdown signal while starting: exiting without serving")
		return ExitOK
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(st.cfg.Port)))
	if err != nil {
		log.Error("listen", "port", st.cfg.Port, "error", err.Error(),
			"fix", "free the port or choose another with "+config.EnvPort)
		return ExitFailed
	}
	if err := st.srv.Run(ctx, ln); err != nil {
		log.Error("stopped with error", "error", err.Error())
		return ExitFailed
	}
	return ExitOK
}

// loadConfig is config.Load; tests slow it down.
var loadConfig = config.Load

// start is what prepare made: the server to run, or the exit code and what to tell stderr.
type start struct {
	cfg    config.Config
	srv    *server.Server
	code   int
	stderr string
}

// prepare loads the configuration, builds the server (which renders /config) and runs Setup.
func prepare(ctx context.Context, svc Service, environ []string, build server.BuildInfo, sink *logs.Sink, log *slog.Logger, level *slog.LevelVar) start {
	cfg, err := loadConfig(environ)
	if err != nil {
		return start{code: ExitConfig, stderr: fmt.Sprintf("%s: invalid configuration:\n%v\n", svc.Name, err)}
	}
	level.Set(cfg.LogLevel)
	if cfg.Public == nil {
		cfg.Public = map[string]bool{}
	}
	for _, k := range svc.Public {
		cfg.Public[k] = true
	}
	srv, err := server.New(cfg, log, build, server.WithAccessLog(sink))
	if err != nil {
		log.Error("start", "error", err.Error())
		return start{code: ExitFailed}
	}
	if svc.Setup != nil {
		env := Env{Config: cfg, Getenv: lookup(environ), Router: srv.Router(), Log: log, Build: build}
		if err := svc.Setup(ctx, env); err != nil {
			var cerr *config.Error
			if errors.As(err, &cerr) {
				return start{code: ExitConfig, stderr: fmt.Sprintf("%s: invalid configuration:\n%v\n", svc.Name, err)}
			}
			log.Error("setup", "error", err.Error())
			return start{code: ExitFailed}
		}
	}
	return start{cfg: cfg, srv: srv}
}

// DefaultProbeURL is the process's own readiness endpoint, so a bare `<service> probe` works
// as a container health check.
func DefaultProbeURL(environ []string) string {
	port := strconv.Itoa(config.DefaultPort)
	if v := lookup(environ)(config.EnvPort); v != "" {
		port = v
	}
	return "http://127.0.0.1:" + port + server.PathReadyz
}

// lookup is os.Getenv over environ (the last value of a name wins, as in os.Environ).
func lookup(environ []string) func(string) string {
	return func(key string) string {
		v := ""
		for _, kv := range environ {
			if val, ok := strings.CutPrefix(kv, key+"="); ok {
				v = val
			}
		}
		return v
	}
}

// Command api is the service that the delivery toolkit ships: a small chi HTTP API that shows
// its configuration (GET /config, secrets redacted) with probes, metrics and version.
//
//	api                 serve (configured by environment variables, see config)
//	api probe [URL...]  GET each URL, exit 0 when all answer 2xx
//	api version         print the build information
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/dtap-platform/monorepo/services/api/config"
	"github.com/dtap-platform/monorepo/services/api/probe"
	"github.com/dtap-platform/monorepo/services/api/server"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=... -X main.buildTime=...".
var (
	version   = "dev"
	commit    = "unknown"
	buildTime = "unknown"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitConfig = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	build := server.BuildInfo{Version: version, Commit: commit, BuildTime: buildTime}
	if len(args) > 0 {
		switch args[0] {
		case "probe":
			return probe.Run(ctx, args[1:], defaultProbeURL(environ), stdout, stderr)
		case "version":
			_ = json.NewEncoder(stdout).Encode(build)
			return exitOK
		default:
			fmt.Fprintf(stderr, "unknown command %q: use no argument to serve, or probe, or version\n", args[0])
			return exitConfig
		}
	}

	cfg, err := config.Load(environ)
	if err != nil {
		fmt.Fprintf(stderr, "api: invalid configuration:\n%v\n", err)
		return exitConfig
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))

	srv, err := server.New(cfg, log, build)
	if err != nil {
		log.Error("start", "error", err.Error())
		return exitFailed
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Port)))
	if err != nil {
		log.Error("listen", "port", cfg.Port, "error", err.Error(),
			"fix", "free the port or choose another with "+config.EnvPort)
		return exitFailed
	}
	if err := srv.Run(ctx, ln); err != nil {
		log.Error("stopped with error", "error", err.Error())
		return exitFailed
	}
	return exitOK
}

// defaultProbeURL is this process's own readiness endpoint, so a bare `api probe` works as
// a container health check.
func defaultProbeURL(environ []string) string {
	port := strconv.Itoa(config.DefaultPort)
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, config.EnvPort+"="); ok && v != "" {
			port = v
		}
	}
	return "http://127.0.0.1:" + port + server.PathReadyz
}

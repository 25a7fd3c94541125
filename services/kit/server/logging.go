package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

// logFormatter adapts chi's RequestLogger to slog: one JSON access line per request, and a
// panic logged as an error with its stack (chi's Recoverer reports panics through it).
type logFormatter struct{ log *slog.Logger }

func (f *logFormatter) NewLogEntry(r *http.Request) middleware.LogEntry {
	return &logEntry{r: r, log: f.log}
}

type logEntry struct {
	r   *http.Request
	log *slog.Logger
}

// Write is the access line. The route is the chi pattern; the raw path is logged too, since
// a log line, unlike a metric label, costs nothing per distinct value.
func (e *logEntry) Write(status, bytes int, _ http.Header, elapsed time.Duration, _ any) {
	level := slog.LevelInfo
	switch {
	case status == http.StatusServiceUnavailable: // readiness during a drain: expected, not an error
		level = slog.LevelWarn
	case status >= 500:
		level = slog.LevelError
	}
	ctx := e.r.Context()
	h := e.log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	// Built by hand rather than through Logger.LogAttrs, which captures the caller's PC with
	// runtime.Callers on every call: the access line has no use for it and runs per request.
	rec := slog.NewRecord(time.Now(), level, "request", 0)
	rec.AddAttrs(
		slog.String("request_id", middleware.GetReqID(ctx)),
		slog.String("method", e.r.Method),
		slog.String("route", routePattern(e.r)),
		slog.String("path", e.r.URL.Path),
		slog.Int("status", status),
		slog.Int("bytes", bytes),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
	)
	_ = h.Handle(ctx, rec)
}

func (e *logEntry) Panic(v any, stack []byte) {
	e.log.Error("panic while serving request", "request_id", middleware.GetReqID(e.r.Context()),
		"method", e.r.Method, "path", e.r.URL.Path, "panic", fmt.Sprint(v), "stack", string(stack))
}

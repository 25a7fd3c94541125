package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// accessLevel is the level of a request's access line.
func accessLevel(status int) slog.Level {
	switch {
	case status == http.StatusServiceUnavailable: // readiness during a drain: expected, not an error
		return slog.LevelWarn
	case status >= 500:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// abortedAtDeadline is the "aborted" field of the access line of a request that the shutdown
// timeout ended.
const abortedAtDeadline = "shutdown deadline"

// logAccess writes the request's access line. The route is the chi pattern; the raw path is
// logged too (cut to MaxLoggedPath), since a log line, unlike a metric label, costs nothing
// per distinct value. A request that the shutdown timeout ended is a warning, and says so.
func (s *Server) logAccess(x *exchange, r *http.Request, route string, status int, now time.Time, elapsed time.Duration, aborted bool) {
	level := accessLevel(status)
	if aborted {
		level = max(level, slog.LevelWarn)
	}
	h := s.log.Handler()
	if !h.Enabled(r.Context(), level) {
		return
	}
	if s.access == nil {
		// Built by hand rather than through Logger.LogAttrs, which captures the caller's PC.
		rec := slog.NewRecord(now, level, "request", 0)
		rec.AddAttrs(
			slog.String("request_id", x.ctx.id.String()),
			slog.String("method", truncate(r.Method, MaxLoggedMethod)),
			slog.String("route", route),
			slog.String("path", truncate(r.URL.Path, MaxLoggedPath)),
			slog.Int("status", status),
			slog.Int64("bytes", x.w.bytes),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		)
		if aborted {
			rec.AddAttrs(slog.String("aborted", abortedAtDeadline))
		}
		_ = h.Handle(r.Context(), rec)
		return
	}
	bp := linePool.Get().(*[]byte)
	b := appendAccessLine((*bp)[:0], now, level, x.ctx.id, r.Method, route, r.URL.Path, status, x.w.bytes, elapsed, aborted)
	_, _ = s.access.Write(b)
	if cap(b) <= 4<<10 {
		*bp = b
		linePool.Put(bp)
	}
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendAccessLine encodes an access line as log/slog's JSON handler does: the same keys in
// the same order, the time in RFC 3339 with nanoseconds, strings escaped alike.
func appendAccessLine(b []byte, now time.Time, level slog.Level, id requestID, method, route, path string, status int, size int64, elapsed time.Duration, aborted bool) []byte {
	b = append(b, `{"time":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, level.String()...)
	b = append(b, `","msg":"request","request_id":"`...)
	b = id.append(b)
	b = append(b, `","method":"`...)
	b = appendTruncated(b, method, MaxLoggedMethod)
	b = append(b, `","route":"`...)
	b = appendEscaped(b, route)
	b = append(b, `","path":"`...)
	b = appendTruncated(b, path, MaxLoggedPath)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, size, 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, elapsed)
	if aborted {
		b = append(b, `,"aborted":"`+abortedAtDeadline+`"`...)
	}
	return append(b, "}\n"...)
}

// appendMillis writes d in milliseconds with microsecond precision, as strconv's shortest
// float form of d.Microseconds()/1000 would read ("0.123", "12", "1500.5").
func appendMillis(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return b
	}
	digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}

// truncate cuts s to at most max bytes, at a character boundary, and marks the cut with "…".
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return s[:cutAt(s, max)] + "…"
}

func appendTruncated(b []byte, s string, max int) []byte {
	if len(s) <= max {
		return appendEscaped(b, s)
	}
	return append(appendEscaped(b, s[:cutAt(s, max)]), "…"...)
}

// cutAt is where to cut s to at most max bytes: not inside a UTF-8 sequence (bytes that are
// not UTF-8 at all are cut anywhere).
func cutAt(s string, max int) int {
	for i := max; i > 0 && i > max-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return i
		}
	}
	return max
}

// appendEscaped is the body of a JSON string as log/slog writes it: ", \ and control
// characters escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped, HTML left alone.
func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				const hex = "0123456789abcdef"
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, "89"[r-'\u2028'])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// logPanic logs a handler's panic as an error with its stack.
func (s *Server) logPanic(x *exchange, r *http.Request, v any, stack []byte) {
	s.log.LogAttrs(context.WithoutCancel(r.Context()), slog.LevelError, "panic while serving request",
		slog.String("request_id", x.ctx.id.String()), slog.String("method", truncate(r.Method, MaxLoggedMethod)),
		slog.String("path", truncate(r.URL.Path, MaxLoggedPath)), slog.String("panic", fmt.Sprint(v)),
		slog.String("stack", string(stack)))
}

package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// exchange is the kit's state of one request, in a single allocation: the request's context
// and the response writer that records what the handler answered.
type exchange struct {
	ctx requestContext
	w   responseWriter
}

// serve is the front handler of every request (see the package comment).
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.inflight.Add(1)
	x := &exchange{}
	x.w.w = w
	x.ctx.Context = r.Context()
	x.ctx.id = s.ids.requestID(r.Header[RequestIDHeader])

	rctx := s.routeContexts.Get().(*chi.Context)
	rctx.Reset()
	rctx.Routes = s.mux
	if r.Method == http.MethodHead {
		headRoute := s.mux.Match(rctx, http.MethodHead, routingPath(r))
		rctx.Reset()
		rctx.Routes = s.mux
		if !headRoute {
			rctx.RouteMethod = http.MethodGet // chi routes it as GET; the method stays HEAD
		}
	}
	x.ctx.rctx = rctx

	// The one copy of the request; chi sees the routing context in it and makes none of its own.
	r = r.WithContext(&x.ctx)
	defer func() { s.finish(x, r, start, recover()) }()
	s.mux.ServeHTTP(&x.w, r)
}

// finish recovers a panic, completes an error response that has no body, then records the
// request in the metrics and the access log.
func (s *Server) finish(x *exchange, r *http.Request, start time.Time, panicked any) {
	if panicked != nil && panicked != http.ErrAbortHandler {
		s.logPanic(x, r, panicked, debug.Stack())
		if !x.w.wrote && r.Header.Get("Connection") != "Upgrade" {
			x.w.WriteHeader(http.StatusInternalServerError)
		}
	}
	if code := x.w.pending; code != 0 {
		_ = json.NewEncoder(x.w.w).Encode(map[string]any{"error": http.StatusText(code), "status": code})
	}
	status := x.w.status
	if !x.w.wrote {
		status = http.StatusOK // what net/http answers for a handler that wrote nothing
	}
	now := time.Now()
	elapsed := now.Sub(start)
	route := routePattern(x.ctx.rctx)
	s.observe(route, methodLabel(r.Method), status, elapsed)
	s.logAccess(x, r, route, status, now, elapsed, s.ended.Load())
	s.routeContexts.Put(x.ctx.rctx)
	s.inflight.Add(-1)
	if panicked == http.ErrAbortHandler {
		panic(panicked) // net/http's way to abort a response: it closes the connection quietly
	}
}

// routingPath is the path chi routes on.
func routingPath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	if r.URL.Path == "" {
		return "/"
	}
	return r.URL.Path
}

// requestContext is the request's context: the parent (from net/http) with the chi routing
// context and the request id, answered without a chain of context.WithValue.
type requestContext struct {
	context.Context
	rctx *chi.Context
	id   requestID
}

func (c *requestContext) Value(key any) any {
	switch key {
	case chi.RouteCtxKey:
		return c.rctx
	case middleware.RequestIDKey:
		return c.id.String()
	}
	return c.Context.Value(key)
}

// RequestID is the id of the request that ctx belongs to ("" outside a request); chi's
// middleware.GetReqID gives the same.
func RequestID(ctx context.Context) string { return middleware.GetReqID(ctx) }

// responseWriter records the status and size of the response, and marks an error status
// written with no Content-Type so that finish gives it a JSON body if the handler writes none.
type responseWriter struct {
	w       http.ResponseWriter
	status  int
	bytes   int64
	wrote   bool
	pending int
}

func (w *responseWriter) Header() http.Header { return w.w.Header() }

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote && code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.w.WriteHeader(code) // informational (103 Early Hints): the real status comes later
		return
	}
	if !w.wrote {
		w.wrote, w.status = true, code
		if code >= 400 {
			if h := w.w.Header(); h["Content-Type"] == nil {
				h["Content-Type"] = []string{"application/json"}
				w.pending = code
			}
		}
	}
	w.w.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.wrote, w.status = true, http.StatusOK
	}
	if len(b) > 0 {
		w.pending = 0
	}
	n, err := w.w.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps net/http's sendfile path for http.ServeContent and io.Copy.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wrote {
		w.wrote, w.status = true, http.StatusOK
	}
	n, err := io.Copy(w.w, src)
	if n > 0 {
		w.pending = 0
	}
	w.bytes += n
	return n, err
}

// Flush implements http.Flusher for streaming handlers.
func (w *responseWriter) Flush() {
	if !w.wrote {
		w.wrote, w.status = true, http.StatusOK
	}
	_ = http.NewResponseController(w.w).Flush()
}

// Hijack implements http.Hijacker for protocol upgrades.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.w).Hijack()
	if err == nil && !w.wrote {
		w.wrote, w.status = true, http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.w }

// idChars are the characters a client's request id may hold.
var idChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-_.:/+=" {
		t[c] = true
	}
	return t
}()

// validRequestID reports whether a client's request id may be used as it is.
func validRequestID(v string) bool {
	if len(v) == 0 || len(v) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !idChars[v[i]] {
			return false
		}
	}
	return true
}

// idSource generates request ids: a random prefix per process and a counter, such as
// "q3kz7h2m9x4c-000042".
type idSource struct {
	prefix string
	n      atomic.Uint64
}

// requestID is a request's id: the client's, or a generated one kept as its parts, so that the
// access line appends it with no allocation; String builds it for those who ask.
type requestID struct {
	client string
	prefix string
	n      uint64
}

func (id requestID) append(b []byte) []byte {
	if id.prefix == "" {
		return appendEscaped(b, id.client)
	}
	b = append(b, id.prefix...)
	for d := uint64(100000); d > 1 && id.n < d; d /= 10 {
		b = append(b, '0')
	}
	return strconv.AppendUint(b, id.n, 10)
}

func (id requestID) String() string {
	if id.prefix == "" {
		return id.client
	}
	var buf [40]byte
	return string(id.append(buf[:0]))
}

// newIDPrefix is 12 random base-32 characters and a dash.
func newIDPrefix() string {
	const alphabet = "0123456789abcdefghijklmnopqrstuv"
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return string(b) + "-"
}

// requestID is the client's id (the values of its X-Request-Id header) when it is valid, and a
// new one otherwise.
func (g *idSource) requestID(header []string) requestID {
	if len(header) == 1 && validRequestID(header[0]) {
		return requestID{client: header[0]}
	}
	return requestID{prefix: g.prefix, n: g.n.Add(1)}
}

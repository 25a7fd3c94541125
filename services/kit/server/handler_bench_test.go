package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/dtap-platform/monorepo/services/kit/logs"
)

// BenchmarkConfigHandler is the in-process cost of the kit's whole request path for GET
// /config, as kit.Run builds it: access lines into a logs.Sink over a real file.
// BenchmarkConfigHandlerSlog sends them through the slog handler instead (no WithAccessLog);
// BenchmarkBareHandler writes the same bytes with nothing around them.
func BenchmarkConfigHandler(b *testing.B) {
	benchHandler(b, true)
}

func BenchmarkConfigHandlerSlog(b *testing.B) {
	benchHandler(b, false)
}

func benchHandler(b *testing.B, direct bool) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "access.log"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	sink := logs.NewSink(f)
	b.Cleanup(func() { _ = sink.Close(); _ = f.Close() })
	var opts []Option
	if direct {
		opts = append(opts, WithAccessLog(sink))
	}
	s, err := New(testConfig(), logs.NewLogger(sink, slog.LevelInfo), BuildInfo{Version: "bench"}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, PathConfig, nil)
	h := s.Router()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

func BenchmarkBareHandler(b *testing.B) {
	s, err := New(testConfig(), slog.New(slog.DiscardHandler), BuildInfo{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	body := s.configJSON
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	req := httptest.NewRequest(http.MethodGet, PathConfig, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}

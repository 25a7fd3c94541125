package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkConfigHandler is the in-process cost of the whole middleware stack for GET /config;
// BenchmarkBareHandler writes the same bytes with nothing around them.
func BenchmarkConfigHandler(b *testing.B) {
	s, err := New(testConfig(), slog.New(slog.NewJSONHandler(io.Discard, nil)), BuildInfo{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, PathConfig, nil)
	b.ReportAllocs()
	for b.Loop() {
		s.Router().ServeHTTP(discardWriter{h: http.Header{}}, req)
	}
}

func BenchmarkBareHandler(b *testing.B) {
	s, err := New(testConfig(), slog.New(slog.NewJSONHandler(io.Discard, nil)), BuildInfo{Version: "bench"})
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
	for b.Loop() {
		h.ServeHTTP(discardWriter{h: http.Header{}}, req)
	}
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}

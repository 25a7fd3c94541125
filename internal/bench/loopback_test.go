package bench

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/dtap-platform/monorepo/services/kit/logs"
	"github.com/dtap-platform/monorepo/services/kit/server"
)

// The loopback benchmarks are the place to profile the service's whole request path, net/http
// included: go test -run '^$' -bench Loopback -cpuprofile cpu.out ./internal/bench/
// Each runs BENCH_CONNECTIONS (default 16) clients with keep-alive connections against GET
// /config, in this process.
func BenchmarkLoopbackService(b *testing.B) {
	dir := b.TempDir()
	cfg, err := benchConfig(dir)
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "access.log"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	sink := logs.NewSink(f)
	b.Cleanup(func() { _ = sink.Close(); _ = f.Close() })
	srv, err := server.New(cfg, logs.NewLogger(sink, slog.LevelInfo), server.BuildInfo{Version: "bench"}, server.WithAccessLog(sink))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	base, _, err := serve(ctx, srv.Run)
	if err != nil {
		b.Fatal(err)
	}
	loopback(b, base+server.PathConfig)
}

func BenchmarkLoopbackBare(b *testing.B) {
	body := make([]byte, 280)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	base, _, err := serveBare(ctx, body)
	if err != nil {
		b.Fatal(err)
	}
	loopback(b, base+"/config")
}

func loopback(b *testing.B, url string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(parallelism())
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	})
}

// parallelism is the clients per CPU: BENCH_CONNECTIONS (default 16) over GOMAXPROCS.
func parallelism() int {
	n, err := Connections(os.Getenv(EnvConnections))
	if err != nil {
		n = DefaultConnections
	}
	return max(1, n/runtime.GOMAXPROCS(0))
}

// Command loadgen sends a bounded load from inside the cluster, so that it goes through the
// Service (and kube-proxy) to every pod, as real clients do; a port-forward would pin one pod.
// It prints one JSON summary line when done. The e2e tests build it into a FROM scratch image.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/dtap-platform/monorepo/internal/load"
)

func main() {
	url := flag.String("url", "", "URL to GET")
	rate := flag.Int("rate", 200, "requests per second")
	duration := flag.Duration("duration", 30*time.Second, "how long to send (bounded)")
	workers := flag.Int("workers", 16, "concurrent connections")
	flag.Parse()
	if *url == "" || *duration <= 0 || *duration > 10*time.Minute {
		fmt.Fprintln(os.Stderr, "usage: loadgen -url URL [-rate 200] [-duration 30s (at most 10m)] [-workers 16]")
		os.Exit(2)
	}
	res, err := load.Run(context.Background(), load.Options{URL: *url, Rate: *rate, Duration: *duration, Workers: *workers, Timeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

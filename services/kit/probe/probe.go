// Package probe is every service's built-in HTTP checker: `<service> probe URL...` exits 0 when every
// URL answers 2xx. The image has no shell and no curl, so container health checks and the
// chart's `helm test` hook run the service's own binary with this subcommand.
package probe

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Run checks each URL in args and reports to stdout and stderr. It returns the exit code:
// 0 when all answered 2xx, 1 when one did not, 2 on bad usage.
func Run(ctx context.Context, name string, args []string, defaultURL string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "time allowed for each request")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s probe [-timeout 3s] [URL ...]\n\nGETs each URL and exits 0 when all answer 2xx (default URL: %s).\n", name, defaultURL)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	urls := fs.Args()
	if len(urls) == 0 {
		urls = []string{defaultURL}
	}
	client := &http.Client{Timeout: *timeout}
	for _, u := range urls {
		if err := check(ctx, client, u); err != nil {
			fmt.Fprintf(stderr, "probe %s: %v\n", u, err)
			return 1
		}
		fmt.Fprintf(stdout, "probe %s: ok\n", u)
	}
	return 0
}

func check(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errors.New(resp.Status + ": " + string(body))
	}
	return nil
}

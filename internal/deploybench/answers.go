package deploybench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/dtap-platform/monorepo/internal/cluster"
)

// A service's row in a deploy's summary, after the line "deployed <env> to namespace ...": its
// name first, its URL last (the front door on 127.0.0.1, by host name under .localhost).
var summaryRow = regexp.MustCompile(`^\s*(?:\[\+[0-9.]+s\]\s+)?([a-z0-9][-a-z0-9]*)\s.*\s(https?://[-a-z0-9.]+\.localhost:[0-9]+)\s*$`)

// urlsOf reads the URLs a deploy's summary gave, by service, and the environment it names.
func urlsOf(logPath string) (env string, urls map[string]string, err error) {
	f, err := os.Open(logPath)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	deployed := regexp.MustCompile(`deployed ([a-z0-9-]+) to namespace`)
	urls = map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if m := deployed.FindStringSubmatch(sc.Text()); m != nil {
			env, urls = m[1], map[string]string{} // the last summary counts
			continue
		}
		if m := summaryRow.FindStringSubmatch(sc.Text()); m != nil && env != "" {
			urls[m[1]] = m[2]
		}
	}
	if err := sc.Err(); err != nil {
		return "", nil, err
	}
	if env == "" || len(urls) == 0 {
		return "", nil, fmt.Errorf("%s has no deploy summary with front door URLs (*.localhost)", logPath)
	}
	return env, urls, nil
}

// allAnswer GETs /config of every service the deploys' summaries (deployLogs) gave a URL, from
// 127.0.0.1, a few at a time, and requires each to answer 200 with JSON that names the
// environment it was deployed to. Each answer goes to logPath; the error lists every failure.
func allAnswer(ctx context.Context, logPath string, deployLogs ...string) error {
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	type target struct{ env, service, url string }
	var targets []target
	for _, p := range deployLogs {
		env, urls, err := urlsOf(p)
		if err != nil {
			return err
		}
		for svc, u := range urls {
			targets = append(targets, target{env, svc, u})
		}
	}
	client, err := cluster.LoopbackClient(nil, 10*time.Second)
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
	)
	for _, t := range targets {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			err := answers(ctx, client, t.url+"/config", t.env)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s in %s (%s): %w", t.service, t.env, t.url, err))
				fmt.Fprintf(log, "%-4s %-12s %s/config: %v\n", t.env, t.service, t.url, err)
				return
			}
			fmt.Fprintf(log, "%-4s %-12s %s/config: 200, environment %s\n", t.env, t.service, t.url, t.env)
		})
	}
	wg.Wait()
	fmt.Fprintf(log, "%d of %d services answered\n", len(targets)-len(errs), len(targets))
	return errors.Join(errs...)
}

func answers(ctx context.Context, c *http.Client, url, env string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	var cfg struct {
		Environment string `json:"environment"`
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if cfg.Environment != env {
		return fmt.Errorf("/config names environment %q, want %q", cfg.Environment, env)
	}
	return nil
}

// timed runs fn and says how long it took.
func timed(fn func() error) (time.Duration, error) {
	start := time.Now()
	err := fn()
	return time.Since(start), err
}

package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dtap-platform/monorepo/services/kit/server"
)

// Smoke checks a running service at base: /readyz answers 200 and /config reports env.
// It returns the /config document.
func Smoke(ctx context.Context, base, env string) (map[string]any, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	if err := expect200(ctx, client, base+server.PathReadyz, nil); err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := expect200(ctx, client, base+server.PathConfig, &cfg); err != nil {
		return nil, err
	}
	if got := cfg["environment"]; got != env {
		return cfg, fmt.Errorf("/config reports environment %v, want %s", got, env)
	}
	return cfg, nil
}

func expect200(ctx context.Context, client *http.Client, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			return fmt.Errorf("GET %s: not JSON: %w", url, err)
		}
	}
	return nil
}

// answers waits until base answers /readyz with 200, for at most timeout.
func answers(ctx context.Context, base string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		err := expect200(ctx, client, base+server.PathReadyz, nil)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

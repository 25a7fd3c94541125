package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dtap-platform/monorepo/services/kit/server"
)

// Smoke checks a running service at base: /readyz answers 200 and /config reports env. It
// returns the top-level string fields of the /config document (environment, version, ...). It
// reads /config as a stream and keeps no more than those, so a service whose configuration is
// large (a ConfigMap of megabytes) passes as well as a small one.
func Smoke(ctx context.Context, base, env string) (map[string]any, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	if err := expect200(ctx, client, base+server.PathReadyz, nil); err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := expect200(ctx, client, base+server.PathConfig, &cfg); err != nil {
		return nil, err
	}
	if got := cfg["environment"]; got != env {
		return cfg, fmt.Errorf("%w: /config reports environment %v, want %s", errWrongEnvironment, got, env)
	}
	return cfg, nil
}

// errWrongEnvironment marks a service that answers as another environment: asking again
// cannot change that.
var errWrongEnvironment = errors.New("wrong environment")

// smokeRetryFor is how long a smoke check may keep asking: a port-forward's stream lost on a
// busy machine, or a pod that started draining between the list and the request, is cured by
// asking again, through a new port-forward to the newest ready pod.
const smokeRetryFor = 20 * time.Second

// retrySmoke runs check until it succeeds, fails with errWrongEnvironment, or the time is up;
// the last error is returned. again hears each error that is asked again.
func retrySmoke(ctx context.Context, within time.Duration, check func() error, again func(error)) error {
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil || errors.Is(err, errWrongEnvironment) || time.Now().After(deadline) {
			return err
		}
		again(err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

func expect200(ctx context.Context, client *http.Client, url string, into *map[string]any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	if into == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	fields, err := topLevelStrings(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: not a JSON object: %w", url, err)
	}
	*into = fields
	return nil
}

// topLevelStrings reads a JSON object from r, token by token, and returns its top-level fields
// whose values are strings; nested values are read and dropped, never held.
func topLevelStrings(r io.Reader) (map[string]any, error) {
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("want an object, got %v (%v)", tok, err)
	}
	out := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		tok, err = dec.Token()
		if err != nil {
			return nil, err
		}
		switch v := tok.(type) {
		case string:
			out[key] = v
		case json.Delim:
			// Skip the nested object or array: count brackets until it closes.
			for depth := 1; depth > 0; {
				t, err := dec.Token()
				if err != nil {
					return nil, err
				}
				if d, ok := t.(json.Delim); ok {
					if d == '{' || d == '[' {
						depth++
					} else {
						depth--
					}
				}
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return out, nil
}

// answers waits, for at most timeout, until base/readyz answers 200 through the embedded
// cluster's front door: the controller has loaded the route and reaches a ready pod. (The
// controller answers 404 until it knows the route and 503 while it has no ready endpoint; during
// a rollout the old pod, draining, answers 503 too, and a retry reaches the new one.)
func answers(ctx context.Context, client *http.Client, base string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+server.PathReadyz, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", server.PathReadyz, resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

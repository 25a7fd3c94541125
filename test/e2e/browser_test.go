//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// requireBrowser is Debian's chromium, or the end of the test: a loud skip, or a failure where
// DTAP_REQUIRE_BROWSER=1 (CI installs chromium, so there it must run).
func requireBrowser(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := exec.LookPath(p); err == nil {
				return p
			}
		}
	}
	msg := "no chromium: install Debian's chromium (apt-get install chromium), or set CHROMIUM to its path"
	if os.Getenv("DTAP_REQUIRE_BROWSER") == "1" {
		t.Fatal("FAILED: " + msg + " (DTAP_REQUIRE_BROWSER=1)")
	}
	t.Skip("SKIPPED: " + msg)
	return ""
}

// checkStatusPageInBrowser loads the status page in headless chromium and checks what a person
// sees: the service's card, marked ready, with its version; and that the page is laid out for
// a phone's width without sideways scrolling.
func checkStatusPageInBrowser(t *testing.T, url, service, version string) {
	t.Helper()
	exe := requireBrowser(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(390, 844))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first Run starts the browser; it must not carry a timeout (chromedp.Run's rule).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	card := `li.service[data-name="` + service + `"]`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(card+" .badge")),
	); err != nil {
		t.Fatalf("load %s in chromium: %v", url, err)
	}
	// The page refreshes itself from status.json: wait until it shows the service ready.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('`+card+` .badge').textContent === "ready"`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("%s never shows ready: %v", service, err)
	}
	text := func(sel string) string {
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	name, badge, shown, body := text(card+" .name"), text(card+" .badge"), text(card+" .version"), text("body")
	scrollWidth, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatal(err)
	}
	innerWidth, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.innerWidth`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chromium sees %q: %q, %q", name, badge, shown)
	if name != service || badge != "ready" || shown != version {
		t.Errorf("the page shows %q %q %q, want %q ready %q", name, badge, shown, service, version)
	}
	if !strings.Contains(body, "services ready") {
		t.Errorf("the page has no summary line:\n%s", body)
	}
	if scrollWidth > innerWidth {
		t.Errorf("on a %d px wide phone the page is %d px wide: it scrolls sideways", innerWidth, scrollWidth)
	}
}

// getThroughCluster GETs path of a release's Service through a port-forward and decodes it.
func getThroughCluster(t *testing.T, ns, release, path string, into any) {
	t.Helper()
	viaPortForward(t, ns, serviceOf(t, ns, release), func(base string) error {
		code, body, err := get(base + path)
		if err == nil && code == 200 {
			err = json.Unmarshal([]byte(body), into)
		}
		if err != nil || code != 200 {
			return fmt.Errorf("%s of %s = %d %s (%v)", path, release, code, body, err)
		}
		return nil
	})
}

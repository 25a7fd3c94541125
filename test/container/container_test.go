//go:build integration

// Package container tests the real api image, built from the repository's Dockerfile, in a
// real Docker engine through testcontainers-go: endpoints, user and filesystem, graceful
// shutdown and secret redaction, as Kubernetes will run it.
package container

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/services/kit/config"
	"github.com/dtap-platform/monorepo/services/kit/server"
)

// The images under test: $API_IMAGE and $STATUS_IMAGE (mage test:integration builds them), or
// ones this package builds from the Dockerfile when they are unset.
var apiImage, statusImage string

const (
	configDir  = "/etc/service/config"
	secretsDir = "/etc/service/secrets"
	port       = "8080/tcp"
)

func TestMain(m *testing.M) {
	apiImage, statusImage = os.Getenv("API_IMAGE"), os.Getenv("STATUS_IMAGE")
	if apiImage == "" || statusImage == "" {
		fmt.Fprintln(os.Stderr, "API_IMAGE or STATUS_IMAGE unset: building the images from the Dockerfile")
		refs, err := buildImages(context.Background())
		if err != nil {
			fmt.Fprintf(os.Stderr, "cannot build the images: %v\n", err)
			os.Exit(1)
		}
		apiImage, statusImage = refs["api"], refs["status"]
	}
	os.Exit(m.Run())
}

// buildImages builds every service's image with its content tag, as mage image:build does.
func buildImages(ctx context.Context) (map[string]string, error) {
	svcs, err := services.Discover(ctx, "../..")
	if err != nil {
		return nil, err
	}
	manifests, err := inputs.OfAll(ctx, "../..", svcs, inputs.Options{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	var specs []image.Spec
	for _, s := range svcs {
		ref := image.Ref{Repository: s.Name, Tag: manifests[s.Name].Tag()}
		specs = append(specs, image.Spec{Service: s.Name, Inputs: manifests[s.Name], Ref: ref})
		out[s.Name] = ref.String()
	}
	return out, image.BuildAll(ctx, "../..", specs, os.Stderr)
}

// dirWith writes files into a fresh directory that the container's user (65532) can read.
func dirWith(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startAPI runs the api image read-only, as the chart does, with the given env and mounted
// dirs, and waits for /readyz. The container is removed when the test ends.
func startAPI(t *testing.T, env map[string]string, mounts map[string]string) (*testcontainers.DockerContainer, string) {
	t.Helper()
	return start(t, apiImage, env, mounts)
}

func start(t *testing.T, img string, env map[string]string, mounts map[string]string) (*testcontainers.DockerContainer, string) {
	t.Helper()
	ctx := t.Context()
	// A short drain unless the test sets one: cleanup stops each container with SIGTERM.
	withDefaults := map[string]string{"SHUTDOWN_DRAIN": "100ms"}
	maps.Copy(withDefaults, env)
	c, err := testcontainers.Run(ctx, img,
		testcontainers.WithEnv(withDefaults),
		testcontainers.WithExposedPorts(port),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.ReadonlyRootfs = true
			hc.CapDrop = []string{"ALL"}
			hc.SecurityOpt = []string{"no-new-privileges"}
			for host, target := range mounts {
				hc.Binds = append(hc.Binds, host+":"+target+":ro")
			}
		}),
		testcontainers.WithWaitStrategy(wait.ForHTTP(server.PathReadyz).WithPort(port).WithStartupTimeout(30*time.Second)),
	)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("start %s: %v", img, err)
	}
	endpoint, err := c.PortEndpoint(ctx, port, "http")
	if err != nil {
		t.Fatal(err)
	}
	return c, endpoint
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func logsOf(t *testing.T, c *testcontainers.DockerContainer) string {
	t.Helper()
	rc, err := c.Logs(context.WithoutCancel(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func TestImageServesConfigProbesAndMetrics(t *testing.T) {
	c, base := startAPI(t, map[string]string{
		"APP_ENV": "container", "APP_RELEASE": "api-container", "APP_FEATURE": "on",
		"CONFIG_DIR": configDir, "CONFIG_PUBLIC": "greeting,APP_FEATURE",
	}, map[string]string{dirWith(t, map[string]string{"greeting": "hello"}): configDir})

	code, body := get(t, base+server.PathConfig)
	var cfg struct {
		Environment, Release string
		Port                 int
		Config, Env          map[string]string
	}
	if err := json.Unmarshal([]byte(body), &cfg); code != 200 || err != nil {
		t.Fatalf("/config = %d %q (%v)", code, body, err)
	}
	if cfg.Environment != "container" || cfg.Release != "api-container" || cfg.Port != config.DefaultPort ||
		cfg.Config["greeting"] != "hello" || cfg.Env["APP_FEATURE"] != "on" {
		t.Errorf("/config = %s", body)
	}
	for _, p := range []string{server.PathHealthz, server.PathReadyz, server.PathVersion} {
		if code, body := get(t, base+p); code != 200 {
			t.Errorf("%s = %d %s", p, code, body)
		}
	}
	_, metrics := get(t, base+server.PathMetrics)
	for _, want := range []string{
		`http_requests_total{code="200",method="GET",route="/config"} 1`,
		`process_resident_memory_bytes`, `go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := get(t, base+"/nope"); code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("/nope = %d %s, want a JSON 404", code, body)
	}
	// The access log is buffered and flushed within 10 ms: wait for the lines to reach Docker.
	deadline := time.Now().Add(5 * time.Second)
	for logs := logsOf(t, c); !strings.Contains(logs, `"msg":"request"`); logs = logsOf(t, c) {
		if time.Now().After(deadline) {
			t.Errorf("no JSON access log lines:\n%s", logs)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestImageRunsAsNonRootOnAReadOnlyRootFilesystem(t *testing.T) {
	c, _ := startAPI(t, nil, nil)
	info, err := c.Inspect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.User != "65532:65532" {
		t.Errorf("image user = %q, want 65532:65532", info.Config.User)
	}
	if !info.HostConfig.ReadonlyRootfs {
		t.Error("container rootfs is not read-only")
	}
	// The process itself, as the kernel sees it.
	top, err := image.DockerOutput(t.Context(), "top", c.GetContainerID(), "-o", "pid,uid,gid,comm")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(top, "\n")
	if fields := strings.Fields(lines[len(lines)-1]); len(lines) != 2 || strings.Join(fields[1:], " ") != "65532 65532 app" {
		t.Errorf("docker top = %q, want one process app with uid and gid 65532", top)
	}
	// No shell in the image: exec of sh must fail, the binary's own probe must work.
	if code, _, err := c.Exec(t.Context(), []string{"/bin/sh", "-c", "true"}); err == nil && code == 0 {
		t.Error("the image has a working /bin/sh")
	}
	if code, out, err := c.Exec(t.Context(), []string{"/app", "probe"}); err != nil || code != 0 {
		b, _ := io.ReadAll(out)
		t.Errorf("/app probe in the container = %d %v: %s", code, err, b)
	}
}

func TestSecretsMountedAsFilesAreRedacted(t *testing.T) {
	const value = "pa55-w0rd-must-not-leak"
	c, base := startAPI(t, map[string]string{"SECRETS_DIR": secretsDir, "LOG_LEVEL": "debug", "CONFIG_VIEW": "redacted"},
		map[string]string{dirWith(t, map[string]string{"db-password": value, "api-token": value + "2"}): secretsDir})

	code, body := get(t, base+server.PathConfig)
	if code != 200 {
		t.Fatalf("/config = %d", code)
	}
	var cfg struct{ Secrets map[string]string }
	if err := json.Unmarshal([]byte(body), &cfg); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"db-password", "api-token"} {
		if cfg.Secrets[k] != config.Redacted {
			t.Errorf("secret %s = %q, want %s", k, cfg.Secrets[k], config.Redacted)
		}
	}
	for where, text := range map[string]string{"/config": body, "logs": logsOf(t, c)} {
		if strings.Contains(text, value) {
			t.Errorf("secret value in %s:\n%s", where, text)
		}
	}
}

func TestBadConfigurationExits2WithTheFix(t *testing.T) {
	ctx := t.Context()
	c, err := testcontainers.Run(ctx, apiImage, testcontainers.WithEnv(map[string]string{"PORT": "abc"}))
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatal(err)
	}
	state := waitExit(t, c, 20*time.Second)
	if state.ExitCode != 2 {
		t.Errorf("exit code = %d, want 2", state.ExitCode)
	}
	if logs := logsOf(t, c); !strings.Contains(logs, `PORT="abc": not a number; set PORT to a TCP port between 1 and 65535`) {
		t.Errorf("logs do not name the variable and the fix:\n%s", logs)
	}
}

// TestSIGTERMLetsTheInFlightRequestFinishThenExits0 holds a request in flight across the whole
// shutdown: /config is made tens of MB large by the mounted config files (its bound raised to
// allow it), and the client reads only its start before SIGTERM, so the handler stays blocked
// writing. During the drain /readyz is 503; after it, Shutdown waits for that request, which
// the client then reads to the end; the process exits 0.
func TestSIGTERMLetsTheInFlightRequestFinishThenExits0(t *testing.T) {
	const drain = 2 * time.Second
	files := map[string]string{}
	chunk := strings.Repeat("x", 1<<20-1024)
	for i := range 48 {
		files[fmt.Sprintf("blob-%02d", i)] = chunk
	}
	c, base := startAPI(t, map[string]string{
		"CONFIG_DIR": configDir, "SHUTDOWN_DRAIN": drain.String(), "SHUTDOWN_TIMEOUT": "20s",
		"CONFIG_VIEW": "redacted", "CONFIG_VIEW_MAX_BYTES": "64Mi",
	}, map[string]string{dirWith(t, files): configDir})

	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /config HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("/config = %d", resp.StatusCode)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil { // the request is now in flight
		t.Fatal(err)
	}

	if err := image.Docker(t.Context(), nil, "kill", "--signal", "TERM", c.GetContainerID()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if code, _ := get(t, base+server.PathReadyz); code != http.StatusServiceUnavailable {
		t.Errorf("readyz during the drain = %d, want 503", code)
	}
	if code, _ := get(t, base+server.PathHealthz); code != http.StatusOK {
		t.Errorf("healthz during the drain = %d, want 200", code)
	}
	time.Sleep(drain) // past the drain: Shutdown is now waiting for our request
	if state, err := c.State(t.Context()); err != nil || !state.Running {
		t.Fatalf("the process did not wait for the in-flight request: %+v %v", state, err)
	}

	rest, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		t.Fatalf("in-flight response cut off after %d more bytes: %v", rest, err)
	}
	if total := rest + 1<<20; total != resp.ContentLength || total < int64(len(files)*len(chunk)) {
		t.Errorf("in-flight response: read %d bytes, Content-Length %d, config files %d bytes", total, resp.ContentLength, len(files)*len(chunk))
	}
	state := waitExit(t, c, 30*time.Second)
	if state.ExitCode != 0 {
		t.Errorf("exit code = %d, want 0\n%s", state.ExitCode, logsOf(t, c))
	}
	if logs := logsOf(t, c); !strings.Contains(logs, "readiness is now 503") || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("shutdown not logged:\n%s", logs)
	}
}

func waitExit(t *testing.T, c *testcontainers.DockerContainer, within time.Duration) *container.State {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		state, err := c.State(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !state.Running && state.Status == "exited" {
			return state
		}
		if time.Now().After(deadline) {
			t.Fatalf("container still %s after %s", state.Status, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStatusImageShowsTheServicesItIsGiven runs the status page beside a real api container
// and reads what it reports of it.
func TestStatusImageShowsTheServicesItIsGiven(t *testing.T) {
	api, _ := startAPI(t, nil, nil)
	ip, err := api.ContainerIP(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, status := start(t, statusImage, map[string]string{"APP_ENV": "test", "SERVICE_URLS": "api=http://" + ip + ":8080", "STATUS_INTERVAL": "200ms"}, nil)
	var rep struct {
		Environment string
		Services    []struct {
			Name, Version, State string
			Ready                bool
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, status+"/status.json")
		if err := json.Unmarshal([]byte(body), &rep); code != 200 || err != nil {
			t.Fatalf("/status.json = %d %s", code, body)
		}
		if len(rep.Services) == 1 && rep.Services[0].Ready || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rep.Environment != "test" || len(rep.Services) != 1 || rep.Services[0].Name != "api" || !rep.Services[0].Ready ||
		rep.Services[0].State != "ready" || rep.Services[0].Version == "" {
		t.Errorf("status.json = %+v, want api ready with its version", rep)
	}
	code, page := get(t, status+"/")
	if code != 200 || !strings.Contains(page, `data-name="api"`) || !strings.Contains(page, rep.Services[0].Version) {
		t.Errorf("page = %d:\n%s", code, page)
	}
}

// TestEveryImageIsAtMost10MB reads each image's size from the engine: a static binary on an
// empty base stays small, and a dependency that bloats it fails here.
func TestEveryImageIsAtMost10MB(t *testing.T) {
	const limit = 10_000_000
	for name, img := range map[string]string{"api": apiImage, "status": statusImage} {
		repo, tag, _ := strings.Cut(img, ":")
		size, err := image.Size(t.Context(), image.Ref{Repository: repo, Tag: tag})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("FIGURE image %s: %.2f MB (%d bytes)", name, float64(size)/1e6, size)
		if size > limit {
			t.Errorf("image %s is %d bytes, more than %d", name, size, limit)
		}
	}
}

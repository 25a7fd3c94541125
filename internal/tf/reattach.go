package tf

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
)

// Provider is the helm provider, started once for a run and shared by all of its terraform
// processes through TF_REATTACH_PROVIDERS. Each terraform process would otherwise start the
// provider four times (schema, validate, plan, apply), about half a second each: most of what
// a one-service change pays for Terraform. It runs with the environment terraform gets (no
// KUBE_*, SECRET_* or SIGNING_*, HELM_DRIVER=secret), in a process group of its own, so that a
// Ctrl-C reaches terraform, which finishes what it is applying, and not the provider under it;
// its socket is in a directory only this user can open. Stop ends it.
type Provider struct {
	cmd      *exec.Cmd
	dir      string
	reattach tfexec.ReattachInfo
	exited   chan struct{}
	tail     *tail
}

// providerStart is how long the provider may take to say where it listens.
const providerStart = 30 * time.Second

// StartProvider starts the helm provider that init installed in the runner's data directory.
// It refuses when the data directory holds no single helm provider for this platform: the caller then lets terraform start its own.
func (r *Runner) StartProvider(ctx context.Context) (*Provider, error) {
	pattern := filepath.Join(r.opts.DataDir, "providers", "registry.terraform.io", "hashicorp", "helm", "*",
		runtime.GOOS+"_"+runtime.GOARCH, "terraform-provider-helm*")
	bins, _ := filepath.Glob(pattern)
	if len(bins) != 1 {
		return nil, fmt.Errorf("%d helm providers match %s, want one", len(bins), pattern)
	}
	dir, err := os.MkdirTemp("", "dtap-provider-")
	if err != nil {
		return nil, err
	}
	p := &Provider{dir: dir, exited: make(chan struct{}), tail: &tail{buf: new(strings.Builder)}}
	cmd := exec.Command(bins[0], "-debug")
	// go-plugin makes its socket in PLUGIN_UNIX_SOCKET_DIR: a directory of mode 0700.
	for k, v := range tfexec.CleanEnv(r.env) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "PLUGIN_UNIX_SOCKET_DIR="+dir)
	cmd.Dir = r.opts.Dir // the module's paths (the chart's, ../.helm) are relative to it
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd.Stderr = p.tail
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bins[0], err)
	}
	p.cmd = cmd
	found := make(chan tfexec.ReattachInfo, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if v, ok := reattachValue(line); ok && !sent {
				found <- v
				sent = true
				continue
			}
			fmt.Fprintln(p.tail, line)
		}
		if !sent {
			close(found)
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	select {
	case v, ok := <-found:
		if ok {
			p.reattach = v
			return p, nil
		}
		p.Stop()
		return nil, fmt.Errorf("%s exited before it said where it listens: %s", filepath.Base(bins[0]), p.tail.String())
	case <-time.After(providerStart):
		p.Stop()
		return nil, fmt.Errorf("%s did not say where it listens within %s", filepath.Base(bins[0]), providerStart)
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
}

// reattachValue reads the line the provider prints in debug mode,
// TF_REATTACH_PROVIDERS='{...}'.
func reattachValue(line string) (tfexec.ReattachInfo, bool) {
	_, v, ok := strings.Cut(strings.TrimSpace(line), "TF_REATTACH_PROVIDERS='")
	if !ok {
		return nil, false
	}
	var info tfexec.ReattachInfo
	if json.Unmarshal([]byte(strings.TrimSuffix(v, "'")), &info) != nil || len(info) == 0 {
		return nil, false
	}
	return info, true
}

// Share makes the runners this runner makes with ForWorkspace use p instead of starting their
// own provider.
func (r *Runner) Share(p *Provider) {
	if p != nil {
		r.opts.Reattach = p.reattach
	}
}

// Stop ends the provider and removes its socket's directory; it says whether the provider had
// stopped on its own before (a crash, which failed the terraform runs using it), and why.
func (p *Provider) Stop() error {
	if p == nil || p.cmd == nil {
		return nil
	}
	var early error
	select {
	case <-p.exited:
		early = errors.New("the shared helm provider had exited: " + p.tail.String())
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
	p.cmd = nil
	os.RemoveAll(p.dir)
	return early
}

// tail keeps the last lines written to it.
type tail struct {
	mu  sync.Mutex
	buf *strings.Builder
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if s := t.buf.String(); len(s) > 4096 {
		t.buf.Reset()
		t.buf.WriteString(s[len(s)-4096:])
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.buf.String())
}

package tf

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestReattachValueReadsTheProvidersDebugLine(t *testing.T) {
	line := `	TF_REATTACH_PROVIDERS='{"registry.terraform.io/hashicorp/helm":{"Protocol":"grpc","ProtocolVersion":6,"Pid":42,"Test":true,"Addr":{"Network":"unix","String":"/tmp/x/plugin1"}}}'`
	info, ok := reattachValue(line)
	if !ok {
		t.Fatal("the provider's debug line was not read")
	}
	c := info["registry.terraform.io/hashicorp/helm"]
	if c.Pid != 42 || c.ProtocolVersion != 6 || c.Addr.Network != "unix" || c.Addr.String != "/tmp/x/plugin1" {
		t.Fatalf("read %+v", c)
	}
	for _, bad := range []string{"Provider started.", "TF_REATTACH_PROVIDERS='not json'", "TF_REATTACH_PROVIDERS='{}'"} {
		if _, ok := reattachValue(bad); ok {
			t.Errorf("reattachValue(%q) was taken", bad)
		}
	}
}

// The real helm provider from the mirror, started as a deploy starts it.
func TestStartProviderServesOnAPrivateSocketAndStopEndsIt(t *testing.T) {
	RequireProvider(t)
	bin := MirrorHasHelm(os.Getenv(MirrorEnv))
	if bin == "" {
		t.Skip("SKIPPED: the provider is not in a filesystem mirror (" + MirrorEnv + "), so there is no binary to start")
	}
	data := t.TempDir()
	dir := filepath.Join(data, "providers", "registry.terraform.io", "hashicorp", "helm", "3.1.2", runtime.GOOS+"_"+runtime.GOARCH)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(dir, filepath.Base(bin))); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBE_CTX", "somewhere-else")
	r, err := New(Options{Dir: t.TempDir(), ExecPath: "/bin/true", DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.StartProvider(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c, ok := p.reattach["registry.terraform.io/hashicorp/helm"]
	if !ok || c.Addr.Network != "unix" || !strings.HasPrefix(c.Addr.String, p.dir+"/") {
		t.Fatalf("reattach info %+v: want the helm provider on a socket in %s", p.reattach, p.dir)
	}
	if st, err := os.Stat(p.dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory %s: %v, mode %v; want 0700", p.dir, err, st.Mode().Perm())
	}
	pid := p.cmd.Process.Pid
	if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
		t.Fatalf("provider pgid %d (%v), want a group of its own (%d): a Ctrl-C must reach terraform, not it", pgid, err, pid)
	}
	environ, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	if env := string(environ); strings.Contains(env, "KUBE_CTX=") || !strings.Contains(env, "HELM_DRIVER=secret") || !strings.Contains(env, "CHECKPOINT_DISABLE=1") {
		t.Fatalf("the provider's environment must be terraform's (no KUBE_*, HELM_DRIVER=secret, CHECKPOINT_DISABLE=1): %q", env)
	}
	r.Share(p)
	if err := os.WriteFile(filepath.Join(data, "terraform.tfstate"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := r.ForWorkspace(filepath.Join(t.TempDir(), "ws"), "dev.api", "")
	if err != nil {
		t.Fatal(err)
	}
	if w.opts.Reattach == nil {
		t.Error("a workspace runner made after Share does not use the shared provider")
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("provider %d still runs after Stop", pid)
	}
	if _, err := os.Stat(p.dir); !os.IsNotExist(err) {
		t.Fatalf("socket directory left behind: %v", err)
	}
}

//go:build integration

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dtap-platform/monorepo/internal/deploy"
	"github.com/dtap-platform/monorepo/internal/tf"
)

// project is one test's slice of the lab cluster: its own PROJECT, so its namespaces
// (<project>-<env>), its Terraform state and locks (<project>-system) and its releases never
// meet another test's, and a clean-up that removes all of them.
type project struct {
	t    *testing.T
	name string
	vars map[string]string // on top of the process environment (the lab's KIND_NODE_IMAGE, ...)
	out  *syncBuffer       // everything the in-process runs printed
}

func newProject(t *testing.T, name string) *project {
	t.Helper()
	tf.RequireProvider(t)
	p := &project{t: t, name: fmt.Sprintf("%s%d", name, time.Now().Unix()%10000), out: &syncBuffer{}}
	// The lab cluster is the embedded one: staging and prod need it named.
	p.vars = map[string]string{"PROJECT": p.name, "DEPLOY_LOCK_TIMEOUT": "3m", "CLUSTER": "embedded"}
	t.Cleanup(func() { p.cleanup() })
	return p
}

func (p *project) ns(env string) string { return p.name + "-" + env }
func (p *project) stateNS() string      { return p.name + "-system" }

// stateSecrets are env's Terraform states in the cluster: the Secret of each service's workspace
// (<env>.<service>), and of the environment's one workspace from before, if any.
func (p *project) stateSecrets(t *testing.T, env string) []corev1.Secret {
	t.Helper()
	list, err := lab.clients.CoreV1().Secrets(p.stateNS()).List(context.Background(), metav1.ListOptions{LabelSelector: "tfstateSecretSuffix=" + p.name})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Secret
	for _, s := range list.Items {
		if ws := s.Labels["tfstateWorkspace"]; ws == env || strings.HasPrefix(ws, env+".") {
			out = append(out, s)
		}
	}
	return out
}

// getenv is the project's variables, then extra, over the process environment.
func (p *project) getenv(extra map[string]string) deploy.Getenv {
	return func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		if v, ok := p.vars[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
}

// environ is the process environment with the project's variables and extra on top.
func (p *project) environ(extra map[string]string) []string {
	vars := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	maps.Copy(vars, p.vars)
	maps.Copy(vars, extra)
	var out []string
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

func (p *project) runner(root, env string, purpose deploy.Purpose, extra map[string]string) (*deploy.Runner, error) {
	// Not the test's context: clean-ups run after it is cancelled.
	s, err := deploy.Resolve(context.Background(), root, env, purpose, p.getenv(extra), p.environ(extra))
	if err != nil {
		return nil, err
	}
	return deploy.NewRunner(s, io.MultiWriter(os.Stdout, p.out), "e2e "+env), nil
}

// deploy runs `mage deploy env` in-process from the checkout at root.
func (p *project) deploy(root, env string, extra map[string]string) (*deploy.Result, time.Duration, error) {
	p.t.Helper()
	r, err := p.runner(root, env, deploy.ForDeploy, extra)
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	res, err := deploy.Deploy(p.t.Context(), r)
	if err == nil {
		fmt.Print(res.Summary(time.Since(start)))
	}
	return res, time.Since(start), err
}

func (p *project) plan(root, env string, extra map[string]string) (*deploy.PlanResult, error) {
	p.t.Helper()
	r, err := p.runner(root, env, deploy.ForPlan, extra)
	if err != nil {
		return nil, err
	}
	return deploy.Plan(p.t.Context(), r)
}

func (p *project) destroy(root, env string, extra map[string]string) error {
	p.t.Helper()
	r, err := p.runner(root, env, deploy.ForDestroy, extra)
	if err != nil {
		return err
	}
	return deploy.Destroy(context.WithoutCancel(p.t.Context()), r)
}

// mage starts `go run mage.go args...` in root, in a process group of its own (as a
// terminal runs it), with the project's variables and extra. Its output goes to the returned
// buffer and to the test's stdout.
func (p *project) mage(root string, extra map[string]string, args ...string) (*exec.Cmd, *syncBuffer) {
	p.t.Helper()
	cmd := exec.Command("go", append([]string{"run", "mage.go"}, args...)...)
	cmd.Dir = root
	cmd.Env = p.environ(extra)
	out := &syncBuffer{}
	w := io.MultiWriter(os.Stdout, out, p.out)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	return cmd, out
}

// mageRun runs `go run mage.go args...` to its end and returns its output and error.
func (p *project) mageRun(root string, extra map[string]string, args ...string) (string, error) {
	p.t.Helper()
	cmd, out := p.mage(root, extra, args...)
	err := cmd.Wait()
	return out.String(), err
}

// cleanup destroys what the project deployed, whatever state the test left it in, then its
// state namespace.
func (p *project) cleanup() {
	ctx := context.Background()
	nss, err := lab.clients.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: deploy.ProjectLabel + "=" + p.name})
	if err == nil {
		for _, ns := range nss.Items {
			if ns.Name == p.stateNS() {
				continue
			}
			env := ns.Labels[deploy.EnvironmentLabel]
			if env == "" {
				continue
			}
			extra := map[string]string{"NAMESPACE": ns.Name}
			if env == "prod" {
				extra["CONFIRM_PROD"] = "yes"
			}
			_ = p.unlock(env)
			if err := p.destroy(repoRoot, env, extra); err != nil {
				p.t.Logf("cleanup: destroy %s: %v", env, err)
			}
		}
	}
	for _, ns := range []string{p.stateNS()} {
		_ = lab.clients.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	}
	waitGone(p.t, p.stateNS())
}

func (p *project) unlock(env string) error {
	r, err := p.runner(repoRoot, env, deploy.ForDestroy, map[string]string{"CONFIRM_PROD": "yes"})
	if err != nil {
		return err
	}
	return deploy.Unlock(context.Background(), r)
}

func waitGone(t *testing.T, ns string) {
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if _, err := lab.clients.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
	}
	t.Logf("namespace %s still terminating after 2m", ns)
}

// workCopy copies the checkout's files (tracked and untracked, ignored ones left out) into a
// new directory and commits them there, on a branch named main: a teammate's clone of the same
// source, in another folder.
func workCopy(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "clone")
	out, err := exec.Command("git", "-C", repoRoot, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(repoRoot, f)
		st, err := os.Lstat(src)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the work tree, or not a file
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dst, "init", "-q", "-b", "main")
	git(t, dst, "add", "-A")
	git(t, dst, "commit", "-q", "-m", "the source under test")
	return dst
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// editFile replaces old with new in a file of the checkout at root; the test fails when old is not there.
func editFile(t *testing.T, root, path, old, new string) {
	t.Helper()
	p := filepath.Join(root, path)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// descendants lists every process below pid, by walking /proc: a run's go, mage, magefile,
// terraform and provider processes, whatever process group each put itself in.
func descendants(pid int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		str := string(b)
		end := strings.LastIndexByte(str, ')')
		if end < 0 {
			continue
		}
		fields := strings.Fields(str[end+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		self, _ := strconv.Atoi(strings.Fields(str)[0])
		children[ppid] = append(children[ppid], self)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// killAll stops, then SIGKILLs, a process and everything below it at once.
func killAll(pid int) []int {
	all := append([]int{pid}, descendants(pid)...)
	for _, p := range all {
		_ = syscall.Kill(p, syscall.SIGSTOP)
	}
	all = append([]int{pid}, descendants(pid)...)
	for _, p := range all {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	return all
}

// commandLine reads a process's command line.
func commandLine(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// waitFor polls out until it contains want, or fails the test after timeout.
func waitFor(t *testing.T, out *syncBuffer, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%q did not appear within %s; output:\n%s", want, timeout, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer that processes and goroutines may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

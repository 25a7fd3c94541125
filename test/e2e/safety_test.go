//go:build integration

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dtap-platform/monorepo/internal/deploy"
)

// TestNoRunCrossesIntoAnotherEnvironment aims dev's deploy and destroy at a namespace that
// belongs to prod: both refuse, name prod, and nothing in it changes.
func TestNoRunCrossesIntoAnotherEnvironment(t *testing.T) {
	p := newProject(t, "own")
	prodNS := p.ns("prod")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prodNS, Labels: map[string]string{deploy.EnvironmentLabel: "prod", deploy.ManagedByLabel: "deploy"}}}
	if _, err := lab.clients.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = lab.clients.CoreV1().Namespaces().Delete(context.Background(), prodNS, metav1.DeleteOptions{})
		waitGone(t, prodNS)
	})
	marker, err := lab.clients.CoreV1().ConfigMaps(prodNS).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "prod-data"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	out, err := p.mageRun(repoRoot, map[string]string{"NAMESPACE": prodNS}, "destroy", "-env=dev")
	if err == nil || !strings.Contains(out, "belongs to environment prod") || !strings.Contains(out, "CONFIRM_PROD=yes") {
		t.Errorf("destroy -env=dev into prod's namespace = %v:\n%s\nwant a refusal naming prod", err, out)
	}
	_, _, err = p.deploy(repoRoot, "dev", map[string]string{"NAMESPACE": prodNS})
	if err == nil || !strings.Contains(err.Error(), "belongs to environment prod") {
		t.Errorf("deploy dev into prod's namespace = %v, want a refusal naming prod", err)
	}
	got, err := lab.clients.CoreV1().ConfigMaps(prodNS).Get(t.Context(), marker.Name, metav1.GetOptions{})
	if err != nil || got.UID != marker.UID {
		t.Errorf("what prod's namespace held was changed: %v", err)
	}
	if n, _ := lab.clients.CoreV1().Namespaces().Get(t.Context(), prodNS, metav1.GetOptions{}); n.Labels[deploy.EnvironmentLabel] != "prod" {
		t.Errorf("prod's namespace was relabelled: %v", n.Labels)
	}
	if _, err := lab.clients.CoreV1().Namespaces().Get(t.Context(), p.stateNS(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused deploy created the state namespace %s: %v", p.stateNS(), err)
	}
}

// TestKilledAndInterruptedRunsLeaveNothingPending: a release left pending, as a killed run
// leaves it, is recovered by the next deploy; a deploy killed with SIGKILL (every process of
// it) leaves a stale lock that the next deploy names with the command that breaks it; and an
// interrupt during the rollout puts the release back and exits at once.
func TestKilledAndInterruptedRunsLeaveNothingPending(t *testing.T) {
	p := newProject(t, "kill")
	ns := p.ns("dev")
	if _, _, err := p.deploy(repoRoot, "dev", nil); err != nil {
		t.Fatal(err)
	}

	t.Run("a pending upgrade is recovered by the next deploy", func(t *testing.T) {
		cfg := helmConfig(t, ns)
		last, err := cfg.Releases.Last("api")
		if err != nil {
			t.Fatal(err)
		}
		// Exactly what `helm upgrade` writes before it touches anything, and a kill leaves.
		pending := *last
		pending.Version = last.Version + 1
		pending.Info = &release.Info{Status: release.StatusPendingUpgrade, Description: "Preparing upgrade",
			FirstDeployed: last.Info.FirstDeployed, LastDeployed: last.Info.LastDeployed}
		if err := cfg.Releases.Create(&pending); err != nil {
			t.Fatal(err)
		}
		res, _, err := p.deploy(repoRoot, "dev", nil)
		if err != nil {
			t.Fatalf("deploy after a pending upgrade: %v", err)
		}
		if !strings.Contains(strings.Join(res.Notes, "\n"), "release api was left pending-upgrade") {
			t.Errorf("the deploy did not say it recovered api: %v", res.Notes)
		}
		checkNonePending(t, ns)
	})

	t.Run("a deploy killed with SIGKILL leaves a stale lock the next one names", func(t *testing.T) {
		values := filepath.Join(t.TempDir(), "warn.yaml")
		if err := os.WriteFile(values, []byte("logLevel: warn\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd, out := p.mage(repoRoot, map[string]string{"VALUES_FILES": values}, "deploy", "dev")
		waitFor(t, out, "==> terraform plan and apply", 3*time.Minute)
		// Mid-apply: once terraform has started its helm provider plugin, which is killed too.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if slices.ContainsFunc(descendants(cmd.Process.Pid), func(pid int) bool { return strings.Contains(commandLine(pid), "terraform-provider-helm") }) {
				break
			}
		}
		var names []string
		for _, pid := range append([]int{cmd.Process.Pid}, descendants(cmd.Process.Pid)...) {
			names = append(names, filepath.Base(strings.Fields(commandLine(pid) + " ?")[0]))
		}
		killed := killAll(cmd.Process.Pid)
		_ = cmd.Wait()
		t.Logf("killed %d processes mid-apply: %v", len(killed), names)

		next, err := p.mageRun(repoRoot, nil, "deploy", "dev")
		if err == nil || !strings.Contains(next, "stale") || !strings.Contains(next, "go run mage.go unlock -env=dev") {
			t.Fatalf("the deploy after the kill = %v:\n%s\nwant the stale lock named with the command that breaks it", err, next)
		}
		if out, err := p.mageRun(repoRoot, nil, "unlock", "-env=dev"); err != nil {
			t.Fatalf("unlock -env=dev: %v\n%s", err, out)
		}
		after, err := p.mageRun(repoRoot, map[string]string{"VALUES_FILES": values}, "deploy", "dev")
		if err != nil {
			t.Fatalf("the deploy after unlock: %v\n%s", err, after)
		}
		checkNonePending(t, ns)
		if cfg := checkServes(t, ns, "api", "dev"); cfg["logLevel"] != "warn" {
			t.Errorf("after recovery api runs logLevel %v, want warn", cfg["logLevel"])
		}
	})

	t.Run("an interrupt during the rollout rolls back and exits", func(t *testing.T) {
		before := revisionOf(t, ns, "api")
		crash := pushVariant(t, "api", "crash-"+p.name, `CMD ["crash"]`)
		token := "interrupted-token-" + randomText(t, 9)
		cmd, out := p.mage(repoRoot, map[string]string{"SERVICES": "api", "IMAGE_TAG": crash, "SKIP_BUILD": "true",
			"ROLLOUT_MAX_RESTARTS": "100", "SECRET_API_TOKEN": token}, "deploy", "dev")
		waitFor(t, out, "==> rollout api", 3*time.Minute)
		time.Sleep(2 * time.Second)
		sent := time.Now()
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		t.Logf("FIGURE interrupt during the rollout until exit: %s", time.Since(sent).Round(100*time.Millisecond))
		if err == nil {
			t.Fatalf("the interrupted deploy exited 0:\n%s", out)
		}
		for _, want := range []string{"interrupted", "rolled back to revision"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("the interrupted deploy's output does not say %q", want)
			}
		}
		checkNonePending(t, ns)
		if got := revisionOf(t, ns, "api"); got <= before {
			t.Errorf("api's deployed revision %d, want the rollback's (after %d)", got, before)
		}
		checkServes(t, ns, "api", "dev")
		for _, dir := range []string{repoRoot, os.TempDir()} {
			_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return nil
				}
				if info, err := d.Info(); err == nil && info.Mode().IsRegular() && info.Size() < 64<<20 {
					if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), token) {
						t.Errorf("the secret of the interrupted deploy is in %s", path)
					}
				}
				return nil
			})
		}
	})
}

// checkNonePending: no release record in ns is pending.
func checkNonePending(t *testing.T, ns string) {
	t.Helper()
	records, err := lab.clients.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records.Items {
		if strings.HasPrefix(r.Labels["status"], "pending") {
			t.Errorf("release record %s is %s", r.Name, r.Labels["status"])
		}
	}
}

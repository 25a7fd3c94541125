//go:build integration

package e2e

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPlanSaysWhatDeployDoes runs plan, then deploy, over a table of changes, and checks for each
// that what plan said would be built, rolled and versioned is exactly what deploy did.
func TestPlanSaysWhatDeployDoes(t *testing.T) {
	p := newProject(t, "agree")
	clone := workCopy(t)
	addService(t, clone, "hello", "")
	git(t, clone, "add", "-A")
	git(t, clone, "commit", "-q", "-m", "hello")
	if _, _, err := p.deploy(clone, "dev", nil); err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	cases := []struct {
		name    string
		prepare func(t *testing.T)
		extra   map[string]string
	}{
		{"no change", nil, nil},
		{"one service's code changed", func(t *testing.T) {
			editFile(t, clone, "services/api/main.go", "package main", "// a change of api alone.\npackage main")
		}, nil},
		{"a values file changed", func(t *testing.T) {
			appendFile(t, clone, "services/status/values.yaml", "\nlogLevel: warn\n")
		}, nil},
		{"a secret changed", nil, map[string]string{"SECRET_API_DB_PASSWORD": randomText(t, 12)}},
		{"IMAGE_TAG set", nil, map[string]string{"IMAGE_TAG": "pr-7"}},
		{"a service removed with CONFIRM_REMOVE", func(t *testing.T) {
			if err := os.RemoveAll(filepath.Join(clone, "services", "hello")); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"CONFIRM_REMOVE": "hello"}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare(t)
				git(t, clone, "add", "-A")
				git(t, clone, "commit", "-q", "-m", tt.name)
			}
			plan, err := p.plan(clone, "dev", tt.extra)
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			res, _, err := p.deploy(clone, "dev", tt.extra)
			if err != nil {
				t.Fatalf("deploy: %v", err)
			}
			did := map[string]string{}
			for _, row := range res.Rows {
				switch {
				case row.Untouched(): // also "unchanged (0/1 pods ready)", a pod between two probes
				case row.Change == "rolled":
					did[row.Service] = "upgraded"
				default:
					did[row.Service] = row.Change
				}
			}
			if !maps.Equal(plan.Changes, did) {
				t.Errorf("plan said %v, deploy did %v", plan.Changes, did)
			}
			builds, built := slices.Sorted(slices.Values(plan.Builds)), slices.Sorted(slices.Values(res.Built))
			if !slices.Equal(builds, built) {
				t.Errorf("plan would build %v, deploy built %v", builds, built)
			}
			if !maps.Equal(plan.Secrets, res.Secrets) {
				t.Errorf("plan would write secret versions %v, deploy wrote %v", plan.Secrets, res.Secrets)
			}
			for name, action := range plan.Terraform {
				if plan.Changes[name] != action {
					t.Errorf("Terraform's plan changes %s (%s), which deploy's comparison left %q", name, action, plan.Changes[name])
				}
			}
		})
	}
}

// TestAServiceThatCrashesIsRolledBackAlone deploys several services for the first time, one of
// which exits at start: it alone is removed; the others stay deployed, and the summary says so.
func TestAServiceThatCrashesIsRolledBackAlone(t *testing.T) {
	p := newProject(t, "alone")
	clone := workCopy(t)
	addService(t, clone, "hello", "")
	addService(t, clone, "broken", `func init() { if len(os.Args) == 1 { println("broken on purpose"); os.Exit(3) } }`)
	git(t, clone, "add", "-A")
	git(t, clone, "commit", "-q", "-m", "two more services, one broken")
	res, _, err := p.deploy(clone, "dev", nil)
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("deploy with a broken service: %v, want its failure", err)
	}
	if res == nil {
		t.Fatalf("deploy returned no summary with the failure of one service: %v", err)
	}
	for _, row := range res.Rows {
		want := "installed"
		if row.Service == "broken" {
			want = "failed, first install removed"
		}
		if row.Change != want {
			t.Errorf("%s: %q in the summary, want %q", row.Service, row.Change, want)
		}
	}
	for _, svc := range []string{"api", "status", "hello"} {
		if _, err := lab.clients.AppsV1().Deployments(p.ns("dev")).Get(t.Context(), svc, metav1.GetOptions{}); err != nil {
			t.Errorf("%s is not deployed after broken's failure: %v", svc, err)
		}
	}
}

// TestATransientStartFailureIsRetriedNotRolledBack deploys several services for the first time,
// one of which fails its first start with exit code 128, the code the runtime gives a container
// it could not start (runc's "unable to freeze" under load): the kubelet restarts it, and the
// deploy succeeds with every service installed.
func TestATransientStartFailureIsRetriedNotRolledBack(t *testing.T) {
	p := newProject(t, "hiccup")
	clone := workCopy(t)
	addService(t, clone, "hello", "")
	// /dev/shm is the pod's own tmpfs, writable under a read-only root and kept across the
	// restarts of its containers: the first start alone fails.
	addService(t, clone, "flaky", `func init() {
	if len(os.Args) == 1 {
		if _, err := os.Stat("/dev/shm/started"); err != nil {
			_ = os.WriteFile("/dev/shm/started", nil, 0o600)
			println("failing the first start, as the runtime does when it cannot start a container")
			os.Exit(128)
		}
	}
}`)
	git(t, clone, "add", "-A")
	git(t, clone, "commit", "-q", "-m", "two more services, one failing its first start")
	res, _, err := p.deploy(clone, "dev", nil)
	if err != nil {
		t.Fatalf("deploy with one transient start failure: %v", err)
	}
	for _, row := range res.Rows {
		if row.Change != "installed" {
			t.Errorf("%s: %q in the summary, want installed", row.Service, row.Change)
		}
	}
	pods, err := lab.clients.CoreV1().Pods(p.ns("dev")).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=flaky,app.kubernetes.io/component=server"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("flaky's pods: %v (%d)", err, len(pods.Items))
	}
	c := pods.Items[0].Status.ContainerStatuses[0]
	if last := c.LastTerminationState.Terminated; c.RestartCount < 1 || last == nil || last.ExitCode != 128 {
		t.Errorf("flaky restarted %d times, last termination %+v: the failure was not injected as meant", c.RestartCount, last)
	}
}

// addService writes services/<name> into a clone: a one-line main over the kit, with extra Go
// code of its own, and a deploy description without a public route.
func addService(t *testing.T, clone, name, extra string) {
	t.Helper()
	dir := filepath.Join(clone, "services", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	imports := `import "github.com/dtap-platform/monorepo/services/kit"`
	if extra != "" {
		imports = "import (\n\t\"os\"\n\n\t\"github.com/dtap-platform/monorepo/services/kit\"\n)"
	}
	main := "// Command " + name + " is a throwaway service of the e2e tests.\npackage main\n\n" + imports + "\n\n" + extra +
		"\n\nfunc main() { kit.Main(kit.Service{Name: \"" + name + "\"}) }\n"
	for file, content := range map[string]string{"main.go": main, "values.yaml": "ingress:\n  enabled: false\n"} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func appendFile(t *testing.T, root, path, text string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(root, path), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

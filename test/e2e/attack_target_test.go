//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dtap-platform/monorepo/internal/deploy"
)

// TestAttacksOnTheTarget runs, against one deployed dev, the neighbouring inputs that made
// runs act on another namespace, another lock or another cluster (issue 22, attacks 1-4 and
// 10), as a user types them: each is refused before any change, naming the cause and the fix,
// and nothing of dev changes. It deploys and destroys with a ~/.kube/config whose current
// context is a work cluster that must never be contacted (a listener counts the attempts).
func TestAttacksOnTheTarget(t *testing.T) {
	p := newProject(t, "atk")
	dev := p.ns("dev")
	t.Cleanup(func() {
		_ = lab.clients.CoreV1().Namespaces().Delete(context.Background(), dev, metav1.DeleteOptions{})
		waitGone(t, dev)
	})

	// The work cluster: a current context in ~/.kube/config, at an address that counts who calls.
	work, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer work.Close()
	var contacted atomic.Int32
	go func() {
		for {
			c, err := work.Accept()
			if err != nil {
				return
			}
			contacted.Add(1)
			c.Close()
		}
	}()
	home := t.TempDir()
	kubeconfig := "apiVersion: v1\nkind: Config\ncurrent-context: work\n" +
		"clusters:\n- name: work\n  cluster:\n    server: https://" + work.Addr().String() + "\n" +
		"contexts:\n- name: work\n  context:\n    cluster: work\n    user: me\n" +
		"users:\n- name: me\n  user:\n    token: t\n"
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".kube", "config"), []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	asUser := goCaches(t, map[string]string{"HOME": home, "KUBECONFIG": "", "KUBE_CONTEXT": "", "SERVICES": "api"})

	out, err := p.mageRun(repoRoot, asUser, "deploy", "dev")
	if err != nil {
		t.Fatalf("deploy dev with a work cluster as the current context: %v\n%s", err, out)
	}
	if !strings.Contains(out, `current context of ~/.kube/config ("work") is not used`) || !strings.Contains(out, "the local kind cluster") {
		t.Errorf("deploy did not say it chose the embedded cluster over the current context:\n%s", out)
	}
	before := snapshot(t, p, dev)

	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range asUser {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	refused := func(name string, out string, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: not refused:\n%s", name, out)
			return
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the refusal does not say %q:\n%s", name, w, out)
			}
		}
		if after := snapshot(t, p, dev); after != before {
			t.Errorf("%s changed dev:\nbefore %s\nafter  %s", name, before, after)
		}
	}

	// 1. rollback aimed at another namespace (a teammate's, holding nothing of dev).
	teamX := p.ns("teamx")
	if _, err := lab.clients.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: teamX}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = lab.clients.CoreV1().Namespaces().Delete(context.Background(), teamX, metav1.DeleteOptions{})
	})
	out, err = p.mageRun(repoRoot, with(map[string]string{"NAMESPACE": teamX}), "rollback", "-env=dev")
	refused("rollback -env=dev with NAMESPACE="+teamX, out, err, "its state says it runs in "+dev, "Unset NAMESPACE")

	// 2. a second STATE_NAMESPACE: a second lock and a second state for the same namespace.
	state2 := p.name + "-state2"
	out, err = p.mageRun(repoRoot, with(map[string]string{"STATE_NAMESPACE": state2}), "deploy", "dev")
	refused("deploy dev with STATE_NAMESPACE="+state2, out, err, "keeps its state and lock in namespace "+p.stateNS(), "STATE_NAMESPACE="+p.stateNS())
	if _, err := lab.clients.CoreV1().Namespaces().Get(t.Context(), state2, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused run created the state namespace %s: %v", state2, err)
		_ = lab.clients.CoreV1().Namespaces().Delete(context.Background(), state2, metav1.DeleteOptions{})
	}

	// 3 and 4. destroy reaching another cluster behind the recorded names: the record's cluster
	// identity is another's (as after a switched or repointed context).
	marker := filepath.Join(repoRoot, ".cache", "deployed", "dev.json")
	saved, err := os.ReadFile(marker)
	if err != nil {
		t.Fatalf("deploy recorded nothing for a bare destroy: %v", err)
	}
	var rec deploy.Deployed
	if err := json.Unmarshal(saved, &rec); err != nil || rec.ClusterUID == "" || rec.Server == "" {
		t.Fatalf("the record holds no cluster identity: %v %+v", err, rec)
	}
	other := rec
	other.ClusterUID, other.Server = "0c0ffee0-another-cluster", "https://team-cluster.example:6443"
	b, _ := json.Marshal(other)
	if err := os.WriteFile(marker, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = p.mageRun(repoRoot, asUser, "destroy", "-env=dev")
	refused("destroy -env=dev on another cluster than the recorded one", out, err, "0c0ffee0-another-cluster", rec.ClusterUID, "nothing was changed")
	out, err = p.mageRun(repoRoot, asUser, "destroy")
	refused("a bare destroy on another cluster than the recorded one", out, err, "0c0ffee0-another-cluster", "nothing was destroyed")
	if err := os.WriteFile(marker, saved, 0o644); err != nil {
		t.Fatal(err)
	}

	// 10. a teammate's objects in dev's namespace survive its destroy, and are named.
	if _, err := lab.clients.CoreV1().ConfigMaps(dev).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "teammate-precious"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "teammate-db"}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}}}}
	if _, err := lab.clients.CoreV1().PersistentVolumeClaims(dev).Create(t.Context(), pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err = p.mageRun(repoRoot, asUser, "destroy", "-env=dev")
	if err != nil {
		t.Fatalf("destroy -env=dev: %v\n%s", err, out)
	}
	for _, w := range []string{"namespace " + dev + " kept", "configmap/teammate-precious", "persistentvolumeclaim/teammate-db"} {
		if !strings.Contains(out, w) {
			t.Errorf("destroy does not say %q:\n%s", w, out)
		}
	}
	if _, err := lab.clients.CoreV1().ConfigMaps(dev).Get(t.Context(), "teammate-precious", metav1.GetOptions{}); err != nil {
		t.Errorf("destroy deleted the teammate's ConfigMap: %v", err)
	}
	if _, err := lab.clients.CoreV1().PersistentVolumeClaims(dev).Get(t.Context(), "teammate-db", metav1.GetOptions{}); err != nil {
		t.Errorf("destroy deleted the teammate's volume claim: %v", err)
	}
	if deps, _ := lab.clients.AppsV1().Deployments(dev).List(t.Context(), metav1.ListOptions{}); len(deps.Items) != 0 {
		t.Errorf("destroy left %d deployments in %s", len(deps.Items), dev)
	}
	if n := contacted.Load(); n != 0 {
		t.Errorf("the work cluster of ~/.kube/config was contacted %d times", n)
	}
}

// snapshot is what an attack must not change in dev: its namespace's labels and annotations,
// its releases' revisions, and its state's serial.
func snapshot(t *testing.T, p *project, ns string) string {
	t.Helper()
	ctx := context.Background()
	n, err := lab.clients.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return "namespace: " + err.Error()
	}
	rels, _ := lab.clients.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	var names []string
	for _, s := range rels.Items {
		names = append(names, s.Name+"="+s.Labels["status"])
	}
	states := map[string]string{}
	for _, sec := range p.stateSecrets(t, "dev") {
		states[sec.Name] = sec.ResourceVersion
	}
	b, _ := json.Marshal(map[string]any{"labels": n.Labels, "annotations": n.Annotations, "releases": names, "states": states})
	return string(b)
}

// goCaches adds to extra the Go caches of this process, so that a run with another HOME
// does not compile everything anew.
func goCaches(t *testing.T, extra map[string]string) map[string]string {
	t.Helper()
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		v, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatal(err)
		}
		extra[k] = strings.TrimSpace(string(v))
	}
	return extra
}

// TestAFailedFirstDeployIsSeenByABareDestroy: a first deploy that fails after it made the
// namespace, its secrets and its state is recorded, so that a bare `mage destroy` in that
// checkout removes what it left (issue 23).
func TestAFailedFirstDeployIsSeenByABareDestroy(t *testing.T) {
	p := newProject(t, "ffd")
	clone := workCopy(t)
	ns := p.ns("dev")
	out, err := p.mageRun(clone, map[string]string{"SERVICES": "api", "IMAGE_TAG": "no-such-tag-" + p.name, "SKIP_BUILD": "true",
		"SECRET_API_DB_PASSWORD": "first-deploy-" + p.name}, "deploy", "dev")
	if err == nil {
		t.Fatalf("a first deploy of a missing image tag succeeded:\n%s", out)
	}
	if _, err := lab.clients.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); err != nil {
		t.Fatalf("the failed first deploy left no namespace to clean up (the test needs one): %v", err)
	}
	if _, err := os.Stat(filepath.Join(clone, ".cache", "deployed", "dev.json")); err != nil {
		t.Fatalf("the failed first deploy was not recorded: %v", err)
	}
	out, err = p.mageRun(clone, nil, "destroy")
	if err != nil || strings.Contains(out, "nothing to destroy") {
		t.Fatalf("bare destroy after a failed first deploy = %v:\n%s", err, out)
	}
	waitGone(t, ns)
	if _, err := lab.clients.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s is still there: %v", ns, err)
	}
	checkNothingLeft(t, p, "dev")
}

// TestAttacksRefusedUpFront: two attacks of issue 22 that the settings refuse before any run
// touches the cluster, typed as a user would: HELM_DRIVER naming another release storage (5),
// and a promotion that skips the pipeline's upstream (9). Nothing of either environment exists
// afterwards.
func TestAttacksRefusedUpFront(t *testing.T) {
	p := newProject(t, "upf")
	for _, tc := range []struct {
		name  string
		extra map[string]string
		args  []string
		want  []string
		envs  []string // whose namespaces must not exist afterwards
	}{
		{"HELM_DRIVER=configmap splits the release store", map[string]string{"HELM_DRIVER": "configmap"},
			[]string{"deploy", "dev"}, []string{"HELM_DRIVER=configmap", "unset HELM_DRIVER"}, []string{"dev"}},
		{"promote dev staging skips test, staging's upstream", nil,
			[]string{"promote", "dev", "staging"}, []string{"staging's images come from test", "go run mage.go promote test staging", "nothing was done"}, []string{"staging"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := p.mageRun(repoRoot, tc.extra, tc.args...)
			if err == nil {
				t.Fatalf("not refused:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("the refusal does not say %q:\n%s", w, out)
				}
			}
			for _, env := range tc.envs {
				if _, err := lab.clients.CoreV1().Namespaces().Get(t.Context(), p.ns(env), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("namespace %s exists after the refusal: %v", p.ns(env), err)
				}
			}
			if _, err := lab.clients.CoreV1().Namespaces().Get(t.Context(), p.stateNS(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the state namespace %s exists after the refusal: %v", p.stateNS(), err)
			}
		})
	}
}

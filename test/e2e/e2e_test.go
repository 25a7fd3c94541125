//go:build integration

// Package e2e runs the chart and the deploy path on a real kind cluster, created (or reused)
// the way users get it: internal/cluster, with the image pushed to the cluster's local
// registry. The service is reached through client-go port-forwards on 127.0.0.1.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"helm.sh/helm/v3/pkg/action"

	"github.com/dtap-platform/monorepo/internal/cluster"
	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/rollout"
)

var repoRoot, _ = filepath.Abs(filepath.Join("..", ".."))

// The cluster and the pushed image, shared by every test of the package.
var (
	lab struct {
		opts    cluster.Options
		door    cluster.FrontDoor // where the front door listens on 127.0.0.1
		cfg     *rest.Config
		clients kubernetes.Interface
		image   image.Ref // in the local registry, with digest
	}
)

func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e setup: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code(m))
}

func setup() (func(*testing.M) int, error) {
	ctx := context.Background()
	o, err := cluster.OptionsFromEnv(repoRoot)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	t, err := cluster.Up(ctx, o)
	if err != nil {
		return nil, err
	}
	fmt.Printf("e2e: cluster %q up in %s (created: %v, create %s, ready %s)\n", o.Name, time.Since(start).Round(time.Second),
		t.Created, t.Create.Round(time.Second), t.Ready.Round(time.Second))
	lab.opts, lab.door = o, t.FrontDoor
	if lab.door == (cluster.FrontDoor{}) {
		return nil, fmt.Errorf("the lab cluster %q has no front door: recreate it (go run mage.go kind:down)", o.Name)
	}
	if lab.cfg, err = o.RESTConfig(); err != nil {
		return nil, err
	}
	if lab.clients, err = kubernetes.NewForConfig(lab.cfg); err != nil {
		return nil, err
	}

	// The image under test, pushed to the local registry like any registry.
	src := os.Getenv("API_IMAGE")
	if src == "" {
		return nil, fmt.Errorf("API_IMAGE is not set: run through `go run mage.go test:integration`, which builds the images")
	}
	// Under a tag of its own: the content tags in the registry are deploy's, published with
	// normalised bytes.
	_, tag, _ := strings.Cut(src, ":")
	lab.image = image.Ref{Repository: o.Registry() + "/api", Tag: "e2e-" + tag}
	start = time.Now()
	if err := image.Docker(ctx, nil, "tag", src, lab.image.String()); err != nil {
		return nil, err
	}
	if err := image.Docker(ctx, nil, "push", lab.image.String()); err != nil {
		return nil, err
	}
	if lab.image.Digest, err = image.Lookup(ctx, lab.image.Repository, lab.image.Tag); err != nil || lab.image.Digest == "" {
		return nil, fmt.Errorf("pushed %s but the registry has no digest for it: %v", lab.image, err)
	}
	fmt.Printf("e2e: pushed %s in %s\n", lab.image, time.Since(start).Round(100*time.Millisecond))
	return func(m *testing.M) int { return m.Run() }, nil
}

// namespace creates a namespace for one test, labelled to enforce Pod Security "restricted",
// and deletes it (waiting until it is gone) when the test ends.
func namespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
		"pod-security.kubernetes.io/audit":   "restricted",
	}}}
	created, err := lab.clients.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	name := created.Name
	t.Cleanup(func() {
		ctx := context.Background()
		if t.Failed() {
			dumpNamespace(t, name)
		}
		_ = lab.clients.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
			if _, err := lab.clients.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return
			}
		}
		t.Logf("namespace %s still terminating after 2m", name)
	})
	return name
}

// dumpNamespace prints what a failing test needs: every Deployment's pods with their waiting
// reasons, events and the last log lines of crashed containers.
func dumpNamespace(t *testing.T, ns string) {
	ctx := context.Background()
	deps, err := lab.clients.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("dump %s: %v", ns, err)
		return
	}
	for i := range deps.Items {
		t.Logf("deployment %s/%s:\n%s", ns, deps.Items[i].Name, rollout.Diagnose(ctx, lab.clients, &deps.Items[i]))
	}
	pods, _ := lab.clients.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			lines := int64(30)
			raw, err := lab.clients.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name, TailLines: &lines}).DoRaw(ctx)
			if err == nil {
				t.Logf("logs %s/%s:\n%s", p.Name, c.Name, raw)
			}
		}
	}
	events, _ := lab.clients.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	for _, e := range events.Items {
		t.Logf("event %s %s/%s: %s %s", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
	}
}

// helmConfig is a Helm SDK configuration for a namespace of the lab cluster.
func helmConfig(t *testing.T, ns string) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &lab.opts.Kubeconfig, &ns
	cfg := new(action.Configuration)
	// Helm's debug log stays quiet; failures carry their own messages.
	if err := cfg.Init(flags, ns, "secret", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	return cfg
}

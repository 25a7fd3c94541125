//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/load"
)

// loadgenImage builds test/e2e/loadgen into a FROM scratch image and pushes it to the local
// registry. It returns the pullable reference.
func loadgenImage(t *testing.T) string {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "loadgen"), "./loadgen")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build loadgen: %v\n%s", err, out)
	}
	dockerfile := "FROM scratch\nCOPY loadgen /loadgen\nUSER 65532:65532\nENTRYPOINT [\"/loadgen\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := image.Ref{Repository: lab.opts.Registry() + "/loadgen", Tag: "e2e"}
	if err := image.Docker(ctx, nil, "build", "-q", "-t", ref.String(), dir); err != nil {
		t.Fatal(err)
	}
	ref.Digest = pushLocal(t, ref)
	return ref.String()
}

// pushLocal pushes a local image to the lab registry and returns its digest there.
func pushLocal(t *testing.T, ref image.Ref) string {
	t.Helper()
	if err := image.Docker(t.Context(), nil, "push", ref.Repository+":"+ref.Tag); err != nil {
		t.Fatal(err)
	}
	digest, err := image.Lookup(t.Context(), ref.Repository, ref.Tag)
	if err != nil || digest == "" {
		t.Fatalf("pushed %s, but the registry has no digest for it: %v", ref, err)
	}
	return digest
}

// startLoad runs the load generator as a pod in ns against url, restricted like any pod there.
// wait() returns its summary once the bounded run is over.
func startLoad(t *testing.T, ns, url string, rate int, duration time.Duration) (wait func() load.Result) {
	t.Helper()
	img := loadgenImage(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "loadgen-", Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy:   corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{
				Name: "loadgen", Image: img,
				Args: []string{"-url", url, "-rate", fmt.Sprint(rate), "-duration", duration.String()},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	created, err := lab.clients.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The pod is the test's, not the deploy's: gone before destroy looks, so that the namespace
	// holds only what deploy made (a pod left there keeps the namespace, as destroy must).
	remove := func() {
		_ = lab.clients.CoreV1().Pods(ns).Delete(context.Background(), created.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
	}
	t.Cleanup(remove)
	// Wait until it runs, so the load covers what comes next.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		p, err := lab.clients.CoreV1().Pods(ns).Get(t.Context(), created.Name, metav1.GetOptions{})
		if err == nil && p.Status.Phase != corev1.PodPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("loadgen pod not running after 1m")
		}
	}
	return func() load.Result {
		ctx, cancel := context.WithTimeout(context.Background(), duration+2*time.Minute)
		defer cancel()
		for {
			p, err := lab.clients.CoreV1().Pods(ns).Get(ctx, created.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				raw, err := lab.clients.CoreV1().Pods(ns).GetLogs(created.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
				if err != nil {
					t.Fatal(err)
				}
				remove()
				var res load.Result
				if err := json.Unmarshal([]byte(lastLine(string(raw))), &res); err != nil {
					t.Fatalf("loadgen %s: %v: %s", p.Status.Phase, err, raw)
				}
				return res
			}
			select {
			case <-ctx.Done():
				t.Fatalf("loadgen did not finish: %v", ctx.Err())
			case <-time.After(time.Second):
			}
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

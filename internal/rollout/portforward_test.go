package rollout

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
)

// TestForwardServiceTakesTheNewestReadyPod: right after a rollout the old pod may still be
// listed as ready, about to drain; the port-forward goes to the new one. (No API server runs
// here, so the port-forward itself fails, and its error names the pod it went to.)
func TestForwardServiceTakesTheNewestReadyPod(t *testing.T) {
	now := time.Now()
	pod := func(name string, age time.Duration, ready, deleting bool) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "api"},
				CreationTimestamp: metav1.NewTime(now.Add(-age))},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}},
		}
		if ready {
			p.Status.Conditions[0].Status = corev1.ConditionTrue
		}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{Time: now}
		}
		return p
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"}}}
	cs := fake.NewClientset(svc,
		pod("api-a-old", time.Hour, true, false),
		pod("api-b-new", time.Minute, true, false),
		pod("api-c-newest-unready", time.Second, false, false),
		pod("api-d-newest-deleting", time.Second, true, true))
	cfg := &rest.Config{Host: "http://127.0.0.1:1"}
	_, err := ForwardService(t.Context(), cfg, cs, "ns", "api", "http")
	if err == nil || !strings.Contains(err.Error(), "ns/api-b-new:8080") {
		t.Fatalf("ForwardService = %v, want a port-forward to ns/api-b-new, the newest ready pod not being deleted", err)
	}
}

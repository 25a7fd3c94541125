package rollout

import (
	"context"
	"io"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// A first rollout whose pod meets the runtime's "unable to freeze" start error once, as a busy
// node gives when many pods start at once, then starts. The runtime's error cannot be provoked
// on demand in a real cluster, so the kubelet's statuses are played by a fake clientset.
func TestWaitRidesOutAStartErrorThatTheKubeletRetries(t *testing.T) {
	labels := map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: "abc"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Generation: 1, UID: "d1",
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "1"}},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "ns", Labels: labels,
		Annotations:     map[string]string{"deployment.kubernetes.io/revision": "1"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "d1", Controller: ptr.To(true)}}}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-abc-1", Namespace: "ns", Labels: labels, CreationTimestamp: metav1.Now()},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "RunContainerError",
				Message: "failed to start containerd task: runc run failed: unable to freeze"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError"}},
		}}},
	}
	cs := fake.NewClientset(dep, rs, pod)

	w, err := NewWatch(t.Context(), cs, "ns")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	done := make(chan error, 1)
	go func() {
		done <- Wait(t.Context(), w, "web", Rules{Timeout: 30 * time.Second, MaxRestarts: 1, UnschedulableGrace: time.Minute}, io.Discard)
	}()
	time.Sleep(1500 * time.Millisecond) // Wait has seen the start error at least once
	select {
	case err := <-done:
		t.Fatalf("Wait gave up on a start error the kubelet retries: %v", err)
	default:
	}
	// The kubelet's retry starts the container; the Deployment becomes available.
	pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	pod.Status.ContainerStatuses[0].Ready, pod.Status.ContainerStatuses[0].RestartCount = true, 1
	if _, err := cs.CoreV1().Pods("ns").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
	if _, err := cs.AppsV1().Deployments("ns").UpdateStatus(context.Background(), dep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait = %v, want the rollout ready after the retry", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not see the rollout become ready")
	}
}

// Following one rollout among many services caches that service's objects only.
func TestWatchOfSomeReleasesHoldsOnlyTheirObjects(t *testing.T) {
	dep := func(name string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns",
			Labels: map[string]string{"app.kubernetes.io/instance": name}}}
	}
	cs := fake.NewClientset(dep("web"), dep("s01"), dep("s02"))
	w, err := NewWatch(t.Context(), cs, "ns", "web", "s02")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for name, want := range map[string]bool{"web": true, "s01": false, "s02": true} {
		if _, err := w.deps.Deployments("ns").Get(name); (err == nil) != want {
			t.Errorf("deployment %s cached = %v, want %v", name, err == nil, want)
		}
	}
}

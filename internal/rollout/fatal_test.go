package rollout

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pod is a pod named web-1 with one container, app, in the given status.
func pod(status corev1.ContainerStatus, conditions ...corev1.PodCondition) corev1.Pod {
	status.Name = "app"
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1"},
		Status:     corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{status}, Conditions: conditions},
	}
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "because " + reason}}
}

func exited(code int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: "Error"}}
}

func waitingFor(reason, message string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
}

// startError is how a container ends whose start failed in the runtime (runc's exit 128).
func startError() corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError",
		Message: "failed to create containerd task: runc create failed: unable to freeze"}}
}

func createdAt(p corev1.Pod, at time.Time) corev1.Pod {
	p.CreationTimestamp = metav1.NewTime(at)
	return p
}

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
}

func unschedulableSince(at time.Time) corev1.PodCondition {
	return corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: "0/1 nodes are available: insufficient cpu", LastTransitionTime: metav1.NewTime(at)}
}

func TestFatalGivesUpOnlyOnWhatWaitingCannotFix(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rules := Rules{Timeout: 5 * time.Minute, MaxRestarts: 2, UnschedulableGrace: time.Minute}
	tests := []struct {
		name string
		pod  corev1.Pod
		want string // a part of the reason; "" means not fatal
	}{
		{"an image that cannot be pulled is fatal at once", pod(corev1.ContainerStatus{State: waiting("ErrImagePull")}),
			"pod web-1 container app is ErrImagePull: because ErrImagePull"},
		{"an image pull back-off is fatal at once", pod(corev1.ContainerStatus{State: waiting("ImagePullBackOff")}),
			"is ImagePullBackOff"},
		{"a missing Secret or ConfigMap is fatal at once", pod(corev1.ContainerStatus{State: waiting("CreateContainerConfigError")}),
			"is CreateContainerConfigError"},
		{"a container still being created is not fatal", pod(corev1.ContainerStatus{State: waiting("ContainerCreating")}), ""},
		{"a crash loop at the restart limit is fatal",
			pod(corev1.ContainerStatus{State: waiting("CrashLoopBackOff"), LastTerminationState: exited(1), RestartCount: 2}),
			"keeps crashing (2 restarts, last exit code 1, Error)"},
		{"a crash loop above the restart limit is fatal",
			pod(corev1.ContainerStatus{State: waiting("CrashLoopBackOff"), LastTerminationState: exited(2), RestartCount: 7}),
			"keeps crashing (7 restarts, last exit code 2"},
		{"a crashed container restarted and not ready at the limit is fatal",
			pod(corev1.ContainerStatus{State: running(), LastTerminationState: exited(1), RestartCount: 2, Ready: false}),
			"keeps crashing"},
		{"a crash below the restart limit is not fatal yet",
			pod(corev1.ContainerStatus{State: waiting("CrashLoopBackOff"), LastTerminationState: exited(1), RestartCount: 1}), ""},
		{"restarts after clean exits (code 0) are not crashes",
			pod(corev1.ContainerStatus{State: waiting("CrashLoopBackOff"), LastTerminationState: exited(0), RestartCount: 9}), ""},
		{"a container that crashed once and now runs ready is not fatal",
			pod(corev1.ContainerStatus{State: running(), LastTerminationState: exited(1), RestartCount: 5, Ready: true}), ""},
		{"a start the runtime failed (exit 128) is retried, not fatal",
			pod(corev1.ContainerStatus{State: waiting("RunContainerError"), LastTerminationState: startError(), RestartCount: 0}), ""},
		{"a start the runtime failed, restarted and now running, is not a crash",
			pod(corev1.ContainerStatus{State: running(), LastTerminationState: startError(), RestartCount: 2}), ""},
		{"a start that keeps failing in the runtime is fatal after the retries",
			pod(corev1.ContainerStatus{State: waiting("RunContainerError"), LastTerminationState: startError(), RestartCount: StartRetries}),
			"is RunContainerError"},
		{"a container in back-off after start errors is fatal after the retries",
			pod(corev1.ContainerStatus{State: waiting("CrashLoopBackOff"), LastTerminationState: startError(), RestartCount: StartRetries}),
			"failed to start 3 times (exit code 128, StartError"},
		{"a pull that timed out is retried within the grace",
			createdAt(pod(corev1.ContainerStatus{State: waitingFor("ErrImagePull", "dial tcp: i/o timeout")}), now.Add(-10*time.Second)), ""},
		{"a pull back-off after a timeout is retried within the grace",
			createdAt(pod(corev1.ContainerStatus{State: waitingFor("ImagePullBackOff", `Back-off pulling image "r/api": ErrImagePull: TLS handshake timeout`)}), now.Add(-30*time.Second)), ""},
		{"a pull that keeps timing out is fatal after the grace",
			createdAt(pod(corev1.ContainerStatus{State: waitingFor("ErrImagePull", "dial tcp: i/o timeout")}), now.Add(-PullGrace-time.Second)),
			"is ErrImagePull: dial tcp: i/o timeout"},
		{"a pull of an image that does not exist is fatal at once",
			createdAt(pod(corev1.ContainerStatus{State: waitingFor("ErrImagePull", "manifest unknown")}), now.Add(-time.Second)),
			"is ErrImagePull: manifest unknown"},
		{"unschedulable for longer than the grace is fatal",
			pod(corev1.ContainerStatus{State: waiting("ContainerCreating")}, unschedulableSince(now.Add(-2*time.Minute))),
			"pod web-1 cannot be scheduled for 2m0s: 0/1 nodes are available: insufficient cpu"},
		{"unschedulable for less than the grace is not fatal",
			pod(corev1.ContainerStatus{State: waiting("ContainerCreating")}, unschedulableSince(now.Add(-30*time.Second))), ""},
		{"a healthy running pod is not fatal",
			pod(corev1.ContainerStatus{State: running(), Ready: true},
				corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Fatal([]corev1.Pod{tt.pod}, rules, now)
			switch {
			case tt.want == "" && got != "":
				t.Errorf("Fatal = %q, want not fatal", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("Fatal = %q, want a reason containing %q", got, tt.want)
			}
		})
	}
}

func TestFatalLooksAtEveryPod(t *testing.T) {
	healthy := pod(corev1.ContainerStatus{State: running(), Ready: true})
	broken := pod(corev1.ContainerStatus{State: waiting("ErrImagePull")})
	broken.Name = "web-2"
	got := Fatal([]corev1.Pod{healthy, broken}, DefaultRules, time.Now())
	if !strings.Contains(got, "pod web-2 container app is ErrImagePull") {
		t.Errorf("Fatal = %q, want the second pod's pull error", got)
	}
	if got := Fatal(nil, DefaultRules, time.Now()); got != "" {
		t.Errorf("Fatal(no pods) = %q, want not fatal", got)
	}
}

func TestFatalWithZeroMaxRestartsFailsOnTheFirstCrash(t *testing.T) {
	rules := Rules{MaxRestarts: 0, UnschedulableGrace: time.Minute}
	p := pod(corev1.ContainerStatus{State: waiting("CrashLoopBackOff"), LastTerminationState: exited(1), RestartCount: 0})
	if got := Fatal([]corev1.Pod{p}, rules, time.Now()); !strings.Contains(got, "keeps crashing (0 restarts") {
		t.Errorf("Fatal = %q, want a crash with ROLLOUT_MAX_RESTARTS=0 to be fatal", got)
	}
}

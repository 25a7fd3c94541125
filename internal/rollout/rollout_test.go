package rollout

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
)

func TestProgressReadsLikeKubectlRolloutStatus(t *testing.T) {
	dep := func(gen, observed int64, want, replicas, updated, ready, available int32) *appsv1.Deployment {
		d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To(want)}}
		d.Generation = gen
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: replicas, UpdatedReplicas: updated,
			ReadyReplicas: ready, AvailableReplicas: available}
		return d
	}
	tests := []struct {
		name string
		d    *appsv1.Deployment
		msg  string
		done bool
	}{
		{"all new pods ready", dep(2, 2, 3, 3, 3, 3, 3), "3/3 pods ready", true},
		{"a surge pod starting", dep(2, 2, 3, 4, 1, 3, 3), "3/3 pods ready, 1/3 updated, 3 old terminating", false},
		{"new pods not ready yet", dep(2, 2, 3, 3, 3, 2, 2), "2/3 pods ready", false},
		{"spec change not observed yet", dep(3, 2, 3, 3, 3, 3, 3), "3/3 pods ready", false},
		{"crashing new pod behind a ready old one", dep(2, 2, 1, 2, 1, 1, 1), "1/1 pods ready, 1 old terminating", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, done := Progress(tt.d)
			if msg != tt.msg || done != tt.done {
				t.Errorf("Progress = %q, %v; want %q, %v", msg, done, tt.msg, tt.done)
			}
		})
	}
}

package deploy

import (
	"io"
	"maps"
	"slices"
	"testing"

	helmrelease "helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/dtap-platform/monorepo/internal/drift"
	"github.com/dtap-platform/monorepo/internal/release"
)

// TestDriftHintsPickOnlyTheServicesThatMayHaveDrifted: the cheap look deploy takes before the
// full comparison flags a foreign manager, a scaled Deployment and a missing Service, and
// leaves alone what the release, deploy's repairs and the controllers wrote, and an HPA's scale.
func TestDriftHintsPickOnlyTheServicesThatMayHaveDrifted(t *testing.T) {
	ns := "app-dev"
	helm := metav1.ManagedFieldsEntry{Manager: "terraform-provider-helm_v3.1.2", Operation: metav1.ManagedFieldsOperationUpdate}
	ctrl := metav1.ManagedFieldsEntry{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status"}
	svc := func(name string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, ManagedFields: []metav1.ManagedFieldsEntry{helm}}}
	}
	r := NewRunner(Settings{Namespace: ns}, io.Discard, "test")
	r.clients = fake.NewClientset(svc("clean"), svc("edited"), svc("scaled"), svc("repaired"), svc("autoscaled"))
	dep := func(replicas int32, extra ...metav1.ManagedFieldsEntry) appsv1.Deployment {
		return appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{ManagedFields: append([]metav1.ManagedFieldsEntry{helm, ctrl}, extra...)}, Spec: appsv1.DeploymentSpec{Replicas: &replicas}}
	}
	live := Live{Releases: map[string]release.Meta{}, Deployments: map[string]appsv1.Deployment{
		"clean":      dep(1),
		"edited":     dep(1, metav1.ManagedFieldsEntry{Manager: "kubectl-set", Operation: metav1.ManagedFieldsOperationUpdate}),
		"scaled":     dep(0),
		"repaired":   dep(1, metav1.ManagedFieldsEntry{Manager: drift.RepairManager, Operation: metav1.ManagedFieldsOperationApply}),
		"autoscaled": dep(3, metav1.ManagedFieldsEntry{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "scale"}),
		"unserved":   dep(1),
	}}
	d := &Desired{Want: map[string]*Want{}}
	for name := range live.Deployments {
		live.Releases[name] = release.Meta{Version: 1, Status: helmrelease.StatusDeployed}
		d.Want[name] = &Want{Merged: map[string]any{"replicaCount": 1.0, "autoscaling": map[string]any{"enabled": name == "autoscaled"}}}
	}
	// What observe reads of the Services: their managed fields.
	svcs, err := r.clients.CoreV1().Services(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live.ServiceFields = map[string][]metav1.ManagedFieldsEntry{}
	for _, s := range svcs.Items {
		live.ServiceFields[s.Name] = s.ManagedFields
	}
	got := driftHints(live, d, slices.Sorted(maps.Keys(live.Deployments)))
	if want := []string{"edited", "scaled", "unserved"}; !slices.Equal(got, want) {
		t.Errorf("hints = %v, want %v", got, want)
	}
}

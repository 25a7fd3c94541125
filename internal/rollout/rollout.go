// Package rollout follows a Deployment to Ready, explains why when it is not (waiting
// reasons, events, the last log lines of a crashing container), and checks the running
// service through a port-forward.
package rollout

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Failure is a rollout that did not become ready; Diagnosis says why.
type Failure struct {
	Deployment string
	Reason     string
	Diagnosis  string
}

func (f *Failure) Error() string {
	return fmt.Sprintf("rollout of %s failed: %s\n%s", f.Deployment, f.Reason, f.Diagnosis)
}

// fatalReasons are container waiting reasons that waiting longer will not fix.
var fatalReasons = []string{"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
	"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}

// Wait follows the Deployment until its new pods are all ready and the old ones gone,
// printing progress such as "2/3 pods ready" when it changes. It fails early on a reason
// that waiting will not fix, and at the timeout, with a diagnosis.
func Wait(ctx context.Context, cs kubernetes.Interface, ns, name string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("deployment %s/%s: %w", ns, name, err)
		}
		progress, done := Progress(d)
		if progress != last {
			fmt.Fprintf(out, "  %s\n", progress)
			last = progress
		}
		if done {
			return nil
		}
		if reason := stuck(ctx, cs, d); reason != "" {
			return &Failure{Deployment: ns + "/" + name, Reason: reason, Diagnosis: Diagnose(context.WithoutCancel(ctx), cs, d)}
		}
		select {
		case <-ctx.Done():
			return &Failure{Deployment: ns + "/" + name, Reason: fmt.Sprintf("not ready within %s (%s)", timeout, progress),
				Diagnosis: Diagnose(context.WithoutCancel(ctx), cs, d)}
		case <-time.After(time.Second):
		}
	}
}

// Progress reads a Deployment's rollout the way `kubectl rollout status` does: a line such as
// "2/3 pods ready, 3/3 updated", and whether the rollout is complete.
func Progress(d *appsv1.Deployment) (string, bool) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	msg := fmt.Sprintf("%d/%d pods ready", s.ReadyReplicas, want)
	if s.UpdatedReplicas < want {
		msg += fmt.Sprintf(", %d/%d updated", s.UpdatedReplicas, want)
	}
	if old := s.Replicas - s.UpdatedReplicas; old > 0 {
		msg += fmt.Sprintf(", %d old terminating", old)
	}
	done := d.Status.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want &&
		s.Replicas == want && s.AvailableReplicas == want
	return msg, done
}

// stuck returns the reason a new pod cannot start, if one has a reason waiting will not fix.
func stuck(ctx context.Context, cs kubernetes.Interface, d *appsv1.Deployment) string {
	pods, err := podsOf(ctx, cs, d)
	if err != nil {
		return ""
	}
	for _, p := range pods {
		for _, c := range p.Status.ContainerStatuses {
			if w := c.State.Waiting; w != nil && slices.Contains(fatalReasons, w.Reason) {
				// CrashLoopBackOff is only final after the container failed more than once.
				if w.Reason == "CrashLoopBackOff" && c.RestartCount < 2 {
					continue
				}
				return fmt.Sprintf("pod %s container %s is %s: %s", p.Name, c.Name, w.Reason, w.Message)
			}
		}
	}
	return ""
}

func podsOf(ctx context.Context, cs kubernetes.Interface, d *appsv1.Deployment) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	list, err := cs.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// Diagnose explains the state of the Deployment's pods: phase and waiting or terminated
// reasons per container, unschedulable conditions, the recent warning events, and the last
// log lines of containers that crashed.
func Diagnose(ctx context.Context, cs kubernetes.Interface, d *appsv1.Deployment) string {
	var b strings.Builder
	pods, err := podsOf(ctx, cs, d)
	if err != nil {
		return "cannot list pods: " + err.Error()
	}
	if len(pods) == 0 {
		fmt.Fprintf(&b, "no pods exist for %s; ", d.Name)
		for _, c := range d.Status.Conditions {
			fmt.Fprintf(&b, "%s=%s (%s) ", c.Type, c.Status, c.Message)
		}
		b.WriteString("\n")
	}
	for _, p := range pods {
		fmt.Fprintf(&b, "pod %s: %s\n", p.Name, p.Status.Phase)
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				fmt.Fprintf(&b, "  not scheduled: %s: %s\n", c.Reason, c.Message)
			}
		}
		for _, c := range p.Status.ContainerStatuses {
			switch {
			case c.State.Waiting != nil:
				fmt.Fprintf(&b, "  container %s waiting: %s %s (restarts: %d)\n", c.Name, c.State.Waiting.Reason, c.State.Waiting.Message, c.RestartCount)
			case c.State.Terminated != nil:
				fmt.Fprintf(&b, "  container %s terminated: %s, exit code %d\n", c.Name, c.State.Terminated.Reason, c.State.Terminated.ExitCode)
			case !c.Ready:
				fmt.Fprintf(&b, "  container %s running but not ready\n", c.Name)
			}
			if t := c.LastTerminationState.Terminated; t != nil {
				fmt.Fprintf(&b, "  container %s last exit: %s, exit code %d\n", c.Name, t.Reason, t.ExitCode)
				if logs := lastLogs(ctx, cs, p.Namespace, p.Name, c.Name, true); logs != "" {
					fmt.Fprintf(&b, "  last log lines of the crashed container:\n%s", indent(logs, "    "))
				}
			}
		}
		events, err := cs.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.name=" + p.Name, Limit: 50})
		if err == nil {
			items := events.Items
			slices.SortFunc(items, func(a, b corev1.Event) int { return a.LastTimestamp.Compare(b.LastTimestamp.Time) })
			for _, e := range items[max(0, len(items)-8):] {
				if e.Type == corev1.EventTypeWarning {
					fmt.Fprintf(&b, "  event %s: %s (x%d)\n", e.Reason, e.Message, max(e.Count, 1))
				}
			}
		}
	}
	return b.String()
}

func lastLogs(ctx context.Context, cs kubernetes.Interface, ns, pod, container string, previous bool) string {
	lines := int64(15)
	raw, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, Previous: previous, TailLines: &lines}).DoRaw(ctx)
	if err != nil {
		return ""
	}
	return string(raw)
}

func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix) + "\n"
}

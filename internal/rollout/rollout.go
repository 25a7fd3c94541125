// Package rollout follows a Deployment to Ready, explains why when it is not (waiting
// reasons, events, the last log lines of a crashing container), and checks the running
// service through a port-forward.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
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

// Rules say when a rollout is given up before its timeout: on what waiting longer cannot fix.
type Rules struct {
	Timeout time.Duration // the whole rollout (DEPLOY_TIMEOUT)
	// MaxRestarts is how many times a new pod's container may crash before the rollout fails
	// (ROLLOUT_MAX_RESTARTS). A container that exits at start crashes again after each backoff.
	MaxRestarts int32
	// UnschedulableGrace is how long a new pod may stay unschedulable (ROLLOUT_UNSCHEDULABLE_GRACE):
	// long enough for a cluster autoscaler to add a node.
	UnschedulableGrace time.Duration
}

// DefaultRules are the rules with no setting given.
var DefaultRules = Rules{Timeout: 5 * time.Minute, MaxRestarts: 1, UnschedulableGrace: 60 * time.Second}

// fatalReasons are container waiting reasons that waiting longer will not fix.
var fatalReasons = []string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
	"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}

// Watch keeps a namespace's Deployments, ReplicaSets and Pods current through three watches, so
// that following many rollouts at once costs three streams, not a few requests per rollout per
// second (which client-go's rate limit would then hold back). Start it after the change it is
// to follow was applied: its first list then sees that change.
type Watch struct {
	cs      kubernetes.Interface
	ns      string
	deps    appslisters.DeploymentLister
	sets    appslisters.ReplicaSetLister
	pods    corelisters.PodLister
	factory informers.SharedInformerFactory
	cancel  context.CancelFunc

	mu      sync.Mutex
	changed chan struct{} // closed, and replaced, when any watched object changes
}

// NewWatch starts watching namespace ns, and returns once its caches are filled. Stop ends it.
// Given release names, it watches only their objects (by app.kubernetes.io/instance), so that
// following one rollout among fifty services lists one service's objects, not fifty.
func NewWatch(ctx context.Context, cs kubernetes.Interface, ns string, releases ...string) (*Watch, error) {
	ctx, cancel := context.WithCancel(ctx)
	opts := []informers.SharedInformerOption{informers.WithNamespace(ns)}
	if len(releases) > 0 {
		req, err := labels.NewRequirement("app.kubernetes.io/instance", selection.In, releases)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("watch the rollouts of %v: %w", releases, err)
		}
		selector := labels.NewSelector().Add(*req).String()
		opts = append(opts, informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, opts...)
	w := &Watch{cs: cs, ns: ns, factory: f, cancel: cancel, deps: f.Apps().V1().Deployments().Lister(),
		sets: f.Apps().V1().ReplicaSets().Lister(), pods: f.Core().V1().Pods().Lister(), changed: make(chan struct{})}
	// Each event wakes the waiting rollouts at once: a ready Deployment is seen when the
	// watch delivers it, not at the next poll.
	wake := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.notify() },
		UpdateFunc: func(any, any) { w.notify() },
		DeleteFunc: func(any) { w.notify() },
	}
	for _, inf := range []cache.SharedIndexInformer{f.Apps().V1().Deployments().Informer(),
		f.Apps().V1().ReplicaSets().Informer(), f.Core().V1().Pods().Informer()} {
		if _, err := inf.AddEventHandler(wake); err != nil {
			cancel()
			return nil, fmt.Errorf("watch the rollouts in %s: %w", ns, err)
		}
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			w.Stop()
			return nil, fmt.Errorf("watch the %v of %s: %w", typ, ns, context.Cause(ctx))
		}
	}
	return w, nil
}

// notify wakes everything waiting on the channel next returned.
func (w *Watch) notify() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.changed)
	w.changed = make(chan struct{})
}

// next is closed at the next change of a watched object.
func (w *Watch) next() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// Stop ends the watches and waits for them to end.
func (w *Watch) Stop() {
	w.cancel()
	w.factory.Shutdown()
}

// Wait follows the Deployment until its new pods are all ready and the old ones gone,
// printing progress such as "2/3 pods ready" when it changes. It fails as soon as a new pod
// shows what waiting cannot fix (see Fatal), and at the timeout, with a diagnosis.
func Wait(ctx context.Context, w *Watch, name string, rules Rules, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, rules.Timeout)
	defer cancel()
	ns := w.ns
	var last string
	for {
		changed := w.next() // taken before the look, so that no change between the two is missed
		d, err := w.deps.Deployments(ns).Get(name)
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
		if pods, err := w.newPods(d); err == nil {
			if reason := Fatal(pods, rules, time.Now()); reason != "" {
				return &Failure{Deployment: ns + "/" + name, Reason: reason, Diagnosis: Diagnose(context.WithoutCancel(ctx), w.cs, d)}
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &Failure{Deployment: ns + "/" + name, Reason: fmt.Sprintf("not ready within %s (%s)", rules.Timeout, progress),
					Diagnosis: Diagnose(context.WithoutCancel(ctx), w.cs, d)}
			}
			return fmt.Errorf("rollout of %s/%s stopped (%s): %w", ns, name, progress, context.Cause(ctx))
		case <-changed:
		case <-time.After(time.Second): // the rules that count time (grace periods) are looked at again
		}
	}
}

// StartRetries is how many times the kubelet may retry a container whose start failed in the
// runtime (RunContainerError, or StartError with exit code 128: runc could not freeze a cgroup
// while many pods started at once) before the rollout counts it as failed. The kubelet retries
// these itself; a real fault repeats, a hiccup does not.
const StartRetries = 3

// PullGrace is how long a new pod may keep failing to pull its image for a reason that heals
// (a timeout, a busy registry) before the rollout counts it as failed. A pull refused outright
// (no such image, no access) fails at once.
const PullGrace = 90 * time.Second

// Fatal returns why the new pods cannot become ready, or "" when waiting may still help: a
// container waiting for a reason that does not heal (an image that cannot be pulled, a
// missing Secret or ConfigMap), a container that crashed more than rules.MaxRestarts times,
// one whose start failed in the runtime more than StartRetries times, or a pod unschedulable
// for longer than rules.UnschedulableGrace.
func Fatal(pods []corev1.Pod, rules Rules, now time.Time) string {
	for _, p := range pods {
		for _, c := range p.Status.ContainerStatuses {
			if w := c.State.Waiting; w != nil && slices.Contains(fatalReasons, w.Reason) && !retried(p, c, w, now) {
				return fmt.Sprintf("pod %s container %s is %s: %s", p.Name, c.Name, w.Reason, w.Message)
			}
			t := c.LastTerminationState.Terminated
			if t == nil || t.ExitCode == 0 || (c.State.Waiting == nil && c.Ready) {
				continue
			}
			if startFailed(t) {
				if c.RestartCount >= StartRetries {
					return fmt.Sprintf("pod %s container %s failed to start %d times (exit code %d, %s: %s)", p.Name, c.Name, c.RestartCount, t.ExitCode, t.Reason, t.Message)
				}
				continue
			}
			if c.RestartCount >= rules.MaxRestarts {
				return fmt.Sprintf("pod %s container %s keeps crashing (%d restarts, last exit code %d, %s)", p.Name, c.Name, c.RestartCount, t.ExitCode, t.Reason)
			}
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable &&
				now.Sub(cond.LastTransitionTime.Time) > rules.UnschedulableGrace {
				return fmt.Sprintf("pod %s cannot be scheduled for %s: %s", p.Name, now.Sub(cond.LastTransitionTime.Time).Round(time.Second), cond.Message)
			}
		}
	}
	return ""
}

// retried reports whether the kubelet is still retrying a waiting reason that may heal: a start
// that failed in the runtime, fewer than StartRetries times, or a pull that timed out, for
// less than PullGrace.
func retried(p corev1.Pod, c corev1.ContainerStatus, w *corev1.ContainerStateWaiting, now time.Time) bool {
	switch w.Reason {
	case "RunContainerError":
		return c.RestartCount < StartRetries
	case "ErrImagePull", "ImagePullBackOff":
		return transientPull(w.Message) && now.Sub(p.CreationTimestamp.Time) < PullGrace
	}
	return false
}

// startFailed reports whether a container ended because the runtime could not start it (exit
// code 128 from runc), rather than because the program crashed.
func startFailed(t *corev1.ContainerStateTerminated) bool {
	return t.Reason == "StartError" || t.Reason == "ContainerCannotRun" || t.ExitCode == 128
}

// transientPull reports whether a pull error is one that a later pull may not meet.
func transientPull(msg string) bool {
	msg = strings.ToLower(msg)
	for _, s := range []string{"timeout", "timed out", "deadline exceeded", "connection reset", "connection refused",
		"too many requests", "429", "502 bad gateway", "503 service unavailable", "504 gateway", "temporary failure", "eof"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// newPods are the pods of the Deployment's current revision (its newest ReplicaSet): an old
// pod that fails is not this rollout's failure.
func (w *Watch) newPods(d *appsv1.Deployment) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	sets, err := w.sets.ReplicaSets(d.Namespace).List(sel)
	if err != nil {
		return nil, err
	}
	revision := d.Annotations["deployment.kubernetes.io/revision"]
	hash := ""
	for _, rs := range sets {
		if rs.Annotations["deployment.kubernetes.io/revision"] == revision && metav1.IsControlledBy(rs, d) {
			hash = rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		}
	}
	if hash == "" {
		return nil, nil // the controller has not made this revision's ReplicaSet yet
	}
	pods, err := w.pods.Pods(d.Namespace).List(sel)
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range pods {
		if p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == hash {
			out = append(out, *p)
		}
	}
	return out, nil
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
			}
			if c.State.Terminated != nil || c.LastTerminationState.Terminated != nil {
				if logs := crashLogs(ctx, cs, p.Namespace, p.Name, c); logs != "" {
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

// crashLogs are the last lines a crashed container wrote: the current instance's when it has
// just ended, else the previous one's (the kubelet keeps only the latest ended instance).
func crashLogs(ctx context.Context, cs kubernetes.Interface, ns, pod string, c corev1.ContainerStatus) string {
	order := []bool{true, false}
	if c.State.Terminated != nil {
		order = []bool{false, true}
	}
	for _, previous := range order {
		lines := int64(15)
		raw, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: c.Name, Previous: previous, TailLines: &lines}).DoRaw(ctx)
		if err == nil && len(strings.TrimSpace(string(raw))) > 0 {
			return string(raw)
		}
	}
	return ""
}

func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix) + "\n"
}

package rollout

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// Forward is an open port-forward to one pod, on 127.0.0.1.
type Forward struct {
	URL  string // http://127.0.0.1:<local port>
	stop chan struct{}
	done chan struct{}
}

// Close ends the port-forward.
func (f *Forward) Close() {
	close(f.stop)
	<-f.done
}

// ForwardService opens a port-forward on 127.0.0.1 to a ready pod behind the Service, at the
// Service's target port named portName, as `kubectl port-forward svc/...` does. It takes the
// newest ready pod: right after a rollout, a list may still show an old pod as ready a moment
// before it is marked for deletion, and that pod is about to drain.
func ForwardService(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, ns, service, portName string) (*Forward, error) {
	svc, err := cs.CoreV1().Services(ns).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: %w", ns, service, err)
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.Set(svc.Spec.Selector).String()})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(pods.Items, func(a, b corev1.Pod) int {
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || !podReady(&p) {
			continue
		}
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == portName {
					return ForwardPod(ctx, cfg, ns, p.Name, int(cp.ContainerPort))
				}
			}
		}
	}
	return nil, fmt.Errorf("service %s/%s has no ready pod with a port named %q", ns, service, portName)
}

// ForwardPod opens a port-forward on 127.0.0.1 to a pod's port.
func ForwardPod(ctx context.Context, cfg *rest.Config, ns, pod string, port int) (*Forward, error) {
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, err
	}
	u.Path += fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/portforward", ns, pod)
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)

	f := &Forward{stop: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, f.stop, ready, io.Discard, io.Discard)
	if err != nil {
		return nil, err
	}
	errc := make(chan error, 1)
	go func() {
		defer close(f.done)
		errc <- pf.ForwardPorts()
	}()
	select {
	case <-ready:
	case err := <-errc:
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", ns, pod, port, err)
	case <-ctx.Done():
		close(f.stop)
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		close(f.stop)
		return nil, fmt.Errorf("port-forward to %s/%s:%d: not ready within 30s", ns, pod, port)
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		f.Close()
		return nil, fmt.Errorf("port-forward to %s/%s: no local port: %v", ns, pod, err)
	}
	f.URL = fmt.Sprintf("http://127.0.0.1:%d", ports[0].Local)
	return f, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

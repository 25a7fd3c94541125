package deploy

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dtap-platform/monorepo/internal/cluster"
)

// frontDoors gives, on the embedded cluster only, each exposed service of the run a node port
// that kind maps to 127.0.0.1, and the NetworkPolicy that admits traffic from the node. On any
// other cluster the Ingress or HTTPRoute is the front door, as configured, and nothing is set.
// It only reads the cluster: plan and deploy get the same answer.
func (r *Runner) frontDoors(ctx context.Context, d *Desired) error {
	if !r.S.Local || r.clients == nil {
		return nil
	}
	var want []string
	for _, name := range d.Names() {
		if exposed(d.Want[name].Merged) {
			want = append(want, name)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if r.S.Cluster.Gateway == cluster.GatewayCloudProviderKind {
		cidrs, err := cluster.KindNetworkCIDRs(ctx)
		if err != nil {
			return err
		}
		for _, name := range want {
			d.Want[name].FrontDoor = GatewayFrontDoor(cidrs)
		}
		return nil
	}
	doors := r.readDoors(ctx)
	<-doors.done
	if doors.err != nil {
		return doors.err
	}
	size := -1
	for _, n := range doors.nodes {
		if v, ok := n.Annotations[cluster.FrontDoorAnnotation]; ok {
			size, _ = strconv.Atoi(v)
		}
	}
	if size < 0 {
		size = cluster.FrontDoorSize(ctx, r.S.Cluster) // a cluster from before the annotation
	}
	if size == 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("the local cluster %q was created before it had a front door, so nothing answers on 127.0.0.1 for %s: recreate it with `go run mage.go kind:down` then `go run mage.go kind:up` (this deletes what runs there), or use kubectl port-forward",
			r.S.Cluster.Name, strings.Join(want, ", ")))
		return nil
	}
	ports, full := r.allocatePorts(doors.services, want, size)
	if len(full) > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("the embedded cluster's front door has %d ports (%d-%d), all taken: %s got none; reach them with kubectl port-forward, or destroy an environment you no longer need",
			size, cluster.FrontDoorFirst, cluster.FrontDoorFirst+size-1, strings.Join(full, ", ")))
	}
	if len(ports) == 0 {
		return nil
	}
	cidrs := sourceCIDRs(doors.nodes)
	for name, p := range ports {
		d.Want[name].FrontDoor = map[string]any{
			"service":       map[string]any{"nodePort": p},
			"networkPolicy": map[string]any{"frontDoor": "cidrs", "sourceCIDRs": cidrs},
		}
	}
	return nil
}

// allocatePorts returns a node port for each of the environment's services: the one its
// Service has, else the first free one from a starting point that depends on the environment
// and service, so that deploys of two environments at once rarely reach for the same port.
// The cluster's Services are the record: ports are stable while a Service exists and free again
// once it is gone, whichever checkout deployed it.
func (r *Runner) allocatePorts(svcs []corev1.Service, names []string, size int) (map[string]int, []string) {
	taken := map[int]string{}
	own := map[string]int{}
	for _, svc := range svcs {
		for _, p := range svc.Spec.Ports {
			if p.NodePort == 0 {
				continue
			}
			taken[int(p.NodePort)] = svc.Namespace + "/" + svc.Name
			if svc.Namespace == r.S.Namespace && slices.Contains(names, svc.Name) {
				own[svc.Name] = int(p.NodePort)
			}
		}
	}
	ports, full := assignPorts(taken, own, r.S.Namespace, names, size)
	return ports, full
}

// doors is what the front door is given from: the cluster's nodes and every Service (the node
// ports in use), two lists read at once and beside the run's other reads.
type doors struct {
	done     chan struct{}
	nodes    []corev1.Node
	services []corev1.Service
	err      error
}

// readDoors starts reading the front door's lists, once; on the embedded cluster only.
func (r *Runner) readDoors(ctx context.Context) *doors {
	if r.doors != nil {
		return r.doors
	}
	fd := &doors{done: make(chan struct{})}
	if !r.S.Local || r.clients == nil || r.S.Cluster.Gateway == cluster.GatewayCloudProviderKind {
		close(fd.done) // nothing to read (yet: no cluster is no answer to keep)
		return fd
	}
	r.doors = fd
	go func() {
		defer close(fd.done)
		g, ctx := errgroup.WithContext(ctx)
		g.Go(func() error {
			list, err := r.clients.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err == nil {
				fd.nodes = list.Items
			}
			return err
		})
		g.Go(func() error {
			list, err := r.clients.CoreV1().Services("").List(ctx, metav1.ListOptions{})
			if err != nil {
				return fmt.Errorf("read the node ports in use: %w", err)
			}
			fd.services = list.Items
			return nil
		})
		fd.err = g.Wait()
	}()
	return fd
}

// assignPorts keeps each service's own port when it is in the range and picks a free one for
// the others; full are the services left without one, as every port is taken.
func assignPorts(taken map[int]string, own map[string]int, namespace string, names []string, n int) (ports map[string]int, full []string) {
	first := cluster.FrontDoorFirst
	out := map[string]int{}
	for _, name := range names {
		if p, ok := own[name]; ok && p >= first && p < first+n {
			out[name] = p
		}
	}
	for _, name := range names {
		if _, ok := out[name]; ok {
			continue
		}
		h := fnv.New32a()
		h.Write([]byte(namespace + "/" + name))
		start := int(h.Sum32() % uint32(n))
		for i := 0; i < n; i++ {
			p := first + (start+i)%n
			if _, used := taken[p]; !used {
				out[name], taken[p] = p, namespace+"/"+name
				break
			}
		}
		if _, ok := out[name]; !ok {
			full = append(full, name)
		}
	}
	return out, full
}

// sourceCIDRs are where NodePort traffic reaches the pods from: each node's address and its pod
// network's gateway (kube-proxy masquerades NodePort traffic to it).
func sourceCIDRs(nodes []corev1.Node) []any {
	var out []string
	for _, n := range nodes {
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				if ip := net.ParseIP(a.Address); ip != nil {
					out = append(out, hostCIDR(ip))
				}
			}
		}
		for _, c := range append([]string{n.Spec.PodCIDR}, n.Spec.PodCIDRs...) {
			if _, nw, err := net.ParseCIDR(c); err == nil {
				gw := slices.Clone(nw.IP)
				gw[len(gw)-1]++
				out = append(out, hostCIDR(gw))
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	list := make([]any, len(out))
	for i, c := range out {
		list[i] = c
	}
	return list
}

func hostCIDR(ip net.IP) string {
	if ip.To4() != nil {
		return ip.To4().String() + "/32"
	}
	return ip.String() + "/128"
}

// GatewayFrontDoor are the values of an exposed service when the embedded cluster's Gateway
// (LOCAL_GATEWAY=cloud-provider-kind) is its front door: an HTTPRoute on that Gateway instead
// of the Ingress, and a NetworkPolicy that admits the Gateway's Envoy containers, which run on
// Docker's kind network.
func GatewayFrontDoor(kindCIDRs []string) map[string]any {
	cidrs := make([]any, len(kindCIDRs))
	for i, c := range kindCIDRs {
		cidrs[i] = c
	}
	return map[string]any{
		"ingress": map[string]any{"enabled": false},
		"httpRoute": map[string]any{"enabled": true, "parentRefs": []any{map[string]any{
			"name": cluster.GatewayName, "namespace": cluster.GatewayNamespace, "sectionName": "http"}}},
		"networkPolicy": map[string]any{"frontDoor": "cidrs", "sourceCIDRs": cidrs},
	}
}

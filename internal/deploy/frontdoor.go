package deploy

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dtap-platform/monorepo/internal/cluster"
)

// frontDoorMap is the ConfigMap in the state namespace that records which node port each
// (environment, service) of the embedded cluster has: "30080" -> "dev/api". It lives with the
// cluster, so ports are stable across runs and checkouts, and never collide.
const frontDoorMap = "frontdoor-ports"

// frontDoors gives, on the embedded cluster only, each exposed service of the run a node port
// that kind maps to 127.0.0.1, and the NetworkPolicy that admits traffic from the node. On any
// other cluster the Ingress or HTTPRoute is the front door, as configured, and nothing is set.
func (r *Runner) frontDoors(ctx context.Context, images []built, res *Result) (map[string]map[string]any, error) {
	if !r.S.Local {
		return nil, nil
	}
	var want []string
	for _, b := range images {
		if exposed(b.merged) {
			want = append(want, b.svc.Name)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	if !cluster.HasFrontDoor(ctx, r.S.Cluster) {
		note := fmt.Sprintf("the local cluster %q was created before it had a front door, so nothing answers on 127.0.0.1 for %s: recreate it with `go run mage.go kind:down` then `go run mage.go kind:up` (this deletes what runs there), or use kubectl port-forward",
			r.S.Cluster.Name, strings.Join(want, ", "))
		fmt.Fprintf(r.Out, "  note: %s\n", note)
		res.Notes = append(res.Notes, note)
		return nil, nil
	}
	ports, err := r.allocatePorts(ctx, want)
	if err != nil {
		return nil, err
	}
	cidrs, err := r.nodeCIDRs(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]any{}
	for name, p := range ports {
		out[name] = map[string]any{
			"service":       map[string]any{"nodePort": p},
			"networkPolicy": map[string]any{"frontDoor": "nodePort", "nodeCIDRs": cidrs},
		}
	}
	return out, nil
}

// allocatePorts returns a node port for each service of the environment: the one it had, else
// the lowest free one of the range. Concurrent deploys of other environments are safe: the map
// is updated only at the resourceVersion it was read at.
func (r *Runner) allocatePorts(ctx context.Context, names []string) (map[string]int, error) {
	cms := r.clients.CoreV1().ConfigMaps(r.S.StateNamespace)
	for attempt := 0; attempt < 10; attempt++ {
		cm, err := cms.Get(ctx, frontDoorMap, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: frontDoorMap, Labels: map[string]string{ManagedByLabel: "deploy"}}}
			if cm, err = cms.Create(ctx, cm, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("read the front door's ports (%s/%s): %w", r.S.StateNamespace, frontDoorMap, err)
		}
		out, changed, err := assignPorts(cm.Data, r.S.Env, names)
		if err != nil {
			return nil, err
		}
		if !changed {
			return out, nil
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		for name, p := range out {
			cm.Data[strconv.Itoa(p)] = r.S.Env + "/" + name
		}
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); apierrors.IsConflict(err) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("record the front door's ports: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("the front door's port map %s/%s keeps changing under this deploy: try again", r.S.StateNamespace, frontDoorMap)
}

// assignPorts picks ports for env's services from the allocations (port -> "env/service"): a
// service keeps its port, a new one takes the lowest free port; it fails when none is free.
func assignPorts(alloc map[string]string, env string, names []string) (map[string]int, bool, error) {
	out := map[string]int{}
	taken := map[int]bool{}
	for k, v := range alloc {
		p, _ := strconv.Atoi(k)
		taken[p] = true
		if e, svc, _ := strings.Cut(v, "/"); e == env && slices.Contains(names, svc) {
			out[svc] = p
		}
	}
	changed := false
	for _, name := range names {
		if _, ok := out[name]; ok {
			continue
		}
		free := 0
		for p := cluster.FrontDoorFirst; p < cluster.FrontDoorFirst+cluster.FrontDoorPorts; p++ {
			if !taken[p] {
				free = p
				break
			}
		}
		if free == 0 {
			var who []string
			for _, k := range slices.Sorted(maps.Keys(alloc)) {
				who = append(who, k+"="+alloc[k])
			}
			return nil, false, fmt.Errorf("the embedded cluster's front door has no free port for %s/%s: its %d ports (%d-%d) are taken by %s; destroy an environment you no longer need (go run mage.go destroy -env=<env>)",
				env, name, cluster.FrontDoorPorts, cluster.FrontDoorFirst, cluster.FrontDoorFirst+cluster.FrontDoorPorts-1, strings.Join(who, ", "))
		}
		taken[free], out[name], changed = true, free, true
	}
	return out, changed, nil
}

// releasePorts forgets env's ports (destroy).
func (r *Runner) releasePorts(ctx context.Context) error {
	cms := r.clients.CoreV1().ConfigMaps(r.S.StateNamespace)
	for attempt := 0; attempt < 10; attempt++ {
		cm, err := cms.Get(ctx, frontDoorMap, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		changed := false
		for k, v := range cm.Data {
			if strings.HasPrefix(v, r.S.Env+"/") {
				delete(cm.Data, k)
				changed = true
			}
		}
		if !changed {
			return nil
		}
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("could not release the front door's ports of %s", r.S.Env)
}

// nodeCIDRs are where NodePort traffic reaches the pods from: each node's address and its pod
// network's gateway (kube-proxy masquerades NodePort traffic to it).
func (r *Runner) nodeCIDRs(ctx context.Context) ([]any, error) {
	nodes, err := r.clients.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nodes.Items {
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
	return list, nil
}

func hostCIDR(ip net.IP) string {
	if ip.To4() != nil {
		return ip.To4().String() + "/32"
	}
	return ip.String() + "/128"
}

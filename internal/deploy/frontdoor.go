package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dtap-platform/monorepo/internal/cluster"
)

// frontDoors sets, on the embedded cluster only, the values that put each exposed service of the
// run behind the cluster's front door: its Ingress (or HTTPRoute) on the controller kind:up
// installed, for <service>.<env>.localhost, and a NetworkPolicy that admits that controller. On
// any other cluster the Ingress or HTTPRoute is the front door, as configured, and nothing is set.
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
	if doors.door == (cluster.FrontDoor{}) {
		if r.S.Cluster.Gateway == cluster.GatewayTraefik {
			d.Notes = append(d.Notes, fmt.Sprintf("the local cluster %q has no front door (it was created before it had one, or kind:up did not finish), so nothing answers on 127.0.0.1 for %s: run `go run mage.go kind:up`, and if it says so, recreate the cluster with `go run mage.go kind:down` then `kind:up` (this deletes what runs there); or use kubectl port-forward",
				r.S.Cluster.Name, strings.Join(want, ", ")))
		}
		return nil
	}
	domain := cluster.LocalDomain(r.S.Project, r.S.Env)
	for _, name := range want {
		_, userURL := r.S.BaseURLs[name]
		d.Want[name].FrontDoor = TraefikFrontDoor(doors.door, domain, name, d.Want[name].Merged, !userURL)
		d.Want[name].FrontURL = doors.door.URL(name+"."+domain, usesTLS(d.Want[name].Merged))
	}
	return nil
}

// usesTLS: the environment serves its services over HTTPS (staging and prod).
func usesTLS(merged map[string]any) bool {
	tls, _ := dig(merged, "ingress", "tls", "enabled").(bool)
	return tls
}

// TraefikFrontDoor are the values of an exposed service behind the embedded cluster's Traefik:
// its host is <service>.<domain> (LocalDomain); an environment with httpRoute.enabled is served by its
// HTTPRoute on the cluster's Gateway (both listeners), any other by its Ingress of class traefik.
// TLS is the front door's own certificate (cert-manager does not run there), so the chart's
// certificate settings are off and the base URL says the port. The NetworkPolicy admits the
// controller's pods only.
func TraefikFrontDoor(door cluster.FrontDoor, domain, service string, merged map[string]any, setBaseURL bool) map[string]any {
	v := map[string]any{
		"domain":      domain,
		"certificate": map[string]any{"enabled": false},
		"networkPolicy": map[string]any{
			"frontDoor": "controller",
			"ingressControllerNamespaceSelector": map[string]any{
				"matchLabels": map[string]any{"kubernetes.io/metadata.name": cluster.GatewayNamespace}},
			"ingressControllerPodSelector": map[string]any{
				"matchLabels": map[string]any{"app.kubernetes.io/name": "traefik"}},
		},
	}
	if setBaseURL {
		v["baseUrl"] = door.URL(service+"."+domain, usesTLS(merged))
	}
	if on, _ := dig(merged, "httpRoute", "enabled").(bool); on {
		v["ingress"] = map[string]any{"enabled": false}
		v["httpRoute"] = map[string]any{"parentRefs": []any{map[string]any{
			"name": cluster.GatewayName, "namespace": cluster.GatewayNamespace}}}
		return v
	}
	v["ingress"] = map[string]any{"className": cluster.IngressClassName,
		"tls": map[string]any{"enabled": false}}
	return v
}

// doors is what the front door is given from: the node's record of the front door's ports.
type doors struct {
	done chan struct{}
	door cluster.FrontDoor
	err  error
}

// readDoors starts reading the front door's ports, once; on the embedded cluster only.
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
		list, err := r.clients.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			fd.err = fmt.Errorf("read the front door's ports from the node: %w", err)
			return
		}
		for _, n := range list.Items {
			if v, ok := n.Annotations[cluster.FrontDoorAnnotation]; ok {
				fd.door = cluster.ParseFrontDoor(v)
			}
		}
	}()
	return fd
}

// frontDoorCA makes sure the front door's certificate names this environment's hosts (kind:up
// names the default project's; another project's are added on its first deploy, here, a step
// plan does not take) and returns its CA, written to this checkout's CA file when that differs
// (the summary's https URLs need it, and kind:up may have run in another checkout).
func (r *Runner) frontDoorCA(ctx context.Context) ([]byte, error) {
	if r.doors == nil || r.doors.door == (cluster.FrontDoor{}) {
		return nil, nil
	}
	ca, err := cluster.EnsureCertificateNames(ctx, r.clients, r.doors.door, []string{cluster.LocalDomain(r.S.Project, r.S.Env)})
	if err != nil {
		return nil, fmt.Errorf("the front door's certificate for %s: %w", cluster.LocalDomain(r.S.Project, r.S.Env), err)
	}
	if cur, err := os.ReadFile(r.S.Cluster.CAFile()); err != nil || !bytes.Equal(cur, ca) {
		_ = cluster.WriteCAFile(r.S.Cluster.CAFile(), ca) // the URLs work without it
	}
	return ca, nil
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

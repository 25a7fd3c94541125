// Package secrets keeps each service's secret values in versioned, immutable Kubernetes
// Secrets, written straight to the cluster: the values never pass through Terraform, a plan,
// a values file or a Helm release. A new version (<service>-secrets-<generation>) is written
// only when the values change; the chart mounts the version it is given by name, so pods roll
// on a change, and a rollback of the release brings back the version it ran with.
package secrets

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Labels of the Secrets this package writes.
const (
	LabelManagedBy   = "dtap.dev/managed-by"
	LabelSecretOf    = "dtap.dev/secret-of"
	LabelEnvironment = "dtap.dev/environment"
	LabelGeneration  = "dtap.dev/generation"
	ManagedBy        = "deploy"
)

// Keep is how many of a service's newest versions are always kept, besides every version a
// revision in the release's history mounts.
const Keep = 3

// Store writes the Secrets of one environment's namespace.
type Store struct {
	Clients   kubernetes.Interface
	Namespace string
	Env       string
}

// Name is the name of a service's secret version.
func Name(service string, generation int) string {
	return service + "-secrets-" + strconv.Itoa(generation)
}

// Versions are the service's versions, oldest first.
func (s Store) Versions(ctx context.Context, service string) ([]corev1.Secret, error) {
	list, err := s.Clients.CoreV1().Secrets(s.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelManagedBy + "=" + ManagedBy + "," + LabelSecretOf + "=" + service})
	if err != nil {
		return nil, fmt.Errorf("list the secret versions of %s in %s: %w", service, s.Namespace, err)
	}
	items := list.Items
	slices.SortFunc(items, func(a, b corev1.Secret) int { return generation(a) - generation(b) })
	return items, nil
}

func generation(s corev1.Secret) int {
	n, _ := strconv.Atoi(s.Labels[LabelGeneration])
	return n
}

// All are the versions of every service of the namespace, by service, oldest first: one list.
func (s Store) All(ctx context.Context) (map[string][]corev1.Secret, error) {
	list, err := s.Clients.CoreV1().Secrets(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy})
	if err != nil {
		return nil, fmt.Errorf("list the secret versions in %s: %w", s.Namespace, err)
	}
	out := map[string][]corev1.Secret{}
	for _, v := range list.Items {
		if svc := v.Labels[LabelSecretOf]; svc != "" {
			out[svc] = append(out[svc], v)
		}
	}
	for _, vs := range out {
		slices.SortFunc(vs, func(a, b corev1.Secret) int { return generation(a) - generation(b) })
	}
	return out, nil
}

// Choose says which version of a service's secret holds data, given its versions (oldest
// first) and the one the release mounts now (current): current when it holds exactly data,
// else a new generation after the newest, which Create then writes. Plan and deploy both ask
// it, so plan names the very version deploy writes.
func Choose(service string, versions []corev1.Secret, data map[string][]byte, current string) (name string, create bool) {
	next := 1
	for _, v := range versions {
		if v.Name == current && equal(v.Data, data) {
			return current, false
		}
		next = max(next, generation(v)+1)
	}
	return Name(service, next), true
}

// Diff is what a new version does to a service's secret keys, by name: values are never in it.
type Diff struct {
	Added, Changed, Removed, Kept []string
	// Absent are keys asked to be removed that the current version does not hold.
	Absent []string
}

// String lists the keys by what happens to them, for the deploy's output: "added a; changed
// b; removed c; kept d, e" (groups with no key left out), or "no keys".
func (d Diff) String() string {
	var parts []string
	for _, g := range []struct {
		verb string
		keys []string
	}{{"added", d.Added}, {"changed", d.Changed}, {"removed", d.Removed}, {"kept", d.Kept}, {"not held, nothing to remove:", d.Absent}} {
		if len(g.keys) > 0 {
			parts = append(parts, g.verb+" "+strings.Join(g.keys, ", "))
		}
	}
	if len(parts) == 0 {
		return "no keys"
	}
	return strings.Join(parts, "; ")
}

// Merge is the data of a service's next version: the current version's data, with the given
// keys set and the removed ones dropped. A key that is neither given nor removed is carried
// over, so a run that rotates one key never drops the others by omission; removing a key is
// always explicit. current is not changed.
func Merge(current, given map[string][]byte, remove []string) (map[string][]byte, Diff) {
	out := maps.Clone(current)
	if out == nil {
		out = map[string][]byte{}
	}
	var d Diff
	for _, k := range slices.Sorted(maps.Keys(given)) {
		old, had := current[k]
		switch {
		case !had:
			d.Added = append(d.Added, k)
		case !bytes.Equal(old, given[k]):
			d.Changed = append(d.Changed, k)
		}
		out[k] = given[k]
	}
	for _, k := range slices.Sorted(slices.Values(remove)) {
		if _, had := out[k]; !had {
			d.Absent = append(d.Absent, k)
			continue
		}
		delete(out, k)
		d.Removed = append(d.Removed, k)
	}
	for _, k := range slices.Sorted(maps.Keys(out)) {
		if !slices.Contains(d.Added, k) && !slices.Contains(d.Changed, k) {
			d.Kept = append(d.Kept, k)
		}
	}
	return out, d
}

// Data is the data of the version named name among versions, nil when there is none.
func Data(versions []corev1.Secret, name string) (map[string][]byte, bool) {
	for _, v := range versions {
		if v.Name == name {
			return v.Data, true
		}
	}
	return nil, false
}

// Apply makes sure a version holding exactly data exists and returns its name. When the
// version the release runs now (current) already holds data, that is the answer and nothing is
// written; otherwise a new generation is created, immutable.
func (s Store) Apply(ctx context.Context, service string, data map[string][]byte, current string) (name string, created bool, err error) {
	versions, err := s.Versions(ctx, service)
	if err != nil {
		return "", false, err
	}
	name, create := Choose(service, versions, data, current)
	if !create {
		return name, false, nil
	}
	return name, true, s.Create(ctx, service, name, data)
}

// Create writes the version name (as Choose named it) holding data, immutable.
func (s Store) Create(ctx context.Context, service, name string, data map[string][]byte) error {
	next, err := strconv.Atoi(strings.TrimPrefix(name, service+"-secrets-"))
	if err != nil || Name(service, next) != name {
		return fmt.Errorf("secret version %q is not a version name of %s", name, service)
	}
	immutable := true
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: Name(service, next),
			Labels: map[string]string{
				LabelManagedBy: ManagedBy, LabelSecretOf: service, LabelEnvironment: s.Env,
				LabelGeneration:             strconv.Itoa(next),
				"app.kubernetes.io/part-of": "dtap-platform", "app.kubernetes.io/instance": service,
			},
			Annotations: map[string]string{
				"dtap.dev/keys":    strings.Join(slices.Sorted(maps.Keys(data)), ","),
				"dtap.dev/written": time.Now().UTC().Format(time.RFC3339),
			},
		},
		Type:      corev1.SecretTypeOpaque,
		Immutable: &immutable,
		Data:      data,
	}
	if _, err := s.Clients.CoreV1().Secrets(s.Namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("write secret version %s/%s: %w", s.Namespace, sec.Name, err)
	}
	return nil
}

func equal(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, bytes.Equal)
}

// Prune removes the service's versions that no revision in use needs: it keeps inUse (the
// versions the release's history mounts), the Keep newest, and mounted (the version the pods
// mount now), and returns what it removed. mounted is kept whatever inUse says: it is the only
// version sure to hold every key the running release reads (a history read in part, or cut at
// Helm's max_history, must never cost a key its last copy).
func (s Store) Prune(ctx context.Context, service string, inUse []string, mounted string) ([]string, error) {
	versions, err := s.Versions(ctx, service)
	if err != nil {
		return nil, err
	}
	var removed []string
	for i, v := range versions {
		if i >= len(versions)-Keep || v.Name == mounted || slices.Contains(inUse, v.Name) {
			continue
		}
		if err := s.Clients.CoreV1().Secrets(s.Namespace).Delete(ctx, v.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return removed, fmt.Errorf("remove old secret version %s: %w", v.Name, err)
		}
		removed = append(removed, v.Name)
	}
	return removed, nil
}

// DeleteAll removes every version this package wrote in the namespace, of every service.
func (s Store) DeleteAll(ctx context.Context) (int, error) {
	list, err := s.Clients.CoreV1().Secrets(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy + "," + LabelSecretOf})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sec := range list.Items {
		if err := s.Clients.CoreV1().Secrets(s.Namespace).Delete(ctx, sec.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return n, fmt.Errorf("remove secret version %s: %w", sec.Name, err)
		}
		n++
	}
	return n, nil
}

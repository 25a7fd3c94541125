package secrets

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// No cluster runs in unit tests: the Secrets live in client-go's fake clientset, an in-memory
// object tracker that honours label selectors, which is all Store asks of the API server.

const ns = "shop-dev"

func newStore(t *testing.T, objects ...*corev1.Secret) (Store, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset()
	for _, o := range objects {
		if _, err := cs.CoreV1().Secrets(o.Namespace).Create(t.Context(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return Store{Clients: cs, Namespace: ns, Env: "dev"}, cs
}

func secretNames(t *testing.T, cs *fake.Clientset) []string {
	t.Helper()
	list, err := cs.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

func TestApplyWritesAnImmutableFirstVersionWithTheExactBytes(t *testing.T) {
	store, cs := newStore(t)
	data := map[string][]byte{
		"db-password": []byte("p,a=s\"s'\nv4lue-XYZ"),
		"blob":        {0, 1, 2, 0xff, 0, '\n'},
	}
	name, created, err := store.Apply(t.Context(), "api", data, "")
	if err != nil {
		t.Fatal(err)
	}
	if name != "api-secrets-1" || !created {
		t.Fatalf("Apply = %q, created=%v; want api-secrets-1, created", name, created)
	}
	sec, err := cs.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Immutable == nil || !*sec.Immutable {
		t.Error("the version is not immutable")
	}
	if sec.Type != corev1.SecretTypeOpaque {
		t.Errorf("type = %s, want Opaque", sec.Type)
	}
	if len(sec.Data) != len(data) {
		t.Errorf("keys = %v, want %v", sec.Data, data)
	}
	for k, v := range data {
		if !bytes.Equal(sec.Data[k], v) {
			t.Errorf("key %s = %q, want %q", k, sec.Data[k], v)
		}
	}
	wantLabels := map[string]string{LabelManagedBy: ManagedBy, LabelSecretOf: "api", LabelEnvironment: "dev", LabelGeneration: "1"}
	for k, v := range wantLabels {
		if sec.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, sec.Labels[k], v)
		}
	}
	if got := sec.Annotations["dtap.dev/keys"]; got != "blob,db-password" {
		t.Errorf("keys annotation = %q, want the sorted key names", got)
	}
	for k, v := range sec.Annotations {
		if bytes.Contains([]byte(v), []byte("v4lue-XYZ")) {
			t.Errorf("annotation %s holds a secret value: %q", k, v)
		}
	}
}

func TestApplyWritesANewVersionOnlyWhenTheValuesChange(t *testing.T) {
	store, cs := newStore(t)
	v1 := map[string][]byte{"token": []byte("one")}
	name, _, err := store.Apply(t.Context(), "api", v1, "")
	if err != nil {
		t.Fatal(err)
	}

	same, created, err := store.Apply(t.Context(), "api", map[string][]byte{"token": []byte("one")}, name)
	if err != nil {
		t.Fatal(err)
	}
	if same != name || created {
		t.Errorf("the same values again = %q, created=%v; want %q, nothing created", same, created, name)
	}
	if got := secretNames(t, cs); !slices.Equal(got, []string{"api-secrets-1"}) {
		t.Errorf("secrets = %v after applying the same values", got)
	}

	next, created, err := store.Apply(t.Context(), "api", map[string][]byte{"token": []byte("two")}, name)
	if err != nil {
		t.Fatal(err)
	}
	if next != "api-secrets-2" || !created {
		t.Errorf("different values = %q, created=%v; want api-secrets-2, created", next, created)
	}

	// The same values as version 1 while the release runs version 2 are a new version: the
	// release mounts a version by name, and version 1 may be pruned.
	back, created, err := store.Apply(t.Context(), "api", v1, next)
	if err != nil {
		t.Fatal(err)
	}
	if back != "api-secrets-3" || !created {
		t.Errorf("old values while running version 2 = %q, created=%v; want api-secrets-3, created", back, created)
	}

	// A key added with an empty value is a change.
	more, created, err := store.Apply(t.Context(), "api", map[string][]byte{"token": []byte("one"), "extra": {}}, back)
	if err != nil {
		t.Fatal(err)
	}
	if more != "api-secrets-4" || !created {
		t.Errorf("an added empty key = %q, created=%v; want api-secrets-4, created", more, created)
	}

	// Another service counts its own generations.
	other, _, err := store.Apply(t.Context(), "api-gw", v1, "")
	if err != nil {
		t.Fatal(err)
	}
	if other != "api-gw-secrets-1" {
		t.Errorf("another service's first version = %q, want api-gw-secrets-1", other)
	}
}

func TestVersionsAreOrderedByGenerationNotByName(t *testing.T) {
	store, _ := newStore(t)
	for i := range 11 {
		if _, _, err := store.Apply(t.Context(), "api", map[string][]byte{"n": {byte(i)}}, ""); err != nil {
			t.Fatal(err)
		}
	}
	versions, err := store.Versions(t.Context(), "api")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range versions {
		got = append(got, v.Name)
	}
	if len(got) != 11 || got[0] != "api-secrets-1" || got[9] != "api-secrets-10" || got[10] != "api-secrets-11" {
		t.Errorf("Versions = %v, want api-secrets-1 .. api-secrets-11 in generation order", got)
	}
}

func TestPruneKeepsTheVersionsInUseAndTheNewest(t *testing.T) {
	store, cs := newStore(t)
	for i := range 7 {
		if _, _, err := store.Apply(t.Context(), "api", map[string][]byte{"n": {byte(i)}}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := store.Apply(t.Context(), "web", map[string][]byte{"n": {1}}, ""); err != nil {
		t.Fatal(err)
	}
	removed, err := store.Prune(t.Context(), "api", []string{"api-secrets-2", "api-secrets-6"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"api-secrets-1", "api-secrets-3", "api-secrets-4"}; !slices.Equal(removed, want) {
		t.Errorf("Prune removed %v, want %v", removed, want)
	}
	want := []string{"api-secrets-2", "api-secrets-5", "api-secrets-6", "api-secrets-7", "web-secrets-1"}
	if got := secretNames(t, cs); !slices.Equal(got, want) {
		t.Errorf("left %v, want %v (in use, the %d newest, and the other service's)", got, want, Keep)
	}

	// With no more than Keep versions, nothing goes.
	store2, _ := newStore(t)
	for i := range Keep {
		if _, _, err := store2.Apply(t.Context(), "api", map[string][]byte{"n": {byte(i)}}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if removed, err := store2.Prune(t.Context(), "api", nil, ""); err != nil || len(removed) != 0 {
		t.Errorf("Prune of %d versions = %v, %v; want nothing removed", Keep, removed, err)
	}
}

func TestDeleteAllRemovesOnlyTheManagedVersions(t *testing.T) {
	unrelated := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls-cert", Namespace: ns}, Data: map[string][]byte{"tls.crt": []byte("x")}}
	// Labelled by someone else with the same secret-of key: not ours either.
	lookalike := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api-secrets-99", Namespace: ns,
		Labels: map[string]string{LabelManagedBy: "someone-else", LabelSecretOf: "api"}}}
	elsewhere := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api-secrets-1", Namespace: "shop-test",
		Labels: map[string]string{LabelManagedBy: ManagedBy, LabelSecretOf: "api"}}}
	store, cs := newStore(t, unrelated, lookalike, elsewhere)
	for _, svc := range []string{"api", "api", "web"} {
		if _, _, err := store.Apply(t.Context(), svc, map[string][]byte{"k": []byte(svc + "x")}, ""); err != nil {
			t.Fatal(err)
		}
	}
	n, err := store.DeleteAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("DeleteAll = %d, want 3", n)
	}
	if got := secretNames(t, cs); !slices.Equal(got, []string{"api-secrets-99", "tls-cert"}) {
		t.Errorf("left %v, want the unrelated secrets only", got)
	}
	if _, err := cs.CoreV1().Secrets("shop-test").Get(t.Context(), "api-secrets-1", metav1.GetOptions{}); err != nil {
		t.Errorf("another namespace's version is gone: %v", err)
	}
}

func TestChooseNamesTheVersionApplyWrites(t *testing.T) {
	v1 := corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api-secrets-1", Labels: map[string]string{LabelGeneration: "1"}}, Data: map[string][]byte{"k": []byte("a")}}
	v3 := corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api-secrets-3", Labels: map[string]string{LabelGeneration: "3"}}, Data: map[string][]byte{"k": []byte("b")}}
	tests := []struct {
		name, current string
		data          map[string][]byte
		want          string
		create        bool
	}{
		{"the current version holds the values", "api-secrets-3", map[string][]byte{"k": []byte("b")}, "api-secrets-3", false},
		{"new values get the generation after the newest, not after the count", "api-secrets-3", map[string][]byte{"k": []byte("c")}, "api-secrets-4", true},
		{"an older version with the values is not reused", "api-secrets-3", map[string][]byte{"k": []byte("a")}, "api-secrets-4", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, create := Choose("api", []corev1.Secret{v1, v3}, tt.data, tt.current)
			if name != tt.want || create != tt.create {
				t.Errorf("Choose = %s, %v; want %s, %v", name, create, tt.want, tt.create)
			}
		})
	}
}

// Attacks on the merge: what a user gives, what the next version holds, and that nothing else
// (the current version's data, the values of keys not named) changed.
func TestMergeNeverDropsAKeyByOmission(t *testing.T) {
	current := map[string][]byte{"db-password": []byte("db-S3cr3t"), "api-token": []byte("tok-1")}
	tests := []struct {
		name   string
		given  map[string][]byte
		remove []string
		want   map[string][]byte
		diff   string
	}{
		{"rotating one key keeps the other", map[string][]byte{"api-token": []byte("tok-2")}, nil,
			map[string][]byte{"db-password": []byte("db-S3cr3t"), "api-token": []byte("tok-2")}, "changed api-token; kept db-password"},
		{"the same value again changes nothing", map[string][]byte{"api-token": []byte("tok-1")}, nil,
			current, "kept api-token, db-password"},
		{"a new key is added beside the others", map[string][]byte{"extra": []byte("x")}, nil,
			map[string][]byte{"db-password": []byte("db-S3cr3t"), "api-token": []byte("tok-1"), "extra": []byte("x")}, "added extra; kept api-token, db-password"},
		{"an empty value is a value, not a removal", map[string][]byte{"db-password": {}}, nil,
			map[string][]byte{"db-password": {}, "api-token": []byte("tok-1")}, "changed db-password; kept api-token"},
		{"an explicit removal drops that key only", nil, []string{"db-password"},
			map[string][]byte{"api-token": []byte("tok-1")}, "removed db-password; kept api-token"},
		{"a removal and a rotation at once", map[string][]byte{"api-token": []byte("tok-2")}, []string{"db-password"},
			map[string][]byte{"api-token": []byte("tok-2")}, "changed api-token; removed db-password"},
		{"removing a key the version does not hold removes nothing", nil, []string{"db-pasword"},
			current, "kept api-token, db-password; not held, nothing to remove: db-pasword"},
		{"removing every key leaves none", nil, []string{"api-token", "db-password"},
			map[string][]byte{}, "removed api-token, db-password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := maps.Clone(current)
			got, diff := Merge(current, tt.given, tt.remove)
			if !equal(got, tt.want) {
				t.Errorf("Merge = %v, want %v", keysOf(got), keysOf(tt.want))
			}
			if diff.String() != tt.diff {
				t.Errorf("diff = %q, want %q", diff, tt.diff)
			}
			if !equal(current, before) {
				t.Error("Merge changed the current version's data")
			}
			for _, v := range current {
				if strings.Contains(diff.String(), string(v)) {
					t.Errorf("the diff %q holds a value", diff)
				}
			}
		})
	}

	t.Run("a first version holds what is given", func(t *testing.T) {
		got, diff := Merge(nil, map[string][]byte{"api-token": []byte("t")}, nil)
		if len(got) != 1 || diff.String() != "added api-token" {
			t.Errorf("Merge(nil) = %v, %q", keysOf(got), diff)
		}
	})
}

func keysOf(m map[string][]byte) []string { return slices.Sorted(maps.Keys(m)) }

// The attack of issue 22: a deploy that gives only a rotated token, ten times over, while
// Helm keeps ten revisions. Every version holds db-password with its value, and pruning never
// takes the version the pods mount.
func TestRotationsAndPruningNeverLoseAKey(t *testing.T) {
	store, cs := newStore(t)
	dbPassword := []byte("db-S3cr3t")
	mounted, _, err := store.Apply(t.Context(), "api", map[string][]byte{"db-password": dbPassword, "api-token": []byte("tok-0")}, "")
	if err != nil {
		t.Fatal(err)
	}
	history := []string{mounted}
	for i := 1; i <= 11; i++ {
		versions, err := store.Versions(t.Context(), "api")
		if err != nil {
			t.Fatal(err)
		}
		cur, _ := Data(versions, mounted)
		data, diff := Merge(cur, map[string][]byte{"api-token": []byte(fmt.Sprintf("tok-%d", i))}, nil)
		if diff.String() != "changed api-token; kept db-password" {
			t.Fatalf("rotation %d: diff %q", i, diff)
		}
		name, create := Choose("api", versions, data, mounted)
		if !create {
			t.Fatalf("rotation %d wrote no version", i)
		}
		if err := store.Create(t.Context(), "api", name, data); err != nil {
			t.Fatal(err)
		}
		mounted = name
		history = append(history, name)
		if len(history) > 10 { // Helm's max_history
			history = history[1:]
		}
		if _, err := store.Prune(t.Context(), "api", history, mounted); err != nil {
			t.Fatal(err)
		}
	}
	sec, err := cs.CoreV1().Secrets(ns).Get(t.Context(), mounted, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the mounted version %s is gone: %v", mounted, err)
	}
	if !bytes.Equal(sec.Data["db-password"], dbPassword) || string(sec.Data["api-token"]) != "tok-11" {
		t.Errorf("the mounted version %s holds keys %v, want db-password unchanged and the last token", mounted, keysOf(sec.Data))
	}
}

func TestPruneNeverRemovesTheMountedVersion(t *testing.T) {
	tests := []struct {
		name    string
		inUse   []string
		mounted string
		removed []string
	}{
		{"the history could not name it (cut, or read in part)", nil, "api-secrets-2",
			[]string{"api-secrets-1", "api-secrets-3", "api-secrets-4"}},
		{"a rollback mounts an old version the history still names", []string{"api-secrets-1"}, "api-secrets-1",
			[]string{"api-secrets-2", "api-secrets-3", "api-secrets-4"}},
		{"no version mounted: inUse and the newest decide", []string{"api-secrets-3"}, "",
			[]string{"api-secrets-1", "api-secrets-2", "api-secrets-4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, cs := newStore(t)
			for i := range 7 {
				if _, _, err := store.Apply(t.Context(), "api", map[string][]byte{"k": {byte(i)}}, ""); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := store.Apply(t.Context(), "web", map[string][]byte{"k": {1}}, ""); err != nil {
				t.Fatal(err)
			}
			removed, err := store.Prune(t.Context(), "api", tt.inUse, tt.mounted)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(removed, tt.removed) {
				t.Errorf("Prune removed %v, want %v", removed, tt.removed)
			}
			left := secretNames(t, cs)
			if tt.mounted != "" && !slices.Contains(left, tt.mounted) {
				t.Errorf("the mounted version %s was removed", tt.mounted)
			}
			if !slices.Contains(left, "web-secrets-1") || len(left) != 8-len(tt.removed) {
				t.Errorf("left %v: another service's version, or more than the pruned ones, went", left)
			}
		})
	}
}

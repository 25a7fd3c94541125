package deploy

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
)

// workspaceSecret is a workspace's Secret as Terraform's kubernetes backend writes it, at a
// version, saying that the service's release is at a revision.
func workspaceSecret(t *testing.T, ws, svc string, revision int, version string) *corev1.Secret {
	t.Helper()
	doc := fmt.Sprintf(`{"version":4,"serial":%d,"lineage":"l-%s","outputs":{"namespace":{"value":"shop-dev"},
"releases":{"value":{%q:{"revision":%d,"status":"deployed"}}}},
"resources":[{"module":"module.service[\"%s\"]","mode":"managed","type":"helm_release","name":"this"}]}`, revision, svc, svc, revision, svc)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(doc))
	zw.Close()
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "tfstate-" + ws + "-shop", Namespace: "shop-system", UID: types.UID("uid-" + ws), ResourceVersion: version,
			Labels: map[string]string{suffixLabel: "shop", workspaceLabel: ws}},
		Data: map[string][]byte{stateKey: gz.Bytes()},
	}
}

// stateClients are a clientset and a metadata client that hold the same Secrets.
func stateClients(t *testing.T, secrets ...*corev1.Secret) (*fake.Clientset, *metadatafake.FakeMetadataClient) {
	t.Helper()
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var typed, metas []runtime.Object
	for _, s := range secrets {
		typed = append(typed, s)
		metas = append(metas, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: s.ObjectMeta})
	}
	return fake.NewClientset(typed...), metadatafake.NewSimpleMetadataClient(scheme, metas...)
}

// secretReads counts the clientset's gets and lists of Secrets.
func secretReads(cs *fake.Clientset) (gets, lists int) {
	for _, a := range cs.Actions() {
		if a.GetResource().Resource != "secrets" {
			continue
		}
		switch a.(type) {
		case k8stesting.GetAction:
			gets++
		case k8stesting.ListAction:
			lists++
		}
	}
	return gets, lists
}

// TestAStateIsParsedOncePerVersionOfItsSecret: the first read parses every workspace of the
// environment (not another environment's); a second reads no Secret at all and says the same;
// a workspace whose Secret changed is read again, alone, with a get; many changed ones with one
// list; a damaged cache file costs a read, not a wrong answer; a Secret in a form not known
// makes the caller ask Terraform.
func TestAStateIsParsedOncePerVersionOfItsSecret(t *testing.T) {
	ctx := context.Background()
	cache := filepath.Join(t.TempDir(), "tfstate", "shop-dev.json")
	read := func(cs *fake.Clientset, meta *metadatafake.FakeMetadataClient) map[string]State {
		t.Helper()
		got, ok, err := readWorkspaces(ctx, meta, cs.CoreV1().Secrets("shop-system"), "shop-system", "dev", "shop", cache)
		if err != nil || !ok {
			t.Fatalf("readWorkspaces: ok %v, %v", ok, err)
		}
		return got
	}
	revision := func(st State, svc string) int { return st.Releases[svc].Revision }

	cs, meta := stateClients(t, workspaceSecret(t, "dev.api", "api", 3, "10"), workspaceSecret(t, "dev.web", "web", 1, "11"), workspaceSecret(t, "test.api", "api", 9, "12"))
	first := read(cs, meta)
	if len(first) != 2 || revision(first["dev.api"], "api") != 3 || revision(first["dev.web"], "web") != 1 {
		t.Fatalf("first read = %+v, want dev.api at 3 and dev.web at 1", first)
	}
	if gets, lists := secretReads(cs); gets != 2 || lists != 0 {
		t.Errorf("first read: %d gets and %d lists of Secrets, want a get for each of dev's two", gets, lists)
	}
	if st, err := os.Stat(cache); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the kept states: %v; want a file of the user's alone", err)
	}

	cs, meta = stateClients(t, workspaceSecret(t, "dev.api", "api", 3, "10"), workspaceSecret(t, "dev.web", "web", 1, "11"), workspaceSecret(t, "test.api", "api", 9, "12"))
	if again := read(cs, meta); !reflect.DeepEqual(again, first) {
		t.Errorf("read from the cache = %+v, want %+v", again, first)
	}
	if gets, lists := secretReads(cs); gets+lists != 0 {
		t.Errorf("nothing changed, yet %d gets and %d lists of Secrets", gets, lists)
	}

	// api was deployed again (its Secret has a new version): it alone is read.
	cs, meta = stateClients(t, workspaceSecret(t, "dev.api", "api", 4, "20"), workspaceSecret(t, "dev.web", "web", 1, "11"))
	if got := read(cs, meta); revision(got["dev.api"], "api") != 4 || revision(got["dev.web"], "web") != 1 {
		t.Errorf("after api's deploy: %+v", got)
	}
	if gets, lists := secretReads(cs); gets != 1 || lists != 0 {
		t.Errorf("after api's deploy: %d gets and %d lists, want one get", gets, lists)
	}

	// A Secret deleted between the list and its get (a destroy meanwhile): its workspace is gone.
	cs, meta = stateClients(t, workspaceSecret(t, "dev.api", "api", 5, "21"), workspaceSecret(t, "dev.web", "web", 1, "11"))
	if err := cs.CoreV1().Secrets("shop-system").Delete(ctx, "tfstate-dev.api-shop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := read(cs, meta); len(got) != 1 || revision(got["dev.web"], "web") != 1 {
		t.Errorf("with api's Secret deleted meanwhile: %+v, want web alone", got)
	}

	// Many new versions: one list.
	var many []*corev1.Secret
	for i := range listThreshold + 2 {
		svc := fmt.Sprintf("s%02d", i)
		many = append(many, workspaceSecret(t, "dev."+svc, svc, 1, "30"))
	}
	cs, meta = stateClients(t, many...)
	if got := read(cs, meta); len(got) != listThreshold+2 {
		t.Errorf("read %d workspaces, want %d", len(got), listThreshold+2)
	}
	if gets, lists := secretReads(cs); gets != 0 || lists != 1 {
		t.Errorf("%d new versions: %d gets and %d lists, want one list", listThreshold+2, gets, lists)
	}

	// A damaged cache file: read again, right.
	if err := os.WriteFile(cache, []byte(`{"dev.api": {"uid": `), 0o600); err != nil {
		t.Fatal(err)
	}
	cs, meta = stateClients(t, workspaceSecret(t, "dev.api", "api", 5, "40"))
	if got := read(cs, meta); revision(got["dev.api"], "api") != 5 {
		t.Errorf("with a damaged cache: %+v", got)
	}

	// A Secret in a form this does not know: Terraform reads it.
	odd := workspaceSecret(t, "dev.api", "api", 6, "50")
	odd.Data = map[string][]byte{"other": []byte("x")}
	cs, meta = stateClients(t, odd)
	if _, ok, err := readWorkspaces(ctx, meta, cs.CoreV1().Secrets("shop-system"), "shop-system", "dev", "shop", cache); ok || err != nil {
		t.Errorf("a Secret without %s: ok %v, %v; want not ok, so that Terraform reads it", stateKey, ok, err)
	}
}

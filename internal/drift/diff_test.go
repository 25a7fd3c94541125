package drift

import (
	"encoding/json"
	"slices"
	"testing"
)

func obj(t *testing.T, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDiffNamesEachChangedFieldByItsPathAndOwner(t *testing.T) {
	live := obj(t, `{"metadata":{"name":"api","generation":7,"resourceVersion":"9"},
		"spec":{"replicas":0,"template":{"spec":{"containers":[{"name":"api","env":[{"name":"PORT","value":"8080"},{"name":"LOG_LEVEL","value":"debug"}]},{"name":"sidecar"}]}}},
		"status":{"replicas":0}}`)
	want := obj(t, `{"metadata":{"name":"api","generation":8,"resourceVersion":"9","annotations":{}},
		"spec":{"replicas":1,"template":{"spec":{"containers":[{"name":"api","env":[{"name":"PORT","value":"8080"},{"name":"LOG_LEVEL","value":"info"}]},{"name":"sidecar"}]}}},
		"status":{"replicas":1}}`)
	got := diff(want, live, false)
	var paths []string
	for _, f := range got {
		paths = append(paths, f.String())
	}
	wantPaths := []string{
		"spec.replicas 0 -> 1",
		`spec.template.spec.containers[api].env[LOG_LEVEL].value "debug" -> "info"`,
	}
	if !slices.Equal(paths, wantPaths) {
		t.Fatalf("diff = %q, want %q", paths, wantPaths)
	}
	managed := []managedEntry{
		{manager: "terraform-provider-helm_v3.1.2", fields: obj(t, `{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"api\"}":{"f:env":{"k:{\"name\":\"PORT\"}":{".":{},"f:value":{}}}}}}}}}`)},
		{manager: "kubectl", fields: obj(t, `{"f:spec":{"f:replicas":{}}}`)},
		{manager: "kubectl-set", fields: obj(t, `{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"api\"}":{"f:env":{"k:{\"name\":\"LOG_LEVEL\"}":{"f:value":{}}}}}}}}}`)},
	}
	if who := owners(managed, got[0].segs); !slices.Equal(who, []string{"kubectl"}) {
		t.Errorf("replicas owned by %v, want kubectl", who)
	}
	if who := owners(managed, got[1].segs); !slices.Equal(who, []string{"kubectl-set"}) {
		t.Errorf("LOG_LEVEL owned by %v, want kubectl-set", who)
	}
}

func TestDiffHidesTheValuesOfASecret(t *testing.T) {
	got := diff(obj(t, `{"data":{"k":"bmV3"}}`), obj(t, `{"data":{"k":"b2xk"}}`), true)
	if len(got) != 1 || got[0].Live != "(hidden)" || got[0].Want != "(hidden)" || got[0].Path != "data.k" {
		t.Fatalf("diff of a Secret = %+v, want data.k with hidden values", got)
	}
}

func TestParseSkipsEmptyDocuments(t *testing.T) {
	objs, err := Parse("---\n# Source: a\napiVersion: v1\nkind: Service\nmetadata:\n  name: api\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetKind() != "Service" || objs[1].GetKind() != "Deployment" {
		t.Fatalf("Parse = %d objects, want Service and Deployment", len(objs))
	}
}

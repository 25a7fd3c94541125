package deploy

import (
	"encoding/json"
	"testing"
)

// A state of the environment's one workspace, as Terraform 1.11 wrote it for two services.
const legacyState = `{"version":4,"terraform_version":"1.11.4","serial":7,"lineage":"old",
"outputs":{"environment":{"value":"dev","type":"string"},"namespace":{"value":"dtap-dev","type":"string"},
"services":{"value":{"api":{"image_repository":"r/api","image_tag":"a","image_digest":"","values":["fingerprint: aaa"]},
"web":{"image_repository":"r/web","image_tag":"w","image_digest":"","values":["fingerprint: www"]}},
"type":["map",["object",{"image_digest":"string","image_repository":"string","image_tag":"string","values":["list","string"]}]],"sensitive":true},
"releases":{"value":{"api":{"revision":3,"status":"deployed"},"web":{"revision":1,"status":"deployed"}},
"type":["object",{"api":["object",{"revision":"number","status":"string"}],"web":["object",{"revision":"number","status":"string"}]}]}},
"resources":[{"module":"module.service[\"api\"]","mode":"managed","type":"helm_release","name":"this","instances":[{"attributes":{"name":"api"}}]},
{"module":"module.service[\"web\"]","mode":"managed","type":"helm_release","name":"this","instances":[{"attributes":{"name":"web"}}]}]}`

func TestSplitStateGivesEachServiceItsResourcesAndOutputs(t *testing.T) {
	parts, err := splitState([]byte(legacyState))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 {
		t.Fatalf("parts = %d, want api and web", len(parts))
	}
	lineages := map[string]bool{}
	for svc, doc := range parts {
		st, err := parseState(doc)
		if err != nil {
			t.Fatalf("%s: %v", svc, err)
		}
		if len(st.Managed) != 1 || !st.Managed[svc] || st.Namespace != "dtap-dev" {
			t.Errorf("%s: state = %+v, want its release alone in dtap-dev", svc, st)
		}
		if len(st.Services) != 1 || inputsFingerprint(st.Services[svc]) == "" || len(st.Releases) != 1 {
			t.Errorf("%s: outputs = %+v %+v, want its own inputs and release", svc, st.Services, st.Releases)
		}
		var raw struct {
			Serial  int    `json:"serial"`
			Lineage string `json:"lineage"`
			Outputs map[string]struct {
				Type json.RawMessage `json:"type"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal(doc, &raw); err != nil {
			t.Fatal(err)
		}
		if raw.Serial != 1 || raw.Lineage == "old" || lineages[raw.Lineage] {
			t.Errorf("%s: serial %d lineage %q, want a new state of its own", svc, raw.Serial, raw.Lineage)
		}
		lineages[raw.Lineage] = true
		var typ []json.RawMessage
		_ = json.Unmarshal(raw.Outputs["releases"].Type, &typ)
		var attrs map[string]any
		_ = json.Unmarshal(typ[1], &attrs)
		if len(attrs) != 1 || attrs[svc] == nil {
			t.Errorf("%s: the releases output's type is %s, want its object type narrowed to %s", svc, raw.Outputs["releases"].Type, svc)
		}
	}
	if _, err := splitState([]byte(`{"version":4,"resources":[{"module":"module.other","mode":"managed"}]}`)); err == nil {
		t.Error("a resource of no service was split without a word")
	}
}

func TestMergeStatesReadsEveryWorkspaceOfTheEnvironmentOnly(t *testing.T) {
	api, _ := parseState([]byte(`{"version":4,"outputs":{"namespace":{"value":"dtap-dev"}},"resources":[{"module":"module.service[\"api\"]","mode":"managed","type":"helm_release","name":"this"}]}`))
	empty, _ := parseState([]byte(`{"version":4,"outputs":{},"resources":[]}`))
	legacy, _ := parseState([]byte(legacyState))
	st, err := mergeStates("dev", map[string]State{"dev.api": api, "dev.gone": empty, "devx.api": api, "test.api": api})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Exists || st.Legacy || !st.Managed["api"] || len(st.Managed) != 1 || !st.Workspaces["gone"] || len(st.Workspaces) != 2 {
		t.Errorf("merged = %+v, want api managed and the workspaces of api and gone", st)
	}
	st, err = mergeStates("dev", map[string]State{"dev": legacy})
	if err != nil || !st.Legacy || len(st.Managed) != 2 || len(st.Workspaces) != 0 {
		t.Errorf("merged legacy = %+v (%v), want Legacy with api and web", st, err)
	}
	grown, _ := parseState([]byte(`{"version":4,"resources":[{"module":"module.service[\"api\"]","mode":"managed","type":"helm_release","name":"this"},{"module":"module.service[\"api\"]","mode":"managed","type":"kubernetes_manifest","name":"extra"}]}`))
	if st, _ := mergeStates("dev", map[string]State{"dev.api": grown, "dev.web": api}); !st.Other["api"] || st.Other["web"] {
		t.Errorf("Other = %v, want api alone (its state holds more than its release)", st.Other)
	}
	other, _ := parseState([]byte(`{"version":4,"outputs":{"namespace":{"value":"elsewhere"}},"resources":[]}`))
	if _, err := mergeStates("dev", map[string]State{"dev.api": api, "dev.web": other}); err == nil {
		t.Error("two states naming two namespaces were merged")
	}
	if got := serviceOfWorkspace("dev", "dev.a.b"); got != "" {
		t.Errorf("serviceOfWorkspace(dev.a.b) = %q, want none", got)
	}
}

package supplychain

import (
	"bytes"
	"runtime/debug"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

func TestSBOMListsEveryModuleOfTheBuildInformation(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Path: "example.com/m/services/api",
		Main: debug.Module{Path: "example.com/m", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "github.com/go-chi/chi/v5", Version: "v5.2.3", Sum: "h1:WQIt9uxdsAbgIYgid+BpYc+liqQZGMHRaUwp0JUcvdE="},
			{Path: "example.com/old", Version: "v1.0.0", Replace: &debug.Module{Path: "example.com/new", Version: "v1.1.0", Sum: "h1:WQIt9uxdsAbgIYgid+BpYc+liqQZGMHRaUwp0JUcvdE="}},
			{Path: "example.com/nosum", Version: "v0.1.0"},
		}}
	b, err := SBOM(bi, "src-0123456789abcdef", "sha256:"+string(bytes.Repeat([]byte("ab"), 32)))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := SBOM(bi, "src-0123456789abcdef", "sha256:"+string(bytes.Repeat([]byte("ab"), 32)))
	if !bytes.Equal(b, again) {
		t.Error("two SBOMs of one image differ: the document must follow from the image alone")
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	got := map[string]cdx.Component{}
	for _, c := range *bom.Components {
		got[c.Name] = c
	}
	tests := []struct{ name, version, purl string }{
		{"std", "go1.26.8", "pkg:golang/std@go1.26.8"},
		{"github.com/go-chi/chi/v5", "v5.2.3", "pkg:golang/github.com/go-chi/chi/v5@v5.2.3"},
		{"example.com/new", "v1.1.0", "pkg:golang/example.com/new@v1.1.0"},
		{"example.com/nosum", "v0.1.0", "pkg:golang/example.com/nosum@v0.1.0"},
	}
	for _, tt := range tests {
		c, ok := got[tt.name]
		if !ok || c.Version != tt.version || c.PackageURL != tt.purl {
			t.Errorf("component %s = %+v; want version %s, purl %s", tt.name, c, tt.version, tt.purl)
		}
	}
	if h := got["github.com/go-chi/chi/v5"].Hashes; h == nil || (*h)[0].Algorithm != cdx.HashAlgoSHA256 || len((*h)[0].Value) != 64 {
		t.Errorf("chi's hash %+v, want the go.sum h1 hash as hex SHA-256", h)
	}
	if _, ok := got["example.com/old"]; ok {
		t.Error("a replaced module is listed under its old path")
	}
	if m := bom.Metadata.Component; m.Name != bi.Path || m.Version != "src-0123456789abcdef" || bom.SerialNumber == "" {
		t.Errorf("subject %s %s, serial %q", m.Name, m.Version, bom.SerialNumber)
	}
}

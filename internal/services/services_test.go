package services

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dtap-platform/monorepo/internal/testfiles"
)

// module is a Go module example.com/fake in a temporary directory, with files added to it.
func module(t *testing.T, files map[string]string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("the go command is not on PATH (%v): Discover asks it for the packages", err)
	}
	root := t.TempDir()
	testfiles.Write(t, root, map[string]string{"go.mod": "module example.com/fake\n\ngo 1.26\n"})
	testfiles.Write(t, root, files)
	return root
}

const mainPkg = "package main\n\nfunc main() {}\n"

func TestDiscoverFindsTheMainPackagesDirectlyUnderServices(t *testing.T) {
	root := module(t, map[string]string{
		"services/web/main.go":       mainPkg,
		"services/api/main.go":       mainPkg,
		"services/api-gw/main.go":    mainPkg,
		"services/api/handler.go":    "package main\n",
		"services/api/cmd/x/main.go": mainPkg,                           // a command deeper down
		"services/api/store/db.go":   "package store\n",                 // a service's own package
		"services/kit/x.go":          "package kit\n",                   // the kit: not a service
		"services/docs/README.md":    "no Go here\n",                    // no package at all
		"tools/gen/main.go":          mainPkg,                           // a main package outside services/
		"services/old/main.go":       "//go:build ignore\n\n" + mainPkg, // excluded by a constraint
	})
	got, err := Discover(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Service{
		{Name: "api", Dir: "services/api", Package: "example.com/fake/services/api"},
		{Name: "api-gw", Dir: "services/api-gw", Package: "example.com/fake/services/api-gw"},
		{Name: "web", Dir: "services/web", Package: "example.com/fake/services/web"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Discover = %+v\nwant %+v", got, want)
	}
}

func TestDiscoverRefusesWhatCannotBeAService(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"a folder name that is no DNS label is refused with the fix",
			map[string]string{"services/api/main.go": mainPkg, "services/Bad_Name/main.go": mainPkg},
			[]string{"services/Bad_Name: a service's folder name is its release, Service and image name", "rename the folder"}},
		{"a folder name starting with a digit is refused",
			map[string]string{"services/1abc/main.go": mainPkg},
			[]string{"services/1abc:", "starting with a letter"}},
		{"a folder name with a double dash is refused, as its secrets' variables would be ambiguous",
			map[string]string{"services/a--b/main.go": mainPkg},
			[]string{"services/a--b:", `no "--"`}},
		{"a folder name over 53 characters is refused",
			map[string]string{"services/" + strings.Repeat("a", 54) + "/main.go": mainPkg},
			[]string{"at most 53 lowercase letters"}},
		{"no main package under services/ is refused",
			map[string]string{"services/kit/x.go": "package kit\n"},
			[]string{"no services: no folder under services/ holds a main package"}},
		{"a service folder holding two packages is refused naming it",
			map[string]string{"services/api/main.go": mainPkg, "services/api/z.go": "package other\n"},
			[]string{"services/api: found packages main (main.go) and other (z.go)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := module(t, tt.files)
			got, err := Discover(t.Context(), root)
			if err == nil {
				t.Fatalf("Discover = %+v, want an error", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Discover error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSelectRestrictsTheRunToNamedServices(t *testing.T) {
	all := []Service{{Name: "api"}, {Name: "api-gw"}, {Name: "status"}}
	tests := []struct {
		name string
		spec string
		want []string
		err  string
	}{
		{"an empty spec selects every service", "", []string{"api", "api-gw", "status"}, ""},
		{"a blank spec selects every service", "  ", []string{"api", "api-gw", "status"}, ""},
		{"one name selects one", "api", []string{"api"}, ""},
		{"names are trimmed, deduplicated and sorted", " status , api,status", []string{"api", "status"}, ""},
		{"a prefix of a name is no name", "api-", nil, `SERVICES="api-": no service "api-"; the services are api, api-gw, status`},
		{"an unknown name is refused listing the services", "api,nope", nil, `no service "nope"; the services are api, api-gw, status (folders under services/ with a main package)`},
		{"only commas name no service", ",,", nil, `SERVICES=",," names no service; the services are api, api-gw, status`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Select(all, tt.spec)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Select(%q) = %v, %v; want an error containing %q", tt.spec, Names(got), err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(Names(got), tt.want) {
				t.Errorf("Select(%q) = %v, want %v", tt.spec, Names(got), tt.want)
			}
		})
	}
}

func TestEnvTokenIsTheNameInUpperCaseWithUnderscores(t *testing.T) {
	for name, want := range map[string]string{"api": "API", "api-gw": "API_GW", "a-b-c9": "A_B_C9", "status": "STATUS"} {
		if got := EnvToken(name); got != want {
			t.Errorf("EnvToken(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestValuesFilesAreTheServicesThenTheEnvironmentsWhenPresent(t *testing.T) {
	root := t.TempDir()
	testfiles.Write(t, root, map[string]string{
		"services/api/values.yaml":         "replicaCount: 1\n",
		"services/api/values-prod.yaml":    "replicaCount: 3\n",
		"services/web/values-staging.yaml": "replicaCount: 2\n",
	})
	// A directory named like a values file is not one.
	if err := os.MkdirAll(filepath.Join(root, "services", "web", "values.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	api := Service{Name: "api", Dir: "services/api"}
	web := Service{Name: "web", Dir: "services/web"}
	tests := []struct {
		name string
		svc  Service
		env  string
		want []string
	}{
		{"values.yaml then values-<env>.yaml", api, "prod", []string{"services/api/values.yaml", "services/api/values-prod.yaml"}},
		{"values.yaml alone when the environment has none", api, "dev", []string{"services/api/values.yaml"}},
		{"the environment's alone when there is no values.yaml", web, "staging", []string{"services/web/values-staging.yaml"}},
		{"nothing when neither exists", web, "dev", nil},
		{"nothing for a service without a folder", Service{Name: "gone", Dir: "services/gone"}, "prod", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.svc.ValuesFiles(root, tt.env)
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = filepath.FromSlash(w)
			}
			if len(got) != len(want) || !slices.Equal(got, want) {
				t.Errorf("ValuesFiles(%s) = %q, want %q", tt.env, got, want)
			}
		})
	}
}

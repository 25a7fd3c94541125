// Package services finds the services of the monorepo: every services/<name>/ folder that holds
// a main package is one, with no list kept anywhere else. A service's deploy description sits
// beside its code: services/<name>/values.yaml and, per environment, values-<env>.yaml.
package services

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/dtap-platform/monorepo/internal/golist"
)

// Dir is the folder of the services, relative to the repository root.
const Dir = "services"

// Service is one service of the monorepo. Its name is its folder's, and also its release's,
// its image's and its Kubernetes objects' name.
type Service struct {
	Name    string // folder name: a DNS label of at most 53 characters (Helm's release limit)
	Dir     string // services/<name>, relative to the repository root
	Package string // Go import path of its main package
}

// ValuesFiles are the service's deploy description for env, in the order they apply: its
// values.yaml, then its values-<env>.yaml, each only when it exists. Paths are relative to
// repoRoot.
func (s Service) ValuesFiles(repoRoot, env string) []string {
	var out []string
	for _, f := range []string{"values.yaml", "values-" + env + ".yaml"} {
		p := filepath.Join(s.Dir, f)
		if st, err := os.Stat(filepath.Join(repoRoot, p)); err == nil && st.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out
}

// nameRule is a DNS-1035 label (a Service's name starts with a letter).
var nameRule = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// ValidateName explains why a folder name cannot be a service's.
func ValidateName(name string) error {
	if !nameRule.MatchString(name) || len(name) > 53 || strings.Contains(name, "--") {
		return fmt.Errorf("services/%s: a service's folder name is its release, Service and image name, so it must be at most 53 lowercase letters, digits and '-', starting with a letter, ending with a letter or digit, with no \"--\" (SECRET_<SERVICE>__<KEY> uses a double underscore); rename the folder", name)
	}
	return nil
}

// Discover lists the services under repoRoot/services, sorted by name. It asks the go command,
// so build constraints and the module's layout are what the build sees.
func Discover(ctx context.Context, repoRoot string) ([]Service, error) {
	out, err := golist.Run(ctx, repoRoot, []string{"GOFLAGS=-mod=readonly"}, "-e", "-json=Dir,ImportPath,Name,Error", "./"+Dir+"/...")
	if err != nil {
		return nil, err
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return nil, err
	}
	var found []Service
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			Dir, ImportPath, Name string
			Error                 *struct{ Err string }
		}
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil || filepath.Dir(rel) != Dir {
			continue // the kit's or a service's own packages, or a command deeper down
		}
		if p.Error != nil {
			// A folder whose files disagree on their package may still be meant as a service:
			// say so rather than leave it out.
			return nil, fmt.Errorf("services/%s: %s; fix it, or move what is not a service out of %s/", filepath.Base(rel), p.Error.Err, Dir)
		}
		if p.Name != "main" {
			continue // the kit, or a library beside the services
		}
		name := filepath.Base(rel)
		if err := ValidateName(name); err != nil {
			return nil, err
		}
		found = append(found, Service{Name: name, Dir: filepath.ToSlash(rel), Package: p.ImportPath})
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no services: no folder under %s/ holds a main package", Dir)
	}
	slices.SortFunc(found, func(a, b Service) int { return strings.Compare(a.Name, b.Name) })
	return found, nil
}

// Names are the services' names.
func Names(svcs []Service) []string {
	out := make([]string, len(svcs))
	for i, s := range svcs {
		out[i] = s.Name
	}
	return out
}

// Select restricts all to the comma-separated names of spec (SERVICES); an empty spec selects
// every service. An unknown name is an error that lists the known ones.
func Select(all []Service, spec string) ([]Service, error) {
	if strings.TrimSpace(spec) == "" {
		return all, nil
	}
	var out []Service
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		i := slices.IndexFunc(all, func(s Service) bool { return s.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("SERVICES=%q: no service %q; the services are %s (folders under %s/ with a main package)",
				spec, name, strings.Join(Names(all), ", "), Dir)
		}
		if !slices.ContainsFunc(out, func(s Service) bool { return s.Name == name }) {
			out = append(out, all[i])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("SERVICES=%q names no service; the services are %s", spec, strings.Join(Names(all), ", "))
	}
	slices.SortFunc(out, func(a, b Service) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// EnvToken is how a service is named in environment variables such as SECRET_<TOKEN>_<KEY> and
// BASE_URL_<TOKEN>: its name in upper case with '_' for '-' (api-gw: API_GW).
func EnvToken(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

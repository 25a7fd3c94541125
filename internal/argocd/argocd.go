// Package argocd reads the repository's Argo CD manifests (deploy/argocd) strictly, into small
// types of its own (Argo CD's Go module does not build here), and expands the ApplicationSet's
// generators the way Argo CD does for the ones it uses (a matrix of a list and git
// directories), so tests can check what Applications it would make.
package argocd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

// File is the ApplicationSet file, relative to the repository root.
const File = "deploy/argocd/applicationset.yaml"

// AppProject is the part of argoproj.io/v1alpha1 AppProject the repository uses.
type AppProject struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       struct {
		Description  string   `json:"description"`
		SourceRepos  []string `json:"sourceRepos"`
		Destinations []struct {
			Server    string `json:"server"`
			Namespace string `json:"namespace"`
		} `json:"destinations"`
		ClusterResourceWhitelist []struct {
			Group string `json:"group"`
			Kind  string `json:"kind"`
		} `json:"clusterResourceWhitelist"`
	} `json:"spec"`
}

// Metadata of an object.
type Metadata struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// ApplicationSet is the part of argoproj.io/v1alpha1 ApplicationSet the repository uses.
type ApplicationSet struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       struct {
		GoTemplate        bool        `json:"goTemplate"`
		GoTemplateOptions []string    `json:"goTemplateOptions"`
		Generators        []Generator `json:"generators"`
		Template          struct {
			Metadata Metadata `json:"metadata"`
			Spec     AppSpec  `json:"spec"`
		} `json:"template"`
		TemplatePatch string `json:"templatePatch"`
	} `json:"spec"`
}

// Generator is a matrix of generators, or one list or git generator.
type Generator struct {
	Matrix *struct {
		Generators []Generator `json:"generators"`
	} `json:"matrix,omitempty"`
	List *struct {
		Elements []map[string]string `json:"elements"`
	} `json:"list,omitempty"`
	Git *struct {
		RepoURL     string `json:"repoURL"`
		Revision    string `json:"revision"`
		Directories []struct {
			Path    string `json:"path"`
			Exclude bool   `json:"exclude,omitempty"`
		} `json:"directories"`
	} `json:"git,omitempty"`
}

// AppSpec is the part of an Application's spec the repository uses.
type AppSpec struct {
	Project string `json:"project"`
	Source  struct {
		RepoURL        string `json:"repoURL"`
		TargetRevision string `json:"targetRevision"`
		Path           string `json:"path"`
		Helm           struct {
			ReleaseName             string   `json:"releaseName"`
			IgnoreMissingValueFiles bool     `json:"ignoreMissingValueFiles"`
			ValueFiles              []string `json:"valueFiles"`
		} `json:"helm"`
	} `json:"source"`
	Destination struct {
		Server    string `json:"server"`
		Namespace string `json:"namespace"`
	} `json:"destination"`
	SyncPolicy struct {
		Automated *struct {
			Prune    bool `json:"prune"`
			SelfHeal bool `json:"selfHeal"`
		} `json:"automated,omitempty"`
		SyncOptions []string `json:"syncOptions"`
	} `json:"syncPolicy"`
}

// Load decodes the file strictly: an unknown or misspelled field is an error.
func Load(file string) (*AppProject, *ApplicationSet, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	var project *AppProject
	var set *ApplicationSet
	for _, doc := range splitDocs(b) {
		var head struct{ Kind string }
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		switch head.Kind {
		case "AppProject":
			project = &AppProject{}
			if err := yaml.UnmarshalStrict(doc, project); err != nil {
				return nil, nil, fmt.Errorf("%s: AppProject: %w", file, err)
			}
		case "ApplicationSet":
			set = &ApplicationSet{}
			if err := yaml.UnmarshalStrict(doc, set); err != nil {
				return nil, nil, fmt.Errorf("%s: ApplicationSet: %w", file, err)
			}
		default:
			return nil, nil, fmt.Errorf("%s: unexpected kind %q", file, head.Kind)
		}
	}
	if project == nil || set == nil {
		return nil, nil, fmt.Errorf("%s: want an AppProject and an ApplicationSet", file)
	}
	return project, set, nil
}

func splitDocs(b []byte) [][]byte {
	var out [][]byte
	for _, d := range bytes.Split(b, []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			out = append(out, d)
		}
	}
	return out
}

func stripComments(b []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

// App is one Application the set makes.
type App struct {
	Name, Env, Service, Server, Namespace string
	ValueFiles                            []string
	Automated                             bool
}

// Expand makes the set's Applications as Argo CD would, with repoRoot as the git repository's
// tree for the git directories generator.
func (s *ApplicationSet) Expand(repoRoot string) ([]App, error) {
	if len(s.Spec.Generators) != 1 || s.Spec.Generators[0].Matrix == nil {
		return nil, errors.New("expected one matrix generator")
	}
	var lists []map[string]string
	var dirs []string
	for _, g := range s.Spec.Generators[0].Matrix.Generators {
		switch {
		case g.List != nil:
			lists = g.List.Elements
		case g.Git != nil:
			var excluded []string
			for _, d := range g.Git.Directories {
				matches, err := filepath.Glob(filepath.Join(repoRoot, filepath.FromSlash(d.Path)))
				if err != nil {
					return nil, err
				}
				for _, m := range matches {
					if st, err := os.Stat(m); err != nil || !st.IsDir() {
						continue
					}
					rel, _ := filepath.Rel(repoRoot, m)
					if d.Exclude {
						excluded = append(excluded, filepath.ToSlash(rel))
					} else {
						dirs = append(dirs, filepath.ToSlash(rel))
					}
				}
			}
			dirs = slices.DeleteFunc(dirs, func(d string) bool { return slices.Contains(excluded, d) })
		}
	}
	var out []App
	for _, el := range lists {
		for _, dir := range dirs {
			params := map[string]any{"path": map[string]any{"path": dir, "basename": path.Base(dir)}}
			for k, v := range el {
				params[k] = v
			}
			t := s.Spec.Template
			exec := func(text string) (string, error) {
				tmpl, err := template.New("").Option(s.Spec.GoTemplateOptions...).Parse(text)
				if err != nil {
					return "", err
				}
				var b strings.Builder
				err = tmpl.Execute(&b, params)
				return b.String(), err
			}
			app := App{Env: el["env"], Service: path.Base(dir)}
			var err error
			fields := []struct {
				dst *string
				src string
			}{{&app.Name, t.Metadata.Name}, {&app.Server, t.Spec.Destination.Server}, {&app.Namespace, t.Spec.Destination.Namespace}}
			for _, f := range fields {
				if *f.dst, err = exec(f.src); err != nil {
					return nil, err
				}
			}
			for _, vf := range t.Spec.Source.Helm.ValueFiles {
				v, err := exec(vf)
				if err != nil {
					return nil, err
				}
				app.ValueFiles = append(app.ValueFiles, path.Clean(path.Join(t.Spec.Source.Path, v)))
			}
			patch, err := exec(s.Spec.TemplatePatch)
			if err != nil {
				return nil, err
			}
			var p AppSpecPatch
			if err := yaml.UnmarshalStrict([]byte(patch), &p); err != nil {
				return nil, fmt.Errorf("templatePatch for %s: %w", app.Name, err)
			}
			app.Automated = t.Spec.SyncPolicy.Automated != nil || p.Spec.SyncPolicy.Automated != nil
			out = append(out, app)
		}
	}
	return out, nil
}

// AppSpecPatch is what the template patch may set.
type AppSpecPatch struct {
	Spec struct {
		SyncPolicy struct {
			Automated *struct {
				Prune    bool `json:"prune"`
				SelfHeal bool `json:"selfHeal"`
			} `json:"automated,omitempty"`
		} `json:"syncPolicy"`
	} `json:"spec"`
}

package supplychain

import (
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dtap-platform/monorepo/internal/inputs"
)

// The provenance's builder and build type.
const (
	sourceURI = "git+https://github.com/dtap-platform/monorepo"
	BuilderID = "https://github.com/dtap-platform/monorepo/internal/image"
	BuildType = "https://github.com/dtap-platform/monorepo/internal/image/content-tag@v1"
)

// Statement is an in-toto v1 statement.
type Statement struct {
	Type          string    `json:"_type"`
	Subject       []Subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     SLSA      `json:"predicate"`
}

// Subject is what a statement is about: the image, by digest.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// SLSA is a SLSA v1 provenance predicate (https://slsa.dev/spec/v1.0/provenance).
type SLSA struct {
	BuildDefinition struct {
		BuildType            string               `json:"buildType"`
		ExternalParameters   map[string]any       `json:"externalParameters"`
		InternalParameters   map[string]any       `json:"internalParameters,omitempty"`
		ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID      string            `json:"id"`
			Version map[string]string `json:"version,omitempty"`
		} `json:"builder"`
	} `json:"runDetails"`
}

// ResourceDescriptor is one input of the build.
type ResourceDescriptor struct {
	Name   string            `json:"name,omitempty"`
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

// Provenance is the SLSA v1 statement of an image: its subject the image's digest, its
// external parameters the content tag and the build settings among its inputs (service,
// builder, platform, tags, go.mod's directives), its resolved dependencies the commit that last
// changed the inputs and every input file and module with its digest, and the Go release.
func Provenance(b Build, repository string, d v1.Hash, goVersion string) Statement {
	st := Statement{Type: inTotoStatementV1, PredicateType: SLSAProvenanceV1,
		Subject: []Subject{{Name: repository, Digest: map[string]string{d.Algorithm: d.Hex}}}}
	p := &st.Predicate
	p.BuildDefinition.BuildType = BuildType
	ext := map[string]any{"contentTag": b.Tag, "service": b.Inputs.Service}
	var directives []string
	for _, in := range b.Inputs.Inputs {
		switch in.Kind {
		case inputs.KindBuild:
			ext[in.Name] = in.Digest
		case inputs.KindGo:
			directives = append(directives, in.Name)
		}
	}
	if directives != nil {
		ext["goMod"] = directives
	}
	if b.Revision.Dirty {
		ext["workTreeDiffersFromRevision"] = true // the files' digests below are what was built
	}
	p.BuildDefinition.ExternalParameters = ext
	p.BuildDefinition.InternalParameters = map[string]any{"goVersion": goVersion}
	deps := []ResourceDescriptor{}
	if b.Revision.Commit != "" {
		deps = append(deps, ResourceDescriptor{Name: "revision", URI: sourceURI + "@" + b.Revision.Commit,
			Digest: map[string]string{"gitCommit": b.Revision.Commit}})
	}
	for _, in := range b.Inputs.Inputs {
		switch in.Kind {
		case inputs.KindFile:
			deps = append(deps, ResourceDescriptor{Name: in.Name, URI: sourceURI + "#" + in.Name,
				Digest: map[string]string{"sha256": in.Digest}})
		case inputs.KindModule:
			path, version, _ := strings.Cut(in.Name, "@")
			r := ResourceDescriptor{Name: in.Name, URI: purl(path, version)}
			if h, ok := h1Hex(in.Digest); ok {
				r.Digest = map[string]string{"sha256": h}
			}
			deps = append(deps, r)
		}
	}
	p.BuildDefinition.ResolvedDependencies = deps
	p.RunDetails.Builder.ID = BuilderID
	p.RunDetails.Builder.Version = map[string]string{"go": goVersion}
	return st
}

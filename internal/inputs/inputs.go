// Package inputs says what goes into a service's image, so that the image can be named by it.
//
// A service's inputs are: the files of every package of this module that it links (from
// `go list -deps`, test files left out), each third-party module it links at its version and
// go.sum hash, go.mod's go/toolchain/godebug lines, the Dockerfile, the builder (the builder
// image's name, or the host's Go release) and the build flags. Their digest is the image's
// content tag: the same inputs give the same tag on any machine, and a change anywhere else (a
// README, another service, a toolkit dependency) leaves it as it is.
package inputs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dtap-platform/monorepo/internal/golist"
	"github.com/dtap-platform/monorepo/internal/services"
)

// Kinds of input.
const (
	KindFile   = "file"   // a source file of this repository, by path
	KindModule = "module" // a third-party module, by path@version
	KindGo     = "go"     // a go.mod directive (go, toolchain, godebug)
	KindBuild  = "build"  // a build setting (builder image, flags, service name)
)

// BuildTags are the build tags the Dockerfile compiles with (its GOFLAGS); package file
// lists are read with them. A unit test keeps the two equal.
const BuildTags = "nethttpomithttp2"

// DefaultBuilderImage is the Dockerfile's default GO_IMAGE.
const DefaultBuilderImage = "golang:1.26-bookworm"

// Input is one thing that goes into an image: what it is and a digest of its content.
type Input struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// Manifest is every input of one service's image.
type Manifest struct {
	Service string  `json:"service"`
	Inputs  []Input `json:"inputs"`
}

// Tag is the content tag: "src-" and the first 16 hex digits of the sha256 of the sorted inputs.
func (m Manifest) Tag() string {
	h := sha256.New()
	for _, in := range m.Inputs {
		fmt.Fprintf(h, "%s\t%s\t%s\n", in.Kind, in.Name, in.Digest)
	}
	return "src-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// Files are the repository paths among the inputs (the Dockerfile included).
func (m Manifest) Files() []string {
	var out []string
	for _, in := range m.Inputs {
		if in.Kind == KindFile {
			out = append(out, in.Name)
		}
	}
	return out
}

// Options are the build settings that are inputs too.
type Options struct {
	BuilderImage string // the builder: GO_IMAGE, or "host go1.26.8" for the host's go (image.InputOptions); empty: DefaultBuilderImage
	Platform     string // the engine's os/arch the image is built for, for example linux/amd64
}

// Of computes the inputs of svc's image from the tree at repoRoot.
func Of(ctx context.Context, repoRoot string, svc services.Service, o Options) (Manifest, error) {
	all, err := OfAll(ctx, repoRoot, []services.Service{svc}, o)
	if err != nil {
		return Manifest{}, err
	}
	return all[svc.Name], nil
}

// OfAll computes the inputs of several services with one `go list` for them all and one read
// of go.mod and go.sum: its cost hardly grows with the number of services.
func OfAll(ctx context.Context, repoRoot string, svcs []services.Service, o Options) (map[string]Manifest, error) {
	if o.BuilderImage == "" {
		o.BuilderImage = DefaultBuilderImage
	}
	repoRoot, err := filepath.Abs(repoRoot)
	if err != nil {
		return nil, err
	}
	sums, err := readGoSum(filepath.Join(repoRoot, "go.sum"))
	if err != nil {
		return nil, err
	}
	directives, err := goDirectives(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		return nil, err
	}
	dockerfile, err := fileDigest(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		return nil, fmt.Errorf("the Dockerfile is an input of every image: %w", err)
	}
	out := map[string]Manifest{}
	if len(svcs) == 0 {
		return out, nil
	}
	var roots []string
	for _, svc := range svcs {
		roots = append(roots, svc.Package)
	}
	graph, err := listDeps(ctx, repoRoot, roots)
	if err != nil {
		return nil, err
	}
	digests := map[string]string{} // the kit's files are inputs of every service: read them once
	for _, svc := range svcs {
		pkgs, err := graph.closure(svc.Package)
		if err != nil {
			return nil, fmt.Errorf("inputs of %s: %w", svc.Name, err)
		}
		m := Manifest{Service: svc.Name}
		add := func(kind, name, digest string) { m.Inputs = append(m.Inputs, Input{kind, name, digest}) }
		add(KindFile, "Dockerfile", dockerfile)
		add(KindBuild, "service", svc.Name)
		add(KindBuild, "GO_IMAGE", o.BuilderImage)
		if o.Platform != "" {
			add(KindBuild, "platform", o.Platform)
		}
		add(KindBuild, "tags", BuildTags)
		for _, d := range directives {
			add(KindGo, d, "")
		}
		seenMod := map[string]bool{}
		for _, p := range pkgs {
			switch {
			case p.Standard:
				continue // the builder image's Go release, named by GO_IMAGE
			case p.Module == nil:
				return nil, fmt.Errorf("inputs of %s: package %s belongs to no module", svc.Name, p.ImportPath)
			case p.Module.Main || (p.Module.Replace != nil && p.Module.Replace.Version == ""):
				for _, f := range p.sourceFiles() {
					abs := filepath.Join(p.Dir, f)
					rel, err := filepath.Rel(repoRoot, abs)
					if err != nil || strings.HasPrefix(rel, "..") {
						return nil, fmt.Errorf("inputs of %s: %s is outside the repository; content tags cover only this repository's files and versioned modules", svc.Name, abs)
					}
					d, ok := digests[abs]
					if !ok {
						if d, err = fileDigest(abs); err != nil {
							return nil, err
						}
						digests[abs] = d
					}
					add(KindFile, filepath.ToSlash(rel), d)
				}
			default:
				path, version := p.Module.Path, p.Module.Version
				if r := p.Module.Replace; r != nil {
					path, version = r.Path, r.Version
				}
				key := path + "@" + version
				if seenMod[key] {
					continue
				}
				seenMod[key] = true
				sum, ok := sums[path+" "+version]
				if !ok {
					return nil, fmt.Errorf("inputs of %s: go.sum has no hash for %s; run go mod tidy", svc.Name, key)
				}
				add(KindModule, key, sum)
			}
		}
		slices.SortFunc(m.Inputs, func(a, b Input) int {
			return strings.Compare(a.Kind+"\t"+a.Name, b.Kind+"\t"+b.Name)
		})
		m.Inputs = slices.Compact(m.Inputs)
		out[svc.Name] = m
	}
	return out, nil
}

type goPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	Module     *struct {
		Path, Version string
		Main          bool
		Replace       *struct{ Path, Version string }
	}
	GoFiles, CgoFiles, IgnoredGoFiles, IgnoredOtherFiles []string
	CFiles, CXXFiles, HFiles, SFiles, SysoFiles          []string
	EmbedFiles                                           []string
	Deps                                                 []string // every package it imports, transitively
}

// packageGraph is every package that some root imports, by import path.
type packageGraph map[string]*goPackage

// closure is a root package and every package it imports.
func (g packageGraph) closure(root string) ([]*goPackage, error) {
	p, ok := g[root]
	if !ok {
		return nil, fmt.Errorf("go list did not list %s", root)
	}
	out := make([]*goPackage, 1, 1+len(p.Deps))
	out[0] = p
	for _, dep := range p.Deps {
		d, ok := g[dep]
		if !ok {
			return nil, fmt.Errorf("go list did not list %s, a dependency of %s", dep, root)
		}
		out = append(out, d)
	}
	return out, nil
}

// sourceFiles are the package's files that can change the binary: every file of the package
// but its tests, including those excluded by build constraints (conservatively: a change to
// one of them may matter on another platform).
func (p goPackage) sourceFiles() []string {
	var out []string
	for _, list := range [][]string{p.GoFiles, p.CgoFiles, p.IgnoredGoFiles, p.IgnoredOtherFiles,
		p.CFiles, p.CXXFiles, p.HFiles, p.SFiles, p.SysoFiles, p.EmbedFiles} {
		for _, f := range list {
			if !strings.HasSuffix(f, "_test.go") {
				out = append(out, f)
			}
		}
	}
	return out
}

// listDeps runs one go list -deps for the root packages as the Dockerfile builds them (linux,
// no cgo, the build tags): every package any of them imports, each with its own Deps.
func listDeps(ctx context.Context, repoRoot string, roots []string) (packageGraph, error) {
	args := []string{"-deps", "-tags", BuildTags,
		"-json=ImportPath,Dir,Standard,Module,GoFiles,CgoFiles,IgnoredGoFiles,IgnoredOtherFiles,CFiles,CXXFiles,HFiles,SFiles,SysoFiles,EmbedFiles,Deps"}
	out, err := golist.Run(ctx, repoRoot, []string{"CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-mod=readonly"}, append(args, roots...)...)
	if err != nil {
		return nil, err
	}
	g := packageGraph{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		p := &goPackage{}
		if err := dec.Decode(p); err != nil {
			return nil, err
		}
		g[p.ImportPath] = p
	}
	return g, nil
}

// readGoSum maps "path version" to the module's h1: hash (the /go.mod lines are left out:
// a module's go.mod does not change the bytes built from it).
func readGoSum(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil // a module with no dependency has no go.sum
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && !strings.HasSuffix(f[1], "/go.mod") {
			out[f[0]+" "+f[1]] = f[2]
		}
	}
	return out, sc.Err()
}

// goDirectives are go.mod's lines that change how everything is compiled: go, toolchain and
// godebug, in its one-line and block forms.
func goDirectives(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	inGodebug := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if c := strings.Index(line, "//"); c >= 0 {
			line = strings.TrimSpace(line[:c])
		}
		switch {
		case inGodebug && line == ")":
			inGodebug = false
		case inGodebug && line != "":
			out = append(out, "godebug "+line)
		case line == "godebug (":
			inGodebug = true
		case strings.HasPrefix(line, "go "), strings.HasPrefix(line, "toolchain "), strings.HasPrefix(line, "godebug "):
			out = append(out, line)
		}
	}
	return out, nil
}

func fileDigest(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

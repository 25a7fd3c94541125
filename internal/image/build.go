package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dtap-platform/monorepo/internal/golist"
	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/lineprefix"
)

// Spec is one service image to build: its inputs (the build context is exactly those files)
// and the local tag to give it.
type Spec struct {
	Service  string
	Inputs   inputs.Manifest
	Revision inputs.Revision // recorded in the provenance, never in the image's bytes
	Ref      Ref             // local repository:tag; the tag is also the binary's version
}

// Created is every timestamp in the image's bytes (tar entries, config, history): the Unix
// epoch, as ko and SOURCE_DATE_EPOCH=0 give. Only the content tag's inputs may go into the
// bytes, and no time is among them: a commit time changes with a rebase, an amend or a
// cherry-pick that leaves every input as it is. The revision (commit and time) is recorded
// beside the image instead, in its signed provenance (see Provenance) and deploy's output.
func (s Spec) Created() time.Time { return time.Unix(0, 0).UTC() }

// BuildAll builds the images: first the builder's dependency stage, which they all share,
// then the services, several at once (at most one per core). Each output line names its
// service.
func BuildAll(ctx context.Context, repoRoot string, specs []Spec, out io.Writer) error {
	if len(specs) == 0 {
		return nil
	}
	if out == nil {
		out = io.Discard
	}
	out = lineprefix.Locked(out)
	deps, err := ThirdPartyImports(ctx, repoRoot)
	if err != nil {
		return err
	}
	args := buildArgs(deps)
	if err := buildDeps(ctx, repoRoot, args, lineprefix.New(out, "  [deps] ")); err != nil {
		return fmt.Errorf("build the shared dependency stage: %w", err)
	}
	return eachSpec(ctx, specs, func(ctx context.Context, spec Spec) error {
		return build(ctx, repoRoot, spec, args, lineprefix.New(out, "  ["+spec.Service+"] "))
	})
}

// ThirdPartyImports are the packages outside this module and the standard library that the
// services import, sorted: what the Dockerfile's deps stage compiles (its DEPS argument), so
// that a service with a new dependency needs no edit of the Dockerfile.
func ThirdPartyImports(ctx context.Context, repoRoot string) ([]string, error) {
	out, err := golist.Run(ctx, repoRoot, nil, "-f", `{{join .Imports "\n"}}`, "./services/...")
	if err != nil {
		return nil, fmt.Errorf("list what the services import: %w", err)
	}
	var imports []string
	for _, imp := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") && !strings.HasPrefix(imp, module+"/") {
			imports = append(imports, imp)
		}
	}
	slices.Sort(imports)
	return slices.Compact(imports), nil
}

// module is this repository's module path.
const module = "github.com/dtap-platform/monorepo"

// eachSpec runs build for every spec, at most one per core at once; the first failure stops
// the others, and every failure is returned, naming its service.
func eachSpec(ctx context.Context, specs []Spec, build func(context.Context, Spec) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, max(1, runtime.NumCPU()))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, spec := range specs {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return // another build failed
			}
			defer func() { <-sem }()
			if err := build(ctx, spec); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("build %s: %w", spec.Service, err))
				mu.Unlock()
				cancel() // the run fails anyway: stop the others
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// build builds one service's image from the Dockerfile, with a build context of only its
// inputs, sent on stdin.
func build(ctx context.Context, repoRoot string, spec Spec, extra []string, out io.Writer) error {
	if err := ValidateTag(spec.Ref.Tag); err != nil {
		return err
	}
	files := append([]string{"go.mod", "go.sum"}, spec.Inputs.Files()...)
	buildCtx, err := contextTar(repoRoot, files)
	if err != nil {
		return err
	}
	args := []string{"build", "-t", spec.Ref.Repository + ":" + spec.Ref.Tag,
		"--build-arg", "SERVICE=" + spec.Service,
		"--build-arg", "VERSION=" + spec.Ref.Tag}
	args = append(args, extra...)
	return dockerStdin(ctx, out, buildCtx, append(args, "-")...)
}

// buildDeps builds the Dockerfile's deps stage, so that parallel service builds find it cached.
func buildDeps(ctx context.Context, repoRoot string, extra []string, out io.Writer) error {
	buildCtx, err := contextTar(repoRoot, []string{"go.mod", "go.sum"})
	if err != nil {
		return err
	}
	return dockerStdin(ctx, out, buildCtx, append(append([]string{"build", "--target", "deps"}, extra...), "-")...)
}

// buildArgs are the arguments every build of a run shares, so that the deps stage is one layer:
// the builder (GO_IMAGE) and the dependencies the services import.
func buildArgs(deps []string) []string {
	args := []string{"--build-arg", "DEPS=" + strings.Join(deps, " ")}
	if goImage := os.Getenv("GO_IMAGE"); goImage != "" {
		args = append(args, "--build-arg", "GO_IMAGE="+goImage)
	}
	return args
}

// BuilderImage is the builder image the builds use (GO_IMAGE, else the Dockerfile's default).
func BuilderImage() string {
	if goImage := os.Getenv("GO_IMAGE"); goImage != "" {
		return goImage
	}
	return inputs.DefaultBuilderImage
}

// contextTar is a build context of the Dockerfile and files (repository paths), with fixed
// ownership, modes and times, so that it depends on the files' content only.
func contextTar(repoRoot string, files []string) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	for _, f := range append([]string{"Dockerfile"}, files...) {
		if seen[f] {
			continue
		}
		seen[f] = true
		b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(f)))
		if err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
		h := &tar.Header{Name: f, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
}

// dockerStdin runs the docker CLI with stdin, streaming its output.
func dockerStdin(ctx context.Context, output io.Writer, stdin io.Reader, args ...string) error {
	var stderr bytes.Buffer
	cmd := dockerCmd(ctx, args...)
	cmd.Stdin = stdin
	cmd.Stdout = output
	cmd.Stderr = io.MultiWriter(output, &tail{buf: &stderr})
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker %s: %w: %s", args[0], err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

var platform struct {
	once sync.Once
	v    string
}

// InputOptions are the build settings that are inputs of every content tag: the builder and
// the platform the image is built for (an arm64 laptop and an amd64 CI runner never share a
// tag).
//
// With the docker builder (see Builder), the builder is the builder image and the platform the
// engine's; without an engine, the platform is left out. With the host builder, the builder is
// "host" and the host's Go release (HostBuilderImage), so that images of the two builders
// never share a tag, and the platform is the engine's when one answers (the local cluster runs
// in it), else linux and the host's arch. An invalid BUILDER counts as docker here: Builder
// reports it.
func InputOptions(ctx context.Context) inputs.Options {
	b, err := Builder()
	if err != nil {
		b = BuilderDocker
	}
	return InputOptionsFor(ctx, b)
}

// InputOptions are the content-tag inputs of an image built by builder (BuilderHost or
// BuilderDocker).
func InputOptionsFor(ctx context.Context, builder string) inputs.Options {
	if builder == BuilderHost {
		// The host cross-compiles for Linux on its own architecture; no engine is asked.
		return inputs.Options{BuilderImage: HostBuilderImage(), Platform: "linux/" + runtime.GOARCH}
	}
	platform.once.Do(func() {
		if out, err := DockerOutput(ctx, "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"); err == nil {
			platform.v = strings.TrimSpace(out)
		}
	})
	return inputs.Options{BuilderImage: BuilderImage(), Platform: platform.v}
}

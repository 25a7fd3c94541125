package image

// The host builder: the idea of ko, without a Docker engine. A service is a static Go binary
// on an empty base, so its image is that binary in one layer plus a config. The host's own go
// command compiles it (sharing the host's build cache, which is what makes a one-line change
// quick), the image is assembled in memory with go-containerregistry and pushed straight to
// the registry: no build context, no engine, no docker save.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"go/version"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/lineprefix"
	"github.com/dtap-platform/monorepo/internal/procenv"
	"github.com/dtap-platform/monorepo/internal/services"
)

// The builders BUILDER chooses between.
const (
	BuilderHost   = "host"   // the host's go build, the image assembled and pushed in process
	BuilderDocker = "docker" // docker build with the Dockerfile, then docker save and a push
)

// Builder is the image builder to use: BUILDER when set (host or docker), else host when the
// host's go command is at least go.mod's go line (GOTOOLCHAIN=local: it never downloads a
// toolchain), else docker.
func Builder() (string, error) {
	switch b := os.Getenv("BUILDER"); b {
	case BuilderDocker:
		return b, nil
	case BuilderHost:
		g := hostGoOnce()
		if reason := hostGoUnfit(g.version, g.goLine, g.err); reason != "" {
			return "", fmt.Errorf("BUILDER=host, but %s: install a Go toolchain of at least go.mod's go line, or set BUILDER=docker to build in the builder image", reason)
		}
		return b, nil
	case "":
		g := hostGoOnce()
		if hostGoUnfit(g.version, g.goLine, g.err) == "" {
			return BuilderHost, nil
		}
		return BuilderDocker, nil
	default:
		return "", fmt.Errorf("BUILDER=%q is no builder: set BUILDER=host (the host's go build, no Docker engine needed), BUILDER=docker (docker build with the Dockerfile), or unset it to use host when the host's Go is at least go.mod's go line", b)
	}
}

// hostGoUnfit says why the host's go command cannot build the module, "" when it can.
func hostGoUnfit(goVersion, goLine string, err error) string {
	switch {
	case err != nil:
		return fmt.Sprintf("the host's go command does not answer (%v)", err)
	case goLine == "":
		return "go.mod has no go line to compare the host's Go with"
	}
	release, _, _ := strings.Cut(goVersion, " ") // go1.26.8 X:nocoverageredesign: the release is first
	switch {
	case !version.IsValid(release):
		return fmt.Sprintf("the host's Go is %q, not a released version", goVersion)
	case version.Compare(release, "go"+goLine) < 0:
		return fmt.Sprintf("the host's Go is %s, older than go.mod's go %s", goVersion, goLine)
	}
	return ""
}

// HostBuilderImage names the host builder among the content tag's inputs, where the docker
// path has its builder image: "host " and the host's `go env GOVERSION`, for example
// "host go1.26.8". Another Go release compiles other bytes, so it names other images.
func HostBuilderImage() string {
	return BuilderHost + " " + hostGoOnce().version
}

// hostGo is what the host's go command says of itself and of the module around the working
// directory, asked once per process.
var hostGo struct {
	once    sync.Once
	version string // go env GOVERSION, e.g. go1.26.8
	goLine  string // go.mod's go line, e.g. 1.26.0
	err     error
}

type hostGoInfo struct {
	version, goLine string
	err             error
}

// WarmHostGo starts asking the host's go command for its version, which Builder needs: a
// caller that has other work first gets the answer without waiting for it.
func WarmHostGo() {
	switch os.Getenv("BUILDER") {
	case "", BuilderHost:
		go hostGoOnce()
	}
}

func hostGoOnce() hostGoInfo {
	hostGo.once.Do(func() {
		cmd := exec.Command("go", "env", "GOVERSION", "GOMOD")
		cmd.Env = childEnv("GOTOOLCHAIN=local")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			hostGo.err = fmt.Errorf("go env GOVERSION: %w: %s", err, strings.TrimSpace(stderr.String()))
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		hostGo.version = strings.TrimSpace(lines[0])
		if len(lines) > 1 {
			if gomod := strings.TrimSpace(lines[1]); gomod != "" && gomod != os.DevNull {
				hostGo.goLine = goLineOf(gomod)
			}
		}
	})
	return hostGoInfo{hostGo.version, hostGo.goLine, hostGo.err}
}

// goLineOf is the version of go.mod's go directive, "" when there is none.
func goLineOf(gomod string) string {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if c := strings.Index(line, "//"); c >= 0 {
			line = line[:c]
		}
		if f := strings.Fields(line); len(f) == 2 && f[0] == "go" {
			return f[1]
		}
	}
	return ""
}

// childEnv is the environment of the go command: the toolkit's, less SECRET_* (procenv) and
// KUBE_* (nothing a compiler needs), plus extra, which wins over what was there.
func childEnv(extra ...string) []string {
	var out []string
	for _, kv := range procenv.Clean() {
		if !strings.HasPrefix(kv, "KUBE_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// imageSource is the image's org.opencontainers.image.source label (the Dockerfile's SOURCE).
const imageSource = "https://github.com/dtap-platform/monorepo"

const kitPackage = "github.com/dtap-platform/monorepo/services/kit"

// ldflags are the Dockerfile's: no symbol table or DWARF, and the kit's version stamped in:
// the content tag. Neither the commit nor a build time is stamped: they are no inputs of the
// tag, so they would give one tag several digests (the kit reports them as "unknown"; the
// commit is in the image's provenance).
func ldflags(spec Spec) string {
	return "-s -w -X " + kitPackage + ".version=" + spec.Ref.Tag
}

// platformOf is the os, arch and variant the spec's content tag was computed for (its
// "platform" input), else linux and the host's arch.
func platformOf(spec Spec) (v1.Platform, error) {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	for _, in := range spec.Inputs.Inputs {
		if in.Kind == inputs.KindBuild && in.Name == "platform" && in.Digest != "" {
			parts := strings.Split(in.Digest, "/")
			if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
				return p, fmt.Errorf("platform %q is not os/arch[/variant]", in.Digest)
			}
			p.OS, p.Architecture = parts[0], parts[1]
			if len(parts) == 3 {
				p.Variant = parts[2]
			}
		}
	}
	if p.OS != "linux" {
		return p, fmt.Errorf("the host builder builds linux images, not %s ones: set BUILDER=docker", p.OS)
	}
	return p, nil
}

// goEnv is the go command's environment for a platform: a static linux binary, with the
// host's toolchain only, and none of the user's build settings that the content tag does not
// name: GOFLAGS (set to -mod=readonly, the default here and the Dockerfile's, since an empty
// value would let `go env -w GOFLAGS=...` apply), a go.work, a GOEXPERIMENT from the shell, a
// microarchitecture level (the golang image's defaults, v1 and v8.0).
func goEnv(p v1.Platform) ([]string, v1.Platform) {
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + p.Architecture, "GOTOOLCHAIN=local",
		"GOFLAGS=-mod=readonly", "GOWORK=off", "GOEXPERIMENT=", "GOAMD64=v1", "GOARM64=v8.0"}
	if p.Architecture == "arm" {
		level := strings.TrimPrefix(p.Variant, "v")
		if level == "" {
			level = "7" // the go command's default when cross-compiling
		}
		env = append(env, "GOARM="+level)
		p.Variant = "v" + level
	}
	return env, p
}

// BuildAndPush builds spec's image with the host's go command and pushes it to
// repository:spec.Ref.Tag, returning its digest. The spec's content tag must have been
// computed for the host builder (InputOptions with BUILDER=host), so that images of the two
// builders never share a tag. The same binary gives the same digest.
func BuildAndPush(ctx context.Context, repoRoot string, spec Spec, repository string, out io.Writer) (digest string, err error) {
	start := time.Now()
	if out == nil {
		out = io.Discard
	}
	if err := services.ValidateName(spec.Service); err != nil {
		return "", err
	}
	if err := ValidateTag(spec.Ref.Tag); err != nil {
		return "", err
	}
	if got, want := builderInput(spec.Inputs), HostBuilderImage(); got != want {
		return "", fmt.Errorf("the content tag %s of %s was computed for the builder %q, not for this host's %q: compute it with image.InputOptions under BUILDER=host", spec.Ref.Tag, spec.Service, got, want)
	}
	ref, err := name.NewTag(repository+":"+spec.Ref.Tag, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", repository+":"+spec.Ref.Tag, err)
	}
	platform, err := platformOf(spec)
	if err != nil {
		return "", err
	}

	binary, platform, err := goBuild(ctx, repoRoot, spec, platform)
	if err != nil {
		return "", err
	}
	built := time.Now()
	img, err := hostImage(spec, binary, platform)
	if err != nil {
		return "", err
	}
	d, err := img.Digest() // computes the layer's and config's digests before the push
	if err != nil {
		return "", err
	}
	assembled := time.Now()
	if err := remote.Write(ref, img, remoteOptions(ctx)...); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	done := time.Now()
	fmt.Fprintf(out, "  %s built on the host in %s (go build %s, image %s, push %s)\n", spec.Service,
		seconds(done.Sub(start)), seconds(built.Sub(start)), seconds(assembled.Sub(built)), seconds(done.Sub(assembled)))
	return d.String(), nil
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// builderInput is the builder a manifest was computed for.
func builderInput(m inputs.Manifest) string {
	for _, in := range m.Inputs {
		if in.Kind == inputs.KindBuild && in.Name == "GO_IMAGE" {
			return in.Digest
		}
	}
	return ""
}

// goBuild compiles the service as the Dockerfile does, into a temporary directory, and returns
// the binary's bytes and the platform it was built for (with GOARM's variant).
func goBuild(ctx context.Context, repoRoot string, spec Spec, p v1.Platform) ([]byte, v1.Platform, error) {
	dir, err := os.MkdirTemp("", "hostbuild-"+spec.Service+"-*")
	if err != nil {
		return nil, p, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "app")
	env, p := goEnv(p)
	pkg := "./" + path.Join(services.Dir, spec.Service)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-tags="+inputs.BuildTags,
		"-ldflags", ldflags(spec), "-o", bin, pkg)
	cmd.Dir = repoRoot
	cmd.Env = childEnv(env...)
	var output bytes.Buffer
	w := &tail{buf: &output} // one writer: stdout and stderr are copied by one goroutine
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return nil, p, fmt.Errorf("go build %s: %w: %s", pkg, err, strings.TrimSpace(output.String()))
	}
	b, err := os.ReadFile(bin)
	return b, p, err
}

// hostImage is the image of one binary, as the Dockerfile's final stage makes it: /app in one
// layer, run as 65532:65532, port 8080, the OCI labels. Every byte follows from the binary
// and the spec's inputs: tar times are the epoch (Spec.Created), owners 0:0 without names, the gzip
// header carries no name or time.
//
// The manifest, config and layer are OCI media types (ko's default): the open standard, which
// every registry and runtime the toolkit targets reads (distribution, containerd in kind,
// cloud registries), while Docker's schema 2 is a vendor format kept for older engines. The
// docker path pushes what `docker save` gives (Docker schema 2); the two never share a tag.
func hostImage(spec Spec, binary []byte, p v1.Platform) (v1.Image, error) {
	created := spec.Created().Truncate(time.Second)
	var layerTar bytes.Buffer
	tw := tar.NewWriter(&layerTar)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "app", Mode: 0o755, Size: int64(len(binary)),
		ModTime: created, Format: tar.FormatUSTAR}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(binary); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// Compressed once, here: the layer's digest and its upload read the same bytes.
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(layerTar.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	compressed := gz.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}

	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer, History: v1.History{
		Created:   v1.Time{Time: created},
		CreatedBy: "go build -trimpath -tags=" + inputs.BuildTags + " ./" + path.Join(services.Dir, spec.Service) + " (the host builder, " + HostBuilderImage() + ")",
		Comment:   "the service's binary as /app",
	}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: created}
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Config = v1.Config{
		Entrypoint:   []string{"/app"},
		User:         "65532:65532",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		Labels:       labels(spec),
	}
	return mutate.ConfigFile(img, cfg)
}

// labels are the image's OCI labels, those the Dockerfile's LABEL gives: each follows from
// the content tag's inputs (no revision or created label: see ldflags).
func labels(spec Spec) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":    spec.Service,
		"org.opencontainers.image.source":   imageSource,
		"org.opencontainers.image.version":  spec.Ref.Tag,
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
}

// BuildAndPushAll builds and pushes several images with the host builder, at most one per core
// at once (parallel go commands share the build cache, which makes that the fastest way), and
// returns each service's digest. The first failure stops the others. Each output line names
// its service.
func BuildAndPushAll(ctx context.Context, repoRoot string, specs []Spec, repository func(service string) string, out io.Writer) (map[string]string, error) {
	if out == nil {
		out = io.Discard
	}
	out = lineprefix.Locked(out)
	var (
		mu      sync.Mutex
		digests = map[string]string{}
	)
	err := eachSpec(ctx, specs, func(ctx context.Context, spec Spec) error {
		d, err := BuildAndPush(ctx, repoRoot, spec, repository(spec.Service), out)
		if err == nil {
			mu.Lock()
			digests[spec.Service] = d
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return digests, nil
}

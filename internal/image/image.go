// Package image builds, tags and publishes the service images with the Docker CLI, so that
// whatever engine and credentials the user's docker uses (DOCKER_HOST, contexts, credential
// helpers) apply unchanged.
package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Ref is an image reference: repository (with registry host), tag and, once pushed, digest.
type Ref struct {
	Repository string
	Tag        string
	Digest     string
}

// String is the reference docker and Kubernetes understand: repo:tag or repo:tag@digest.
func (r Ref) String() string {
	s := r.Repository + ":" + r.Tag
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// The grammar of docker tags and repository paths (distribution/reference).
var (
	tagPattern  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	repoPattern = regexp.MustCompile(`^(([a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+|__[a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+|__[a-z0-9]+)*)*$`)
)

// ValidateTag explains what is wrong with an image tag.
func ValidateTag(tag string) error {
	if !tagPattern.MatchString(tag) {
		return fmt.Errorf("image tag %q is invalid: use up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", tag)
	}
	return nil
}

// ValidateRepository explains what is wrong with an image repository (registry/path).
func ValidateRepository(repo string) error {
	if !repoPattern.MatchString(repo) {
		return fmt.Errorf("image repository %q is invalid: use lowercase path components separated by '/', optionally after a registry host[:port]", repo)
	}
	return nil
}

// GitTag is the default tag: the short commit hash, plus "-dirty" when the work tree has
// uncommitted changes, so an image never claims a commit it was not built from.
func GitTag(ctx context.Context, dir string) (string, error) {
	sha, err := git(ctx, dir, "rev-parse", "--short=12", "HEAD")
	if err != nil {
		return "", fmt.Errorf("default image tag from git: %w (set IMAGE_TAG to choose one)", err)
	}
	status, err := git(ctx, dir, "status", "--porcelain", "--untracked-files=normal")
	if err != nil {
		return "", err
	}
	if status != "" {
		sha += "-dirty"
	}
	return sha, nil
}

// Revision is the full commit hash of dir's HEAD, or "unknown".
func Revision(ctx context.Context, dir string) string {
	if sha, err := git(ctx, dir, "rev-parse", "HEAD"); err == nil {
		return sha
	}
	return "unknown"
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// created is the image's creation time: the commit time (as SOURCE_DATE_EPOCH would be), so
// that building the same source again reuses every cached layer and gives the same image and
// digest, and a no-change deploy changes nothing. Without git, the current time.
func created(ctx context.Context, dir string) string {
	if t, err := git(ctx, dir, "log", "-1", "--format=%cI"); err == nil {
		if ct, err := time.Parse(time.RFC3339, t); err == nil {
			return ct.UTC().Format(time.RFC3339)
		}
	}
	return time.Now().UTC().Format(time.RFC3339)
}

// BuildOptions describe one image build from the repository's Dockerfile.
type BuildOptions struct {
	Dir      string // build context: the repository root
	Service  string // services/<Service> is built
	Ref      Ref
	Version  string
	Revision string
	Output   io.Writer // build progress; nil discards it
}

// Build runs docker build with the OCI label arguments.
func Build(ctx context.Context, o BuildOptions) error {
	if err := ValidateTag(o.Ref.Tag); err != nil {
		return err
	}
	args := []string{"build", "-t", o.Ref.Repository + ":" + o.Ref.Tag,
		"--build-arg", "SERVICE=" + o.Service,
		"--build-arg", "VERSION=" + o.Version,
		"--build-arg", "REVISION=" + o.Revision,
		"--build-arg", "CREATED=" + created(ctx, o.Dir),
		o.Dir}
	if goImage := os.Getenv("GO_IMAGE"); goImage != "" {
		args = append(args[:len(args)-1], "--build-arg", "GO_IMAGE="+goImage, o.Dir)
	}
	return Docker(ctx, o.Output, args...)
}

// Push pushes ref and returns its registry digest ("sha256:...").
func Push(ctx context.Context, ref Ref, output io.Writer) (string, error) {
	name := ref.Repository + ":" + ref.Tag
	if err := Docker(ctx, output, "push", name); err != nil {
		return "", err
	}
	digest, err := RegistryDigest(ctx, ref)
	if err != nil {
		return "", err
	}
	if digest == "" {
		return "", fmt.Errorf("pushed %s but docker reports no digest for %s", name, ref.Repository)
	}
	return digest, nil
}

// RegistryDigest is the digest the local image repo:tag has in its registry, once pushed, or ""
// when it was not pushed there.
func RegistryDigest(ctx context.Context, ref Ref) (string, error) {
	digests, err := DockerOutput(ctx, "image", "inspect", "--format", "{{join .RepoDigests \"\\n\"}}", ref.Repository+":"+ref.Tag)
	if err != nil {
		return "", err
	}
	for _, d := range strings.Split(digests, "\n") {
		if repo, digest, ok := strings.Cut(d, "@"); ok && repo == ref.Repository {
			return digest, nil
		}
	}
	return "", nil
}

// Size is the image's size in bytes.
func Size(ctx context.Context, ref Ref) (int64, error) {
	out, err := DockerOutput(ctx, "image", "inspect", "--format", "{{.Size}}", ref.Repository+":"+ref.Tag)
	if err != nil {
		return 0, err
	}
	var n int64
	_, err = fmt.Sscan(out, &n)
	return n, err
}

// ErrNoDocker means no Docker engine answers.
var ErrNoDocker = errors.New("no Docker engine answers: start one (for example `dockerd &`, or Docker Desktop) or set DOCKER_HOST")

// Ping checks that the Docker CLI is installed and an engine answers.
func Ping(ctx context.Context) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("the docker CLI is not on PATH: install Docker: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := DockerOutput(ctx, "version", "--format", "{{.Server.Version}}"); err != nil {
		return fmt.Errorf("%w (%v)", ErrNoDocker, err)
	}
	return nil
}

// Docker runs the docker CLI, streaming its output. Where the CLI has no buildx plugin,
// builds use the classic builder, which every engine has.
func Docker(ctx context.Context, output io.Writer, args ...string) error {
	if output == nil {
		output = io.Discard
	}
	var stderr bytes.Buffer
	cmd := dockerCmd(ctx, args...)
	cmd.Stdout = output
	cmd.Stderr = io.MultiWriter(output, &tail{buf: &stderr})
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// DockerOutput runs the docker CLI and returns its trimmed stdout.
func DockerOutput(ctx context.Context, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := dockerCmd(ctx, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

func dockerCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = os.Environ()
	if len(args) > 0 && args[0] == "build" && os.Getenv("DOCKER_BUILDKIT") == "" && !hasBuildx() {
		cmd.Env = append(cmd.Env, "DOCKER_BUILDKIT=0")
	}
	return cmd
}

func hasBuildx() bool {
	return exec.Command("docker", "buildx", "version").Run() == nil
}

// tail keeps the last 2 KiB written to it, for error messages.
type tail struct{ buf *bytes.Buffer }

func (t *tail) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - 2048; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

// Package image builds the services' images with the Docker CLI, so that whatever engine the
// user's docker uses (DOCKER_HOST, contexts) applies unchanged, and publishes them to a
// registry with reproducible bytes: the same inputs give the same digest on any machine.
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

	"github.com/dtap-platform/monorepo/internal/procenv"
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
	cmd.Env = procenv.Clean()
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

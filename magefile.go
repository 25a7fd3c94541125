//go:build mage

// The project's targets. Each is a thin call into internal/; `mage -l` lists them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"

	"github.com/dtap-platform/monorepo/internal/bench"
	"github.com/dtap-platform/monorepo/internal/cluster"
	"github.com/dtap-platform/monorepo/internal/deploy"
	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/tf"
)

// service is the service that image and deploy targets build; the toolkit takes it as a
// parameter, so a second service under services/ is one variable away.
var service = envOr("SERVICE", "api")

// Aliases keep `mage test` as the unit tests.
var Aliases = map[string]any{
	"test": Test.Unit,
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Build compiles every package and writes the service binary to bin/.
func Build(ctx context.Context) error {
	if err := sh.RunV("go", "build", "./..."); err != nil {
		return err
	}
	return sh.RunWithV(map[string]string{"CGO_ENABLED": "0"}, "go", "build", "-trimpath",
		"-o", "bin/"+service, "./services/"+service)
}

// Lint checks gofmt, go vet (integration tests included), terraform fmt and the chart of every environment.
func Lint(ctx context.Context) error {
	out, err := sh.Output("gofmt", "-l", ".")
	if err != nil {
		return err
	}
	if out != "" {
		return fmt.Errorf("gofmt: these files need formatting (run gofmt -w):\n%s", out)
	}
	if err := sh.RunV("go", "vet", "-tags", "integration", "./..."); err != nil {
		return err
	}
	if err := terraformFmt(ctx); err != nil {
		return err
	}
	return Chart{}.Lint(ctx)
}

// terraformFmt checks that both Terraform modules are formatted.
func terraformFmt(ctx context.Context) error {
	tfPath, err := exec.LookPath("terraform")
	if err != nil {
		fmt.Println("lint: terraform is not on PATH; terraform fmt skipped (install Terraform to check the modules)")
		return nil
	}
	for _, dir := range []string{"terraform", "modules/helm-release"} {
		r, err := tf.New(dir, tfPath, os.Stdout, "")
		if err != nil {
			return err
		}
		files, err := r.FormatCheck(ctx)
		if err != nil {
			return err
		}
		if len(files) > 0 {
			return fmt.Errorf("terraform fmt: %s need formatting (run terraform fmt -recursive %s)", strings.Join(files, ", "), dir)
		}
	}
	return nil
}

// Bench runs the load benchmark: the service's GET /config against a bare net/http handler.
func Bench(ctx context.Context) error {
	_, err := bench.Run(ctx, bench.Options{Rounds: 3, Round: 5 * time.Second, Workers: 16}, os.Stdout)
	return err
}

// Test groups the test targets.
type Test mg.Namespace

// Unit runs the unit tests (go test ./...), with the race detector.
func (Test) Unit(ctx context.Context) error {
	return sh.RunV("go", "test", "-race", "-count=1", "./...")
}

// Integration runs the container and cluster tests against the real image (needs Docker).
func (Test) Integration(ctx context.Context) error {
	if err := image.Ping(ctx); err != nil {
		return err
	}
	ref, err := buildImage(ctx)
	if err != nil {
		return err
	}
	env := map[string]string{"API_IMAGE": ref.String()}
	for k, v := range testcontainersEnv(ctx) {
		env[k] = v
	}
	return sh.RunWithV(env, "go", "test", "-tags", "integration", "-count=1", "-v", "-timeout", "60m", "./test/...")
}

// All runs lint, the unit tests and the integration tests: the README's test command.
func (Test) All(ctx context.Context) error {
	mg.SerialCtxDeps(ctx, Lint, Test.Unit, Test.Integration)
	return nil
}

// Image groups the image targets.
type Image mg.Namespace

// Build builds the service image from the Dockerfile, tagged with the short git sha (+ -dirty).
func (Image) Build(ctx context.Context) error {
	ref, err := buildImage(ctx)
	if err != nil {
		return err
	}
	size, err := image.Size(ctx, ref)
	if err != nil {
		return err
	}
	fmt.Printf("built %s (%.2f MB)\n", ref, float64(size)/1e6)
	return nil
}

func buildImage(ctx context.Context) (image.Ref, error) {
	tag := os.Getenv("IMAGE_TAG")
	if tag == "" {
		var err error
		if tag, err = image.GitTag(ctx, "."); err != nil {
			return image.Ref{}, err
		}
	}
	ref := image.Ref{Repository: envOr("IMAGE_NAME", service), Tag: tag}
	if err := image.ValidateRepository(ref.Repository); err != nil {
		return ref, err
	}
	fmt.Printf("building %s\n", ref)
	return ref, image.Build(ctx, image.BuildOptions{
		Dir: ".", Service: service, Ref: ref, Version: tag, Revision: image.Revision(ctx, "."), Output: os.Stdout,
	})
}

// testcontainersEnv adapts testcontainers to the engine: published ports are reached on
// loopback, and where the Ryuk reaper image cannot be had (no registry), Ryuk is disabled and
// the tests clean up after themselves with t.Cleanup.
func testcontainersEnv(ctx context.Context) map[string]string {
	env := map[string]string{}
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" && !strings.HasPrefix(os.Getenv("DOCKER_HOST"), "tcp://") {
		env["TESTCONTAINERS_HOST_OVERRIDE"] = "127.0.0.1"
	}
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		if _, err := image.DockerOutput(ctx, "image", "inspect", ryukImage); err != nil {
			fmt.Printf("note: %s is not available locally, so Ryuk is disabled; the tests remove their containers with t.Cleanup\n", ryukImage)
			env["TESTCONTAINERS_RYUK_DISABLED"] = "true"
		}
	}
	return env
}

// ryukImage is the reaper image testcontainers-go v0.45 pulls.
const ryukImage = "testcontainers/ryuk:0.14.0"

// Kind groups the local cluster targets.
type Kind mg.Namespace

// Up creates or reuses the local kind cluster and its registry, and waits until it is Ready.
func (Kind) Up(ctx context.Context) error {
	o, err := cluster.OptionsFromEnv(".")
	if err != nil {
		return err
	}
	start := time.Now()
	t, err := cluster.Up(ctx, o)
	if err != nil {
		return err
	}
	verb := "reused"
	if t.Created {
		verb = fmt.Sprintf("created in %s", t.Create.Round(time.Second))
	}
	fmt.Printf("cluster %q %s, ready after %s more; %s in all\n  kubeconfig: %s\n  registry:   %s (push images as %s/<name>:<tag>)\n",
		o.Name, verb, t.Ready.Round(time.Second), time.Since(start).Round(time.Second), o.Kubeconfig, o.Registry(), o.Registry())
	return nil
}

// Down deletes the local kind cluster, its registry and its kubeconfig.
func (Kind) Down(ctx context.Context) error {
	o, err := cluster.OptionsFromEnv(".")
	if err != nil {
		return err
	}
	return cluster.Down(ctx, o)
}

// Deploy builds and pushes the image, then installs or upgrades the release in env (dev, test, staging, prod) with Terraform.
func Deploy(ctx context.Context, env string) error {
	s, err := deploy.Resolve(ctx, ".", env, os.Getenv, os.Environ())
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := deploy.Deploy(ctx, s, os.Stdout)
	if err != nil {
		return err
	}
	change := "applied"
	if !res.Changed {
		change = "no changes"
	}
	fmt.Printf("\ndeployed %s to %s (%s) in %s\n", service, env, change, time.Since(start).Round(100*time.Millisecond))
	fmt.Printf("  url:        %s\n  image:      %s\n  namespace:  %s\n  revision:   %s\n  /config:    environment=%v release=%v version=%v\n",
		res.URL, res.Image, res.Namespace, res.Revision, res.Config["environment"], res.Config["release"], res.Config["version"])
	for _, st := range res.Steps {
		fmt.Printf("  %-48s %8s\n", st.Name, st.Took.Round(100*time.Millisecond))
	}
	return nil
}

// Plan shows what `deploy env` would change in the cluster, and changes nothing.
func Plan(ctx context.Context, env string) error {
	s, err := deploy.Resolve(ctx, ".", env, os.Getenv, os.Environ())
	if err != nil {
		return err
	}
	changed, err := deploy.Plan(ctx, s, os.Stdout)
	if err != nil {
		return err
	}
	if changed {
		fmt.Printf("\n%s: the plan above would change the release; nothing was changed\n", env)
	} else {
		fmt.Printf("\n%s: no changes; the release matches the source\n", env)
	}
	return nil
}

// Destroy removes the release of env and its namespace (prod needs CONFIRM_PROD=yes).
func Destroy(ctx context.Context, env string) error {
	s, err := deploy.Resolve(ctx, ".", env, os.Getenv, os.Environ())
	if err != nil {
		return err
	}
	return deploy.Destroy(ctx, s, os.Stdout)
}

//go:build mage

// The project's targets. Each is a thin call into internal/; `mage -l` lists them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"

	"github.com/dtap-platform/monorepo/internal/bench"
	"github.com/dtap-platform/monorepo/internal/cluster"
	"github.com/dtap-platform/monorepo/internal/deploy"
	"github.com/dtap-platform/monorepo/internal/deploybench"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/interrupt"
	"github.com/dtap-platform/monorepo/internal/planfile"
	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/internal/tf"
	"github.com/dtap-platform/monorepo/internal/workflows"
)

// Aliases keep `mage test` as the unit tests.
// A target is a short-lived process whose work (fifty services' values merged and checked,
// their states parsed) allocates much and keeps little: collecting a quarter as often saves a
// no-change deploy of fifty services about 20 ms of its 150. GOGC, when set, still decides.
func init() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

var Aliases = map[string]any{
	"test": Test.Unit,
}

// Build compiles every package and writes each service's binary to bin/<service>.
func Build(ctx context.Context) error {
	if err := sh.RunV("go", "build", "./..."); err != nil {
		return err
	}
	svcs, err := services.Discover(ctx, ".")
	if err != nil {
		return err
	}
	for _, s := range svcs {
		if err := sh.RunWithV(map[string]string{"CGO_ENABLED": "0"}, "go", "build", "-trimpath", "-o", "bin/"+s.Name, "./"+s.Dir); err != nil {
			return err
		}
	}
	return nil
}

// Services lists the services of the monorepo: every services/<name>/ with a main package.
func Services(ctx context.Context) error {
	svcs, err := services.Discover(ctx, ".")
	if err != nil {
		return err
	}
	for _, s := range svcs {
		fmt.Printf("%-12s %-20s deploy description: %s\n", s.Name, s.Dir, strings.Join(s.ValuesFiles(".", "<env>"), ", "))
	}
	return nil
}

// Affected lists the services a change affects, and why (-base=<commit>; default: on main the commits not pushed yet, else HEAD~1; on a branch its merge-base with main; -json for CI).
func Affected(ctx context.Context, base *string, json *bool) error {
	b := ""
	if base != nil {
		b = *base
	}
	what := ""
	if b == "" {
		var err error
		if b, what, err = inputs.DefaultBase(ctx, "."); err != nil {
			return err
		}
	}
	r, err := inputs.Affected(ctx, ".", b, image.InputOptions(ctx))
	if err != nil {
		return err
	}
	r.BaseIs = what
	if json != nil && *json {
		return r.WriteJSON(os.Stdout)
	}
	fmt.Print(r.String())
	return nil
}

// Lint checks gofmt, go vet (integration tests included), terraform fmt, the GitHub workflows (actionlint) and the chart for every environment and service.
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
	if err := workflows.Lint("."); err != nil {
		return fmt.Errorf("actionlint found problems in %s:\n%w", workflows.Dir, err)
	}
	fmt.Printf("actionlint: the workflows in %s are clean\n", workflows.Dir)
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
		r, err := tf.New(tf.Options{Dir: dir, ExecPath: tfPath})
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

// Bench runs the load benchmark: a service's GET /config against a bare net/http handler (BENCH_CONNECTIONS, default 16).
//
// It prints req/s, p50 and p99 of each handler and their throughput ratio, the median of 3
// alternating rounds of 5s. BENCH_CONNECTIONS=64 sets the number of connections.
func Bench(ctx context.Context) error {
	conns, err := bench.Connections(os.Getenv(bench.EnvConnections))
	if err != nil {
		return err
	}
	_, err = bench.Run(ctx, bench.Options{Rounds: 3, Round: 5 * time.Second, Connections: conns}, os.Stdout)
	return err
}

// Test groups the test targets.
type Test mg.Namespace

// Unit runs the unit tests (go test ./...), with the race detector.
func (Test) Unit(ctx context.Context) error {
	return sh.RunV("go", "test", "-race", "-count=1", "./...")
}

// Integration runs the container and cluster tests against the real images (needs Docker).
func (Test) Integration(ctx context.Context) error {
	if err := image.Ping(ctx); err != nil {
		return err
	}
	refs, err := buildImages(ctx)
	if err != nil {
		return err
	}
	env := map[string]string{}
	for name, ref := range refs {
		env[strings.ToUpper(name)+"_IMAGE"] = ref.Repository + ":" + ref.Tag
	}
	for k, v := range testcontainersEnv(ctx) {
		env[k] = v
	}
	return sh.RunWithV(env, "go", "test", "-tags", "integration", "-count=1", "-v", "-timeout", "75m", "./test/...")
}

// All runs lint, the unit tests and the integration tests: the README's test command.
func (Test) All(ctx context.Context) error {
	mg.SerialCtxDeps(ctx, Lint, Test.Unit, Test.Integration)
	return nil
}

// Image groups the image targets.
type Image mg.Namespace

// Build builds every service's image (SERVICES=a,b for some), tagged with its content tag, in parallel.
func (Image) Build(ctx context.Context) error {
	refs, err := buildImages(ctx)
	if err != nil {
		return err
	}
	for _, name := range sortedKeys(refs) {
		size, err := image.Size(ctx, refs[name])
		if err != nil {
			return err
		}
		fmt.Printf("built %-10s %s:%s (%.2f MB)\n", name, refs[name].Repository, refs[name].Tag, float64(size)/1e6)
	}
	return nil
}

// buildImages builds the local images of the services (SERVICES), tagged <service>:<content tag>,
// with the Dockerfile: the images the container tests run, in the local engine.
func buildImages(ctx context.Context) (map[string]image.Ref, error) {
	all, err := services.Discover(ctx, ".")
	if err != nil {
		return nil, err
	}
	run, err := services.Select(all, os.Getenv("SERVICES"))
	if err != nil {
		return nil, err
	}
	manifests, err := inputs.OfAll(ctx, ".", run, image.InputOptionsFor(ctx, image.BuilderDocker))
	if err != nil {
		return nil, err
	}
	refs := map[string]image.Ref{}
	var specs []image.Spec
	for _, s := range run {
		m := manifests[s.Name]
		ref := image.Ref{Repository: s.Name, Tag: envOr("IMAGE_TAG", m.Tag())}
		refs[s.Name] = ref
		specs = append(specs, image.Spec{Service: s.Name, Inputs: m, Revision: inputs.RevisionOf(ctx, ".", m), Ref: ref})
	}
	fmt.Printf("building %s\n", strings.Join(services.Names(run), ", "))
	return refs, image.BuildAll(ctx, ".", specs, os.Stdout)
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
	if f := t.FrontDoor; f != (cluster.FrontDoor{}) {
		fmt.Printf("  front door: %s and %s (every exposed service, by host name)\n  its CA:     %s (curl --cacert; a browser's trust store)\n",
			f.URL("<service>.<env>.localhost", false), f.URL("<service>.<env>.localhost", true), o.CAFile())
	}
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

// Deploy builds what changed, then installs or upgrades every service (SERVICES=a,b for some) in env: dev, test, staging or prod (-plan=<file>: apply exactly a saved plan, refused if its basis moved).
func Deploy(ctx context.Context, env string, plan *string) error {
	var saved *planfile.File
	if deref(plan) != "" {
		var err error
		if saved, err = planfile.Read(*plan); err != nil {
			return err
		}
	}
	s, err := deploy.Resolve(ctx, ".", env, deploy.ForDeploy, os.Getenv, os.Environ())
	if err != nil {
		return err
	}
	ctx, force, stop := interrupt.Context(ctx, os.Stdout)
	defer stop()
	r := deploy.NewRunner(s, os.Stdout, "deploy "+env)
	r.Force = force
	r.Saved, r.SavedName = saved, deref(plan)
	start := time.Now()
	res, err := deploy.Deploy(ctx, r)
	if res != nil {
		fmt.Print(res.Summary(time.Since(start)))
	}
	return err
}

// Plan shows what `deploy env` would change, per service, and the drift deploy would repair; it changes nothing (-out=<file>: save the plan for deploy -plan).
func Plan(ctx context.Context, env string, out *string) error {
	s, err := deploy.Resolve(ctx, ".", env, deploy.ForPlan, os.Getenv, os.Environ())
	if err != nil {
		return err
	}
	ctx, force, stop := interrupt.Context(ctx, os.Stdout)
	defer stop()
	r := deploy.NewRunner(s, os.Stdout, "plan "+env)
	r.Force = force
	r.PlanOut = deref(out)
	res, err := deploy.Plan(ctx, r)
	if err != nil {
		return err
	}
	fmt.Print(res.Summary(env))
	return nil
}

// Drift lists, per service of env, each object that differs from its release's manifest (field, live -> manifest value, who changed it) or is missing; it changes nothing.
func Drift(ctx context.Context, env string) error {
	s, err := deploy.Resolve(ctx, ".", env, deploy.ForRead, os.Getenv, os.Environ())
	if err != nil {
		return err
	}
	found, names, err := deploy.DriftOf(ctx, deploy.NewRunner(s, io.Discard, "drift "+env))
	if err != nil {
		return err
	}
	for _, name := range names {
		lines := found.Lines(name)
		if len(lines) == 0 {
			fmt.Printf("%-12s no drift: every object matches its release's manifest\n", name)
			continue
		}
		fmt.Printf("%-12s drifted (go run mage.go deploy %s repairs it):\n", name, env)
		for _, l := range lines {
			fmt.Printf("  %s\n", l)
		}
	}
	if len(names) == 0 {
		fmt.Printf("nothing is deployed in %s (namespace %s)\n", env, s.Namespace)
	}
	return nil
}

// Destroy removes an environment (-env=<env>), or, with no argument, every environment this checkout deployed; prod needs CONFIRM_PROD=yes.
func Destroy(ctx context.Context, env *string) error {
	if stray := strayArgs("destroy"); stray != "" {
		return fmt.Errorf("`destroy %s`: mage would run the bare destroy and then the unknown target %q; nothing was done. did you mean: go run mage.go destroy -env=%s", stray, stray, stray)
	}
	if env != nil && *env != "" {
		return destroyEnv(ctx, *env, os.Getenv)
	}
	envs, err := environments.List(environments.ChartDir)
	if err != nil {
		return err
	}
	here, err := deploy.DeployedHere(".", envs)
	if err != nil {
		return err
	}
	if len(here) == 0 {
		fmt.Println("this checkout has deployed no environment (none recorded in .cache/deployed/): nothing to destroy; to destroy one by name: go run mage.go destroy -env=<env>")
		return nil
	}
	var names []string
	for _, d := range here {
		names = append(names, fmt.Sprintf("%s (namespace %s on %s)", d.Env, d.Namespace, d.Target))
	}
	fmt.Printf("destroying the environments this checkout deployed: %s\n", strings.Join(names, ", "))
	// Every environment is validated before any is touched: a refusal of the last one (prod
	// without CONFIRM_PROD, say) must not come after the others are gone.
	var (
		runners []*deploy.Runner
		errs    []error
	)
	for _, d := range here {
		getenv := func(k string) string {
			switch {
			case k == "NAMESPACE" && os.Getenv(k) == "":
				return d.Namespace
			case k == "KUBECONFIG" && os.Getenv(k) == "" && !d.Local:
				return d.Kubeconfig
			case k == "KUBE_CONTEXT" && os.Getenv(k) == "" && !d.Local:
				return d.Context
			case k == "CLUSTER" && os.Getenv(k) == "" && d.Local:
				return deploy.ClusterEmbedded // the record names the embedded cluster
			}
			return os.Getenv(k)
		}
		s, err := deploy.Resolve(ctx, ".", d.Env, deploy.ForDestroy, getenv, os.Environ())
		if err == nil {
			err = d.Matches(s)
		}
		if err == nil {
			r := deploy.NewRunner(s, os.Stdout, "destroy -env="+d.Env)
			_, err = deploy.CheckDestroy(ctx, r)
			runners = append(runners, r)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Env, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("nothing was destroyed:\n%w", errors.Join(errs...))
	}
	for _, r := range runners {
		if err := destroyWith(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.S.Env, err))
		}
	}
	return errors.Join(errs...)
}

// destroyEnv destroys one environment named by the user.
func destroyEnv(ctx context.Context, env string, getenv deploy.Getenv) error {
	s, err := deploy.Resolve(ctx, ".", env, deploy.ForDestroy, getenv, os.Environ())
	if err != nil {
		return err
	}
	return destroyWith(ctx, deploy.NewRunner(s, os.Stdout, "destroy -env="+env))
}

// destroyWith destroys the environment of r; deploy.Destroy checks, before any change, that the
// cluster is the one this checkout recorded deploying it to.
func destroyWith(ctx context.Context, r *deploy.Runner) error {
	s, env := r.S, r.S.Env
	ctx, force, stop := interrupt.Context(ctx, os.Stdout)
	defer stop()
	r.Force = force
	if err := deploy.Destroy(ctx, r); err != nil {
		return err
	}
	fmt.Printf("\ndestroyed %s: no release, secret, route or state of it is left in namespace %s\n", env, s.Namespace)
	return nil
}

// Promote deploys to <to> exactly the image digests that run in <from>, its upstream, without building (-commit=<sha> checks they are that commit's).
//
// <from> must be <to>'s upstream in environments.yaml; -skip="<reason>" promotes from
// another environment all the same, and the reason goes into each release's history.
func Promote(ctx context.Context, from, to string, commit, skip *string) error {
	if from == to {
		return fmt.Errorf("promote %s %s: an environment cannot be promoted to itself; nothing was done. To roll %s back: go run mage.go rollback -env=%s", from, to, to, to)
	}
	if os.Getenv("NAMESPACE") != "" {
		return fmt.Errorf("promote: NAMESPACE=%s would name both %s's and %s's namespace; nothing was done. Unset it: each environment's namespace comes from its target", os.Getenv("NAMESPACE"), from, to)
	}
	src, err := deploy.Resolve(ctx, ".", from, deploy.ForRead, os.Getenv, os.Environ())
	if err != nil {
		return err
	}
	dst, err := deploy.Resolve(ctx, ".", to, deploy.ForRelease, os.Getenv, os.Environ())
	if err != nil {
		return err
	}
	if err := deploy.CheckUpstream(src, dst, deref(skip)); err != nil {
		return err
	}
	ctx, force, stop := interrupt.Context(ctx, os.Stdout)
	defer stop()
	target := deploy.NewRunner(dst, os.Stdout, "promote "+from+" "+to)
	target.Force = force
	start := time.Now()
	res, err := deploy.Promote(ctx, deploy.NewRunner(src, os.Stdout, "promote "+from+" "+to), target, deref(commit), deref(skip))
	if err != nil {
		return err
	}
	fmt.Print(res.Summary(time.Since(start)))
	return nil
}

// Rollback returns an environment (-env=<env>) to its previous revision, secrets included (-revision=N with SERVICES=<one>).
func Rollback(ctx context.Context, env *string, revision *int) error {
	if deref(env) == "" {
		return errors.New("name the environment: go run mage.go rollback -env=<env> [-revision=N]")
	}
	s, err := deploy.Resolve(ctx, ".", *env, deploy.ForRelease, os.Getenv, os.Environ())
	if err != nil {
		return err
	}
	ctx, force, stop := interrupt.Context(ctx, os.Stdout)
	defer stop()
	r := deploy.NewRunner(s, os.Stdout, "rollback -env="+*env)
	r.Force = force
	start := time.Now()
	n := 0
	if revision != nil {
		n = *revision
	}
	res, err := deploy.Rollback(ctx, r, n)
	if err != nil {
		return err
	}
	fmt.Print(res.Summary(time.Since(start)))
	return nil
}

// History lists an environment's revisions (-env=<env>): when, what image, by whom or what, and the result.
func History(ctx context.Context, env *string) error {
	if deref(env) == "" {
		return errors.New("name the environment: go run mage.go history -env=<env>")
	}
	s, err := deploy.Resolve(ctx, ".", *env, deploy.ForRead, os.Getenv, os.Environ())
	if err != nil {
		return err
	}
	rows, err := deploy.History(ctx, deploy.NewRunner(s, io.Discard, "history -env="+*env))
	if err != nil {
		return err
	}
	return deploy.WriteHistory(os.Stdout, rows, os.Getenv("FORMAT") == "json")
}

// Status prints every environment's services as they run, and whether each differs from its upstream; FORMAT=json for scripts.
func Status(ctx context.Context) error {
	envs, err := environments.List(environments.ChartDir)
	if err != nil {
		return err
	}
	var runners []*deploy.Runner
	for _, env := range envs {
		s, err := deploy.Resolve(ctx, ".", env, deploy.ForRead, os.Getenv, os.Environ())
		if err != nil {
			return err
		}
		runners = append(runners, deploy.NewRunner(s, io.Discard, "status"))
	}
	return deploy.WriteStatus(os.Stdout, deploy.Status(ctx, runners), os.Getenv("FORMAT") == "json")
}

// Render prints an environment's manifests, every service's, with images pinned by digest from the registry (-out=<dir>: a file per service; -pins=<dir>: the pinned values for Argo CD).
func Render(ctx context.Context, env string, out, pins *string) error {
	s, err := deploy.Resolve(ctx, ".", env, deploy.ForPlan, func(k string) string {
		if k == "CONFIRM_PROD" {
			return "yes" // rendering changes nothing
		}
		return os.Getenv(k)
	}, os.Environ())
	if err != nil {
		return err
	}
	return deploy.Render(ctx, s, os.Stdout, deref(out), deref(pins))
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Unlock breaks the stale deploy lock of an environment (-env=<env>) that a killed run left; a live lock is refused.
func Unlock(ctx context.Context, env *string) error {
	if env == nil || *env == "" {
		return errors.New("name the environment: go run mage.go unlock -env=<env>")
	}
	s, err := deploy.Resolve(ctx, ".", *env, deploy.ForDestroy, os.Getenv, os.Environ())
	if err != nil {
		return err
	}
	return deploy.Unlock(ctx, deploy.NewRunner(s, os.Stdout, "unlock -env="+*env))
}

// strayArgs returns the first word after the target on the command line that is not an
// option: mage runs the target first and only then rejects the word as an unknown target.
func strayArgs(target string) string {
	for i, a := range os.Args {
		if !strings.EqualFold(a, target) {
			continue
		}
		for _, next := range os.Args[i+1:] {
			if !strings.HasPrefix(next, "-") {
				return next
			}
		}
	}
	return ""
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// BenchDeploy benchmarks deploy at N services on the embedded cluster: first deploy, no-change deploy, one-service change, plan and destroy, each as typed (BENCH_SERVICES=2,50).
//
// For each N (2 to 200) it deploys a throwaway copy of this checkout (uncommitted changes
// included) holding api, status and N-2 copies of api, as PROJECT=bench<N>, each step a
// `go run mage.go ...` of its own, and prints each step's wall-clock time, one column per N.
// BENCH_KEEP=1 keeps the copies and the step logs. BENCH_TEST=1 also deploys every service to
// test, beside dev, and checks that each service of both answers from 127.0.0.1. See
// internal/deploybench.
func BenchDeploy(ctx context.Context) error {
	o, err := deploybench.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	ctx, force, stop := interrupt.Context(ctx, os.Stdout)
	defer stop()
	o.Force = force
	_, err = deploybench.Run(ctx, o)
	return err
}

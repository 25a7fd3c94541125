// Package deploybench measures what a user waits for when deploying N services: each step of a
// deploy's life, run as typed in a terminal (`go run mage.go <target>`, a process of its own),
// timed by the wall clock, on the embedded cluster.
//
// For each N of BENCH_SERVICES (default 2,50) it makes a throwaway git checkout in a temp dir:
// the files `git ls-files` lists, as they are in the working tree, and the new files git does not
// ignore (so uncommitted changes are measured too), committed with a fixed author and date,
// because content tags read git history.
// Beside the repository's own services it generates N-2 more, s01, s02, ... (zero-padded to the
// width needed), each services/api/main.go with its name replaced and api's values.yaml. Every
// service of the copy gets a file naming the run, so its content tag is new to the registry,
// which is shared with every other run and checkout: the first deploy builds and publishes every
// image, as on a fresh registry, while the machine's build caches stay as warm as they are.
//
// In the copy, with PROJECT=bench<N> (so each N has its own namespaces, bench<N>-dev and
// bench<N>-system, on the shared cluster), it runs these steps:
//
//	deploy dev         first deploy: build, publish, install, every service ready
//	deploy dev         again, nothing changed (five times: the median counts)
//	deploy dev         after a one-line commit to one service (s01; api at N=2): one rebuilt and
//	                   rolled (five changes, one after the other: the median counts)
//	plan dev           nothing changed (five times: the median counts)
//	deploy test        with BENCH_TEST=1: every service again, in test, beside dev
//	                   then every exposed service of dev and test must answer its GET /config
//	                   from 127.0.0.1, at the URL its deploy's summary gave, naming its
//	                   environment; then destroy -env=test
//	destroy -env=dev
//
// Each step runs in every N before the next one, and the runs of a repeated step take turns
// (N=2, N=50, N=2, N=50, ...), so that the ratio of two columns compares runs made under the same
// conditions: the cluster's load (every N's services run while the others are measured) and the
// machine's background work, which drift over a run of minutes.
//
// Before the steps, in each N's copy, `go run mage.go kind:up` (`services` when the target is another
// cluster) runs untimed: it compiles the copy's magefile, which a checkout in use has compiled
// already, and makes sure the embedded cluster is up, so that no first deploy pays for either,
// and every N's is measured alike. The steps get the caller's
// environment, with the variables that hold paths made absolute (they run in the copy), and
// TERRAFORM_PATH pointing at the checkout's own installed terraform when there is no other.
//
// Each step's output goes to a log file in the temp dir. A step that fails ends that N's run:
// its log's last lines are printed, destroy -env=dev cleans up, and the other Ns still run. An
// interrupt reaches the running step as Ctrl-C in a terminal would (SIGINT to its process group,
// so a deploy rolls back), then destroy cleans up every N; a second interrupt kills the step at
// once.
// The temp dir is removed at the end unless BENCH_KEEP=1. The outcome is a table, one column per
// N, with the ratio of the largest N's time to the smallest's, and the machine it ran on.
package deploybench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dtap-platform/monorepo/internal/tf"
)

// The variables of `mage benchDeploy`.
const (
	EnvServices     = "BENCH_SERVICES"
	EnvKeep         = "BENCH_KEEP"
	EnvTest         = "BENCH_TEST"
	DefaultServices = "2,50"
	MinServices     = 2 // the repository's own: api and status
	MaxServices     = 200
)

// Options of a benchmark run.
type Options struct {
	Counts []int // the numbers of services, ascending
	Keep   bool  // keep the temp dir (BENCH_KEEP=1)
	// AlsoTest deploys every service to test too, beside dev, and checks that all of both
	// answer from 127.0.0.1 (BENCH_TEST=1).
	AlsoTest bool

	Dir      string    // inside the checkout to measure; "" is the working directory
	Environ  []string  // the steps' environment, before PROJECT; nil is os.Environ()
	Go       string    // the go command; "" is "go"
	TempRoot string    // where the temp dir is made; "" is os.TempDir()
	Out      io.Writer // progress and the table; nil is os.Stdout
	// Force is closed by a second interrupt: the running step is killed at once and nothing
	// more is run.
	Force <-chan struct{}
	// Grace is how long an interrupted step may take to stop after its SIGINT (a deploy rolls
	// back) before it is killed; 0 is 3 minutes.
	Grace time.Duration
}

// FromEnv reads BENCH_SERVICES, BENCH_KEEP and BENCH_TEST, and refuses the deploy settings that would make
// the runs measure something else. It has no side effect.
func FromEnv(getenv func(string) string) (Options, error) {
	var errs []error
	counts, err := ParseCounts(getenv(EnvServices))
	if err != nil {
		errs = append(errs, err)
	}
	keep, err := flag(getenv, EnvKeep, "keep the copies and logs")
	if err != nil {
		errs = append(errs, err)
	}
	alsoTest, err := flag(getenv, EnvTest, "deploy every service to test too and check that dev's and test's all answer")
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range refused {
		if v := getenv(r.name); v != "" {
			errs = append(errs, fmt.Errorf("%s=%s is set: it %s; unset it for the benchmark", r.name, v, r.why))
		}
	}
	return Options{Counts: counts, Keep: keep, AlsoTest: alsoTest}, errors.Join(errs...)
}

// flag reads a yes/no variable; unset is no.
func flag(getenv func(string) string, name, what string) (bool, error) {
	switch v := strings.TrimSpace(getenv(name)); v {
	case "", "0", "false", "no":
		return false, nil
	case "1", "true", "yes":
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q: use %s=1 to %s, or leave it unset", name, v, name, what)
	}
}

// refused are deploy settings that would defeat what the benchmark measures.
var refused = []struct{ name, why string }{
	{"NAMESPACE", "would put every N in the same namespace, while the benchmark gives each N its own through PROJECT=bench<N>"},
	{"STATE_NAMESPACE", "would put every N's state in the same namespace, while the benchmark gives each N its own through PROJECT=bench<N>"},
	{"SERVICES", "would deploy some of the services, while the benchmark deploys all N"},
	{"IMAGE_TAG", "would change the tags the first deploy builds and publishes"},
	{"SKIP_BUILD", "would change what the first deploy builds"},
}

// ParseCounts reads BENCH_SERVICES: a comma list of service counts, each from 2 to 200, no
// count twice; empty is 2,50. The counts come back in ascending order.
func ParseCounts(v string) ([]int, error) {
	if strings.TrimSpace(v) == "" {
		v = DefaultServices
	}
	var counts []int
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		n, err := strconv.Atoi(item)
		if err != nil || n < MinServices || n > MaxServices {
			return nil, fmt.Errorf("%s=%q: %q is not a number of services from %d (the repository's own) to %d; use a comma list, for example %s=%s",
				EnvServices, v, item, MinServices, MaxServices, EnvServices, DefaultServices)
		}
		if slices.Contains(counts, n) {
			return nil, fmt.Errorf("%s=%q: %d appears twice; name each number of services once, for example %s=%s", EnvServices, v, n, EnvServices, DefaultServices)
		}
		counts = append(counts, n)
	}
	slices.Sort(counts)
	return counts, nil
}

// A step is one command of an N's run, as a user types it after `go run mage.go`, or, without
// args, the check that every service answers.
type step struct {
	key      string   // the log file's name
	row      string   // the table's
	progress string   // the progress line's
	args     []string // after `go run mage.go`
	repeated bool     // run Repeats times, the median counts: a run of a second or so varies
}

var steps = []step{
	{"first-deploy", "first deploy dev", "deploy dev (first)", []string{"deploy", "dev"}, false},
	{"no-change-deploy", "no-change deploy dev", "deploy dev (no change)", []string{"deploy", "dev"}, true},
	{"one-service-change", "one-service change to ready", "deploy dev (one-line change to %s)", []string{"deploy", "dev"}, true},
	{"plan", "plan dev (no change)", "plan dev (no change)", []string{"plan", "dev"}, true},
	{"destroy", "destroy -env=dev", "destroy -env=dev", []string{"destroy", "-env=dev"}, false},
}

// testSteps go before destroy -env=dev with BENCH_TEST=1.
var testSteps = []step{
	{"first-deploy-test", "first deploy test (beside dev)", "deploy test (first, beside dev)", []string{"deploy", "test"}, false},
	{"answers", "all of dev and test answer", "every service of dev and test answers through the front door on 127.0.0.1, by host name", nil, false},
	{"destroy-test", "destroy -env=test", "destroy -env=test", []string{"destroy", "-env=test"}, false},
}

// stepsOf are the steps a run takes: testSteps go in before the last, destroy -env=dev.
func stepsOf(o Options) []step {
	if !o.AlsoTest {
		return steps
	}
	return slices.Concat(steps[:len(steps)-1], testSteps, steps[len(steps)-1:])
}

// Repeats is how many times each short step runs; the table gives the median.
const Repeats = 5

// median of a few durations (the middle one; the lower middle of an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// changeStep is the index of the step that follows the one-line change.
const changeStep = 2

// Result is one N's run.
type Result struct {
	N         int
	Times     map[string]time.Duration // by step key: the steps that succeeded
	Failed    string                   // the key of the step that failed, if one did
	Generated []string                 // the generated services
	Changed   string                   // the service the one-line change was made to
	Err       error
}

// Report is the outcome of a benchmark run.
type Report struct {
	Target    string // where the steps deployed
	Cores     int
	GoVersion string
	Results   []Result
	steps     []step
}

// Run benchmarks deploy at each of o.Counts services, printing progress and then the table to
// o.Out. The error joins every N's failure, or is the interrupt's.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	if len(o.Counts) == 0 {
		return nil, fmt.Errorf("deploy benchmark: no number of services; set %s, for example %s=%s", EnvServices, EnvServices, DefaultServices)
	}
	// Everything that can be checked is, before the first side effect.
	root, err := gitOutput(ctx, o.Dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("deploy benchmark: it copies a git checkout, and %s is not in one: %w", o.Dir, err)
	}
	if _, err := template(root); err != nil {
		return nil, fmt.Errorf("deploy benchmark: %w", err)
	}
	cwd, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	goVersion, err := exec.CommandContext(ctx, o.Go, "version").Output()
	if err != nil {
		return nil, fmt.Errorf("deploy benchmark: %s version: %w; the steps run `go run mage.go`, so Go must be on PATH", o.Go, err)
	}
	where, embedded := target(o.Environ)
	rep := &Report{Target: where, Cores: runtime.NumCPU(), GoVersion: strings.TrimSpace(string(goVersion)), steps: stepsOf(o)}

	tmp, err := os.MkdirTemp(o.TempRoot, "deploybench-")
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, root: root, cwd: cwd, tmp: tmp, logs: filepath.Join(tmp, "logs"), embedded: embedded, extraEnv: terraformPath(o.Environ, root)}
	if err := os.Mkdir(b.logs, 0o755); err != nil {
		return nil, errors.Join(err, os.RemoveAll(tmp))
	}
	fmt.Fprintf(o.Out, "deploy benchmark: N=%s services, each in a copy of %s under %s\n", joinInts(o.Counts, ", N="), root, tmp)
	var runs []*nRun
	for _, n := range o.Counts {
		if ctx.Err() != nil || b.forced() {
			break
		}
		runs = append(runs, b.start(ctx, n))
	}
	b.runSteps(ctx, runs)
	for _, r := range runs {
		rep.Results = append(rep.Results, *r.res)
	}
	fmt.Fprintln(o.Out)
	rep.Write(o.Out)

	var errs []error
	for _, r := range rep.Results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("deploy benchmark: %w", context.Cause(ctx)))
	}
	if o.Keep {
		fmt.Fprintf(o.Out, "kept (%s=1): the copies and the logs in %s\n", EnvKeep, tmp)
	} else if err := os.RemoveAll(tmp); err != nil {
		errs = append(errs, fmt.Errorf("deploy benchmark: removing %s: %w", tmp, err))
	}
	return rep, errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.Dir == "" {
		o.Dir = "."
	}
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Grace == 0 {
		o.Grace = 3 * time.Minute
	}
	return o
}

// target names where the steps deploy, for the table's title, and says whether it is the
// embedded cluster: as deploy decides, no KUBECONFIG or KUBE_CONTEXT (a current context in
// ~/.kube/config is not a choice).
func target(environ []string) (string, bool) {
	for _, k := range []string{"KUBECONFIG", "KUBE_CONTEXT"} {
		if v := envValue(environ, k); v != "" {
			return "the cluster of " + k + "=" + v, false
		}
	}
	return "embedded cluster", true
}

// terraformPath points the steps at the terraform the checkout installed, when there is no
// other: each copy would otherwise install its own (a download) in its first deploy.
func terraformPath(environ []string, root string) []string {
	if envValue(environ, "TERRAFORM_PATH") != "" {
		return nil
	}
	if _, err := exec.LookPath("terraform"); err == nil {
		return nil
	}
	p := filepath.Join(root, ".cache", "terraform", tf.Pinned, "terraform")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return []string{"TERRAFORM_PATH=" + p}
	}
	return nil
}

type bench struct {
	o                    Options
	root, cwd, tmp, logs string
	embedded             bool     // the target is the embedded cluster
	extraEnv             []string // for every step
}

func (b *bench) forced() bool {
	select {
	case <-b.o.Force:
		return true
	default:
		return false
	}
}

// nRun is one N's copy and what has run in it.
type nRun struct {
	res          *Result
	project, dir string
	env          []string
	prep         Prepared
	logs         map[string]string // the last log of each step
	deployed     []string          // the environments to destroy when a step fails
	done         bool              // a step failed or was interrupted: nothing more runs in it
}

// start prepares N's copy and runs its untimed warm-up; a failure ends that N's run.
func (b *bench) start(ctx context.Context, n int) *nRun {
	r := &nRun{res: &Result{N: n, Times: map[string]time.Duration{}}, project: fmt.Sprintf("bench%d", n), logs: map[string]string{}}
	r.dir = filepath.Join(b.tmp, r.project)
	began := time.Now()
	prep, err := Prepare(ctx, b.root, r.dir, n, r.project+"-"+strconv.FormatInt(began.UnixNano(), 36))
	if err != nil {
		b.fail(r, "preparing the copy: %v", err)
		return r
	}
	r.prep = prep
	r.res.Generated, r.res.Changed = prep.Generated, prep.Changed
	fmt.Fprintf(b.o.Out, "N=%d: %s: %d files of the checkout, %d services (%d generated), committed, in %s\n",
		n, r.dir, prep.Files, n, len(prep.Generated), seconds(time.Since(began)))

	r.env = append(stepEnv(b.o.Environ, r.project, r.dir, b.cwd), b.extraEnv...)
	// Untimed: the copy's magefile is compiled, and the embedded cluster is up.
	warm, why := "services", "compiles the copy's magefile"
	if b.embedded {
		warm, why = "kind:up", "compiles the copy's magefile, creates or reuses the shared cluster"
	}
	log := filepath.Join(b.logs, r.project+"-0-"+strings.ReplaceAll(warm, ":", "-")+".log")
	fmt.Fprintf(b.o.Out, "N=%d: %s (untimed: %s) ... ", n, warm, why)
	d, err := b.step(ctx, r.dir, r.env, []string{warm}, log)
	if err != nil {
		fmt.Fprintf(b.o.Out, "failed after %s: %v\n", seconds(d), err)
		b.printTail(n, warm, log)
		b.fail(r, "%s failed: %v (its log: %s)", warm, err, log)
		return r
	}
	fmt.Fprintf(b.o.Out, "%s\n", seconds(d))
	return r
}

func (b *bench) fail(r *nRun, format string, a ...any) {
	r.done = true
	r.res.Err = fmt.Errorf("N=%d: "+format, append([]any{r.res.N}, a...)...)
	fmt.Fprintf(b.o.Out, "%v\n", r.res.Err)
}

// runSteps runs each step in every N before the next step, and the runs of a repeated step in
// turn (N=2, N=50, N=2, ...): the two columns of the ratio are measured under the same
// conditions (the cluster's load, the machine's caches and background work), which drift over
// a run of minutes. A failing step ends its N's run after destroy has tried to clean up; the
// other Ns go on.
func (b *bench) runSteps(ctx context.Context, runs []*nRun) {
	for i, s := range stepsOf(b.o) {
		took := map[*nRun][]time.Duration{}
		times := 1
		if s.repeated {
			times = Repeats
		}
		for run := 1; run <= times; run++ {
			for _, r := range runs {
				if r.done {
					continue
				}
				if ctx.Err() != nil { // interrupted between two runs
					b.fail(r, "interrupted before %s", s.row)
					b.cleanup(ctx, r)
					continue
				}
				if d, ok := b.runStep(ctx, r, i, s, run); ok {
					took[r] = append(took[r], d)
				}
			}
		}
		for r, ds := range took {
			if !r.done {
				r.res.Times[s.key] = median(ds)
			}
		}
	}
}

// runStep runs one run of a step in N's copy and says how long it took; a failure is reported,
// cleaned up after, and ends N's run.
func (b *bench) runStep(ctx context.Context, r *nRun, i int, s step, run int) (time.Duration, bool) {
	n := r.res.N
	if s.args != nil && s.args[0] == "deploy" && !slices.Contains(r.deployed, s.args[1]) {
		r.deployed = append(r.deployed, s.args[1])
	}
	label := s.progress
	if i == changeStep {
		label = fmt.Sprintf(s.progress, r.prep.Changed)
		if err := Change(ctx, r.dir, r.prep.Changed, time.Now()); err != nil {
			b.fail(r, "the one-line change to %s: %v", r.prep.Changed, err)
			b.cleanup(ctx, r)
			return 0, false
		}
	}
	log := filepath.Join(b.logs, fmt.Sprintf("%s-%d-%s-%d.log", r.project, i+1, s.key, run))
	r.logs[s.key] = log
	fmt.Fprintf(b.o.Out, "N=%d: %s ... ", n, label)
	var (
		d   time.Duration
		err error
	)
	if s.args == nil {
		d, err = timed(func() error { return allAnswer(ctx, log, r.logs["first-deploy"], r.logs["first-deploy-test"]) })
	} else {
		d, err = b.step(ctx, r.dir, r.env, s.args, log)
	}
	if err == nil {
		fmt.Fprintf(b.o.Out, "%s\n", seconds(d))
		if s.args != nil && s.args[0] == "destroy" {
			r.deployed = slices.DeleteFunc(r.deployed, func(e string) bool { return "-env="+e == s.args[1] })
		}
		return d, true
	}
	r.done = true
	r.res.Failed = s.key
	how := "failed"
	if ctx.Err() != nil {
		how = "interrupted"
	}
	fmt.Fprintf(b.o.Out, "%s after %s: %v\n", how, seconds(d), err)
	b.printTail(n, label, log)
	r.res.Err = fmt.Errorf("N=%d: %s %s: %v (its log: %s)", n, label, how, err, log)
	if s.key != "destroy" {
		b.cleanup(ctx, r)
	} else {
		fmt.Fprintf(b.o.Out, "N=%d: to remove what is left: PROJECT=%s go run mage.go destroy -env=dev (from any checkout: the state is in the cluster)\n", n, r.project)
	}
	return d, false
}

// step runs `go run mage.go args...` in dir and times it.
func (b *bench) step(ctx context.Context, dir string, env, args []string, logPath string) (time.Duration, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer log.Close()
	argv := append([]string{b.o.Go, "run", "mage.go"}, args...)
	fmt.Fprintf(log, "$ cd %s && PROJECT=%s %s\n", dir, envValue(env, "PROJECT"), strings.Join(argv, " "))
	notify := func(msg string) { fmt.Fprintf(b.o.Out, "\n  %s ... ", msg) }
	start := time.Now()
	err = runProcess(ctx, b.o.Force, b.o.Grace, dir, env, argv, log, notify)
	return time.Since(start), err
}

// cleanup tries destroy -env=<env> for each environment a step deployed to, after a failed or
// interrupted step, even when the run's context is done; only a second interrupt stops it.
func (b *bench) cleanup(ctx context.Context, r *nRun) {
	n, dir, env, project := r.res.N, r.dir, r.env, r.project
	for _, e := range r.deployed {
		manual := fmt.Sprintf("PROJECT=%s go run mage.go destroy -env=%s (from any checkout: the state is in the cluster)", project, e)
		if b.forced() {
			fmt.Fprintf(b.o.Out, "N=%d: stopped at once: no cleanup; to remove what is left: %s\n", n, manual)
			continue
		}
		log := filepath.Join(b.logs, project+"-cleanup-destroy-"+e+".log")
		fmt.Fprintf(b.o.Out, "N=%d: cleaning up: destroy -env=%s ... ", n, e)
		d, err := b.step(context.WithoutCancel(ctx), dir, env, []string{"destroy", "-env=" + e}, log)
		if err != nil {
			fmt.Fprintf(b.o.Out, "failed after %s: %v (its log: %s)\nN=%d: to remove what is left: %s\n", seconds(d), err, log, n, manual)
			continue
		}
		fmt.Fprintf(b.o.Out, "%s\n", seconds(d))
	}
}

// tailLines is how much of a failed step's log is printed.
const tailLines = 30

func (b *bench) printTail(n int, label, logPath string) {
	lines, err := lastLines(logPath, tailLines)
	if err != nil {
		fmt.Fprintf(b.o.Out, "  (its log %s cannot be read: %v)\n", logPath, err)
		return
	}
	keep := ""
	if !b.o.Keep {
		keep = fmt.Sprintf("; removed at the end, %s=1 keeps it", EnvKeep)
	}
	fmt.Fprintf(b.o.Out, "  N=%d: %s: the last %d lines of %s%s:\n", n, label, len(lines), logPath, keep)
	for _, l := range lines {
		fmt.Fprintf(b.o.Out, "    %s\n", l)
	}
}

// lastLines returns the last n lines of a file.
func lastLines(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 4*n {
			lines = append(lines[:0], lines[len(lines)-n:]...)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, sc.Err()
}

// stepEnv is the steps' environment: environ with PROJECT=project, PWD=dir, and the variables
// that hold paths made absolute against cwd, where the user typed them, since the steps run in
// the copy.
func stepEnv(environ []string, project, dir, cwd string) []string {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(cwd, p)
	}
	absList := func(v, sep string) string {
		parts := strings.Split(v, sep)
		for i, p := range parts {
			parts[i] = abs(strings.TrimSpace(p))
		}
		return strings.Join(parts, sep)
	}
	var out []string
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "PROJECT" || k == "PWD" {
			continue
		}
		switch {
		case k == "KUBECONFIG":
			v = absList(v, string(os.PathListSeparator))
		case k == "VALUES_FILES":
			v = absList(v, ",")
		case k == "TF_PROVIDER_MIRROR", k == "TF_BACKEND_CONFIG",
			k == "TERRAFORM_PATH" && strings.ContainsRune(v, filepath.Separator),
			strings.HasPrefix(k, "SECRET_") && strings.HasSuffix(k, "_FILE"):
			v = abs(v)
		}
		out = append(out, k+"="+v)
	}
	return append(out, "PROJECT="+project, "PWD="+dir)
}

func envValue(env []string, key string) string {
	for _, kv := range slices.Backward(env) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Write prints the table: one row per step, one column per N, and the ratio of the largest N's
// time to the smallest's.
func (r *Report) Write(w io.Writer) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "deploy benchmark: %s, %d cores, go run mage.go as typed (wall clock; no-change, change and plan: the median of %d runs)\n", r.Target, r.Cores, Repeats)
	fmt.Fprintf(&buf, "%-32s", "step")
	for _, res := range r.Results {
		fmt.Fprintf(&buf, " %9s", fmt.Sprintf("N=%d", res.N))
	}
	first, last := r.ends()
	if first != nil {
		fmt.Fprintf(&buf, " %12s", fmt.Sprintf("N=%d/N=%d", last.N, first.N))
	}
	buf.WriteByte('\n')
	rows := r.steps
	if rows == nil {
		rows = steps
	}
	for _, s := range rows {
		fmt.Fprintf(&buf, "%-32s", s.row)
		for _, res := range r.Results {
			fmt.Fprintf(&buf, " %9s", res.cell(s.key))
		}
		if first != nil {
			ratio := "-"
			a, okA := first.Times[s.key]
			z, okZ := last.Times[s.key]
			if okA && okZ && a > 0 {
				ratio = fmt.Sprintf("%.2f", float64(z)/float64(a))
			}
			fmt.Fprintf(&buf, " %12s", ratio)
		}
		buf.WriteByte('\n')
	}
	fmt.Fprintf(&buf, "machine: %d cores (nproc), %s\n", r.Cores, r.GoVersion)
	for _, res := range r.Results {
		if res.Changed != "" {
			fmt.Fprintf(&buf, "N=%d: %d of the checkout's services and %d generated%s; the one-line change was to %s; namespaces bench%d-dev, bench%d-system\n",
				res.N, res.N-len(res.Generated), len(res.Generated), generatedRange(res.Generated), res.Changed, res.N, res.N)
		}
	}
	_, _ = w.Write(buf.Bytes())
}

// ends are the results of the smallest and the largest N, when there are two or more.
func (r *Report) ends() (first, last *Result) {
	if len(r.Results) < 2 {
		return nil, nil
	}
	first, last = &r.Results[0], &r.Results[0]
	for i := range r.Results {
		if r.Results[i].N < first.N {
			first = &r.Results[i]
		}
		if r.Results[i].N > last.N {
			last = &r.Results[i]
		}
	}
	return first, last
}

func (res Result) cell(key string) string {
	if d, ok := res.Times[key]; ok {
		return seconds(d)
	}
	if res.Failed == key {
		return "failed"
	}
	return "-"
}

func generatedRange(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return " (" + names[0] + ")"
	}
	return " (" + names[0] + ".." + names[len(names)-1] + ")"
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func joinInts(xs []int, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, sep)
}

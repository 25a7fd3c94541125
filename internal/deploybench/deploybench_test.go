package deploybench

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/internal/testfiles"
)

func TestParseCountsReadsACommaListOfServiceCountsFrom2To200(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []int
		wantErr  string
	}{
		{name: "empty is the default, 2 and 50", in: "", want: []int{2, 50}},
		{name: "blank is the default too", in: "  ", want: []int{2, 50}},
		{name: "one count", in: "10", want: []int{10}},
		{name: "the bounds are allowed", in: "2,200", want: []int{2, 200}},
		{name: "spaces around items are ignored and counts are sorted", in: " 50 , 2 ,10", want: []int{2, 10, 50}},
		{name: "below the repository's own services is refused", in: "1", wantErr: `"1" is not a number of services from 2`},
		{name: "above 200 is refused", in: "2,201", wantErr: `"201" is not a number of services from 2 (the repository's own) to 200`},
		{name: "a word is refused", in: "two", wantErr: `"two" is not a number`},
		{name: "an empty item is refused", in: "2,,4", wantErr: `"" is not a number`},
		{name: "a count twice is refused", in: "4,2,4", wantErr: "4 appears twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCounts(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "BENCH_SERVICES=2,50") {
					t.Fatalf("ParseCounts(%q) = %v, %v; want an error with %q and the fix BENCH_SERVICES=2,50", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ParseCounts(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestFromEnvReadsTheBenchSettingsAndRefusesThoseThatWouldMeasureSomethingElse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		want     Options
		wantErrs []string
	}{
		{name: "nothing set is 2 and 50, not kept", want: Options{Counts: []int{2, 50}}},
		{name: "BENCH_KEEP=1 keeps", env: map[string]string{"BENCH_KEEP": "1", "BENCH_SERVICES": "4"}, want: Options{Counts: []int{4}, Keep: true}},
		{name: "BENCH_KEEP=0 does not keep", env: map[string]string{"BENCH_KEEP": "0"}, want: Options{Counts: []int{2, 50}}},
		{name: "another BENCH_KEEP is refused", env: map[string]string{"BENCH_KEEP": "maybe"}, wantErrs: []string{`BENCH_KEEP="maybe": use BENCH_KEEP=1`}},
		{name: "NAMESPACE would share one namespace between the Ns", env: map[string]string{"NAMESPACE": "x"}, wantErrs: []string{"NAMESPACE=x is set", "unset it"}},
		{name: "every problem is reported at once", env: map[string]string{"BENCH_SERVICES": "300", "SERVICES": "api", "SKIP_BUILD": "true"},
			wantErrs: []string{`"300" is not a number`, "SERVICES=api is set", "SKIP_BUILD=true is set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromEnv(func(k string) string { return tc.env[k] })
			if len(tc.wantErrs) > 0 {
				for _, want := range tc.wantErrs {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("FromEnv error = %v; want it to say %q", err, want)
					}
				}
				return
			}
			if err != nil || !slices.Equal(got.Counts, tc.want.Counts) || got.Keep != tc.want.Keep {
				t.Fatalf("FromEnv = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestNamesAreZeroPaddedToTheWidthTheLargestNeeds(t *testing.T) {
	for _, tc := range []struct {
		count       int
		first, last string
	}{
		{count: 1, first: "s01", last: "s01"},
		{count: 48, first: "s01", last: "s48"},
		{count: 99, first: "s01", last: "s99"},
		{count: 198, first: "s001", last: "s198"},
	} {
		t.Run(strconv.Itoa(tc.count)+" services", func(t *testing.T) {
			got := Names(tc.count)
			if len(got) != tc.count || got[0] != tc.first || got[len(got)-1] != tc.last {
				t.Fatalf("Names(%d) = %d names from %s to %s; want %s to %s", tc.count, len(got), got[0], got[len(got)-1], tc.first, tc.last)
			}
			for _, n := range got {
				if err := services.ValidateName(n); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if got := Names(0); got != nil {
		t.Errorf("Names(0) = %v; want none", got)
	}
}

// apiMain is services/api/main.go as the repository has it.
const apiMain = `// Command api is a service.
package main

import "github.com/dtap-platform/monorepo/services/kit"

func main() { kit.Main(kit.Service{Name: "api"}) }
`

func TestGenerateMakesEachServiceFromApiWithItsOwnName(t *testing.T) {
	for _, tc := range []struct {
		name       string
		files      map[string]string
		count      int
		wantValues bool
	}{
		{name: "with api's values.yaml", files: map[string]string{"services/api/main.go": apiMain, "services/api/values.yaml": "service:\n  port: 8080\n"}, count: 3, wantValues: true},
		{name: "without a values.yaml", files: map[string]string{"services/api/main.go": apiMain}, count: 2},
		{name: "no service to generate", files: map[string]string{"services/api/main.go": apiMain}, count: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			testfiles.Write(t, root, tc.files)
			names, err := Generate(root, tc.count)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names, Names(tc.count)) {
				t.Fatalf("Generate = %v; want %v", names, Names(tc.count))
			}
			for _, name := range names {
				path := filepath.Join(root, "services", name, "main.go")
				if got := serviceNameIn(t, path); got != name {
					t.Errorf("%s names its service %q; want %q", path, got, name)
				}
				_, err := os.Stat(filepath.Join(root, "services", name, "values.yaml"))
				if (err == nil) != tc.wantValues {
					t.Errorf("services/%s/values.yaml exists: %v; want %v", name, err == nil, tc.wantValues)
				}
			}
			dirs, _ := os.ReadDir(filepath.Join(root, "services"))
			if len(dirs) != tc.count+1 {
				t.Errorf("services/ holds %d folders; want api and %d generated", len(dirs), tc.count)
			}
		})
	}
}

// serviceNameIn parses a main.go as the compiler would and returns the Name of its
// kit.Service literal.
func serviceNameIn(t *testing.T, path string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	if f.Name.Name != "main" {
		t.Fatalf("%s is package %s; want main", path, f.Name.Name)
	}
	name := ""
	ast.Inspect(f, func(n ast.Node) bool {
		kv, ok := n.(*ast.KeyValueExpr)
		if !ok {
			return true
		}
		if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
			if lit, ok := kv.Value.(*ast.BasicLit); ok {
				name, _ = strconv.Unquote(lit.Value)
			}
		}
		return true
	})
	return name
}

func TestGenerateFailsClearlyWhenApiDoesNotNameItselfAsExpected(t *testing.T) {
	root := t.TempDir()
	testfiles.Write(t, root, map[string]string{"services/api/main.go": strings.Replace(apiMain, `Name: "api"`, `Name: name`, 1)})
	_, err := Generate(root, 2)
	if err == nil || !strings.Contains(err.Error(), `has no Name: "api" to replace`) || !strings.Contains(err.Error(), "services/api/main.go") {
		t.Fatalf("Generate = %v; want an error naming the file and the pattern", err)
	}
	if _, err := os.Stat(filepath.Join(root, "services", "s01")); err == nil {
		t.Error("a service was generated anyway")
	}
}

func TestGenerateRefusesAServiceOfTheCheckoutNamedAsAGeneratedOne(t *testing.T) {
	root := t.TempDir()
	testfiles.Write(t, root, map[string]string{"services/api/main.go": apiMain, "services/s02/main.go": apiMain})
	if _, err := Generate(root, 3); err == nil || !strings.Contains(err.Error(), "services/s02 exists already") {
		t.Fatalf("Generate = %v; want services/s02 named", err)
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitOutput(context.Background(), dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCopyTakesTheWorkingTreeOfTheTrackedFilesAndTheNewOnes(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	testfiles.Write(t, src, map[string]string{
		"README.md": "committed\n", "gone.txt": "deleted, not committed\n", "dir/run": "#!/bin/sh\n", "ignored.log": "tracked though ignored\n",
	})
	if err := os.Chmod(filepath.Join(src, "dir", "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("README.md", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	git(t, src, "init", "-q")
	git(t, src, "add", ".")
	git(t, src, "commit", "-q", "-m", "first")
	testfiles.Write(t, src, map[string]string{
		"README.md": "changed, not committed\n", "new/file.go": "package new\n", ".gitignore": "*.log\n", "new.log": "ignored\n",
		"mage_output_file.go": "// mage's, while it compiles\n",
	})
	if err := os.Remove(filepath.Join(src, "gone.txt")); err != nil {
		t.Fatal(err)
	}

	n, err := Copy(context.Background(), src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Errorf("copied %d files; want 6 (README.md, dir/run, ignored.log, link, new/file.go, .gitignore)", n)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"a modified file has its uncommitted change", "README.md", "changed, not committed\n"},
		{"a tracked file stays though ignored", "ignored.log", "tracked though ignored\n"},
		{"a new file git does not ignore is taken", "new/file.go", "package new\n"},
	} {
		if b, err := os.ReadFile(filepath.Join(dst, tc.path)); err != nil || string(b) != tc.want {
			t.Errorf("%s: %s = %q, %v; want %q", tc.name, tc.path, b, err, tc.want)
		}
	}
	for _, p := range []string{"gone.txt", "new.log", "mage_output_file.go"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err == nil {
			t.Errorf("%s was copied: a deleted file, an ignored new one and mage's own are not", p)
		}
	}
	if st, err := os.Stat(filepath.Join(dst, "dir", "run")); err != nil || st.Mode().Perm()&0o100 == 0 {
		t.Errorf("dir/run lost its executable bit: %v %v", st.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "README.md" {
		t.Errorf("link = %q, %v; want a symbolic link to README.md", l, err)
	}
}

// miniRepo writes a small module laid out as the monorepo: the kit, api and status.
func miniRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	testfiles.Write(t, root, map[string]string{
		"go.mod":                      "module github.com/dtap-platform/monorepo\n\ngo 1.26\n",
		"services/kit/kit.go":         "package kit\n\ntype Service struct{ Name string }\n\nfunc Main(Service) {}\n",
		"services/api/main.go":        apiMain,
		"services/api/values.yaml":    "service:\n  port: 8080\n",
		"services/status/main.go":     strings.Replace(apiMain, `"api"`, `"status"`, 1),
		"services/status/values.yaml": "service:\n  port: 8080\n",
		"mage.go":                     "//go:build ignore\n\npackage main\n",
	})
	git(t, root, "init", "-q")
	git(t, root, "add", ".")
	git(t, root, "commit", "-q", "-m", "mini")
	return root
}

func TestPrepareMakesACopyOfThisCheckoutWhereGoListFindsNServices(t *testing.T) {
	root, err := gitOutput(context.Background(), ".", "rev-parse", "--show-toplevel")
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "bench5")
	p, err := Prepare(context.Background(), root, dst, 5, "bench5-test")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Generated, []string{"s01", "s02", "s03"}) || p.Changed != "s01" {
		t.Errorf("Prepare = %+v; want s01..s03 generated and the change to s01", p)
	}
	found, err := services.Discover(context.Background(), dst)
	if err != nil {
		t.Fatal(err)
	}
	if got := services.Names(found); !slices.Equal(got, []string{"api", "s01", "s02", "s03", "status"}) {
		t.Errorf("go list finds %v in the copy; want api, status and s01..s03", got)
	}
	for _, s := range found {
		if b, err := os.ReadFile(filepath.Join(dst, s.Dir, MarkFile)); err != nil || !strings.Contains(string(b), "run: bench5-test") {
			t.Errorf("%s has no run marker: %v", s.Dir, err)
		}
	}
	if got := git(t, dst, "status", "--porcelain"); got != "" {
		t.Errorf("the copy has uncommitted files:\n%s", got)
	}
	if got := git(t, dst, "log", "--format=%an %ad", "--date=iso-strict"); got != "deploybench 2024-01-01T00:00:00+00:00\ndeploybench 2024-01-01T00:00:00+00:00" {
		t.Errorf("the copy's history is\n%s\nwant two commits by deploybench at the fixed date", got)
	}
}

func TestChangeAppendsACommentLineToTheServiceAndCommitsIt(t *testing.T) {
	root := miniRepo(t)
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if err := Change(context.Background(), root, "api", at); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "services", "api", "main.go"))
	if !strings.HasSuffix(string(b), apiMain+"\n// bench change 2026-05-01T12:00:00Z\n") {
		t.Errorf("services/api/main.go is\n%s\nwant one comment line appended", b)
	}
	if got := git(t, root, "log", "-1", "--name-only", "--format=%s"); got != "bench: a one-line change to api\n\nservices/api/main.go" {
		t.Errorf("the last commit is %q; want the change to services/api/main.go alone", got)
	}
}

func TestStepEnvSetsTheProjectAndMakesRelativePathsAbsolute(t *testing.T) {
	got := stepEnv([]string{
		"PROJECT=dtap", "PWD=/home/me/repo", "HOME=/home/me", "TF_PROVIDER_MIRROR=../shared/mirror",
		"KUBECONFIG=a.yaml:/etc/b.yaml", "VALUES_FILES=x.yaml,/abs/y.yaml", "SECRET_API_TOKEN_FILE=tok",
		"SECRET_API_TOKEN=kept as typed", "TERRAFORM_PATH=terraform", "TF_BACKEND_CONFIG=/abs/backend.hcl",
	}, "bench4", "/tmp/b/bench4", "/home/me/repo")
	want := []string{
		"HOME=/home/me", "TF_PROVIDER_MIRROR=/home/me/shared/mirror",
		"KUBECONFIG=/home/me/repo/a.yaml:/etc/b.yaml", "VALUES_FILES=/home/me/repo/x.yaml,/abs/y.yaml", "SECRET_API_TOKEN_FILE=/home/me/repo/tok",
		"SECRET_API_TOKEN=kept as typed", "TERRAFORM_PATH=terraform", "TF_BACKEND_CONFIG=/abs/backend.hcl",
		"PROJECT=bench4", "PWD=/tmp/b/bench4",
	}
	if !slices.Equal(got, want) {
		t.Errorf("stepEnv =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWritePrintsOneColumnPerNAndTheRatioOfTheLargestToTheSmallest(t *testing.T) {
	times := func(s ...float64) map[string]time.Duration {
		m := map[string]time.Duration{}
		for i, x := range s {
			m[steps[i].key] = time.Duration(x * float64(time.Second))
		}
		return m
	}
	r := &Report{Target: "embedded cluster", Cores: 2, GoVersion: "go version go1.26.8 linux/amd64", Results: []Result{
		{N: 2, Times: times(30, 3, 12, 2, 10), Changed: "api"},
		{N: 50, Times: times(90, 6), Failed: "one-service-change", Generated: Names(48), Changed: "s01"},
	}}
	var out bytes.Buffer
	r.Write(&out)
	got := out.String()
	for _, want := range []string{
		"deploy benchmark: embedded cluster, 2 cores, go run mage.go as typed (wall clock; no-change, change and plan: the median of 5 runs)\n",
		"step                                   N=2      N=50     N=50/N=2\n",
		"first deploy dev                    30.00s    90.00s         3.00\n",
		"no-change deploy dev                 3.00s     6.00s         2.00\n",
		"one-service change to ready         12.00s    failed            -\n",
		"destroy -env=dev                    10.00s         -            -\n",
		"machine: 2 cores (nproc), go version go1.26.8 linux/amd64\n",
		"N=50: 2 of the checkout's services and 48 generated (s01..s48); the one-line change was to s01",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the table lacks %q:\n%s", want, got)
		}
	}
}

// fakeGo is a go command that records what it is asked to run, where, and as which project:
// FAKE_FAIL makes the command that contains it fail, FAKE_HANG makes it run until interrupted.
const fakeGo = `#!/bin/sh
if [ "$1" = version ]; then echo "go version fake"; exit 0; fi
echo "$PROJECT $(basename "$(pwd)") $*" >> "$FAKE_LOG"
case "$*" in
*"$FAKE_FAIL"*) if [ -n "$FAKE_FAIL" ]; then echo "step output"; echo "boom: $*"; exit 1; fi ;;
esac
case "$*" in
*"$FAKE_HANG"*) if [ -n "$FAKE_HANG" ]; then
	trap 'echo "interrupted: $*" >> "$FAKE_LOG"; exit 130' INT
	while :; do sleep 0.05; done
fi ;;
esac
echo "ok: $*"
`

type fake struct {
	repo, tmp, log string
	opts           Options
	out            *bytes.Buffer
}

func newFake(t *testing.T, counts []int, env ...string) *fake {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	f := &fake{repo: miniRepo(t), tmp: t.TempDir(), log: filepath.Join(bin, "calls.log"), out: &bytes.Buffer{}}
	f.opts = Options{
		Counts: counts, Dir: f.repo, Go: filepath.Join(bin, "go"), TempRoot: f.tmp, Out: f.out, Grace: 10 * time.Second,
		// HOME without ~/.kube/config: the embedded cluster is the target, so kind:up runs first.
		Environ: append(os.Environ(), append([]string{"FAKE_LOG=" + f.log, "HOME=" + t.TempDir()}, env...)...),
	}
	return f
}

func (f *fake) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(f.log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// runsOf is how many times the benchmark runs a step.
func runsOf(s step) []int {
	if s.repeated {
		return make([]int, Repeats)
	}
	return make([]int, 1)
}

func TestMedianIsTheMiddleRun(t *testing.T) {
	if got := median([]time.Duration{3, 1, 2}); got != 2 {
		t.Errorf("median(3,1,2) = %v, want 2", got)
	}
	if got := median([]time.Duration{5}); got != 5 {
		t.Errorf("median(5) = %v, want 5", got)
	}
}

func TestRunRunsEachStepAsTypedInEachNsOwnCopyAndProject(t *testing.T) {
	f := newFake(t, []int{2, 3})
	f.opts.Keep = true
	rep, err := Run(context.Background(), f.opts)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, f.out)
	}
	t.Logf("the output:\n%s", f.out)
	// Each N is warmed up, then each step runs in every N before the next, and the runs of a
	// repeated step take turns between the Ns.
	want := []string{"bench2 bench2 run mage.go kind:up", "bench3 bench3 run mage.go kind:up"}
	for _, s := range steps {
		for range runsOf(s) {
			for _, n := range []string{"2", "3"} {
				want = append(want, "bench"+n+" bench"+n+" run mage.go "+strings.Join(s.args, " "))
			}
		}
	}
	if got := f.calls(t); !slices.Equal(got, want) {
		t.Errorf("the steps ran as\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(rep.Results) != 2 || rep.Results[0].Changed != "api" || rep.Results[1].Changed != "s01" || len(rep.Results[1].Times) != len(steps) {
		t.Errorf("results = %+v", rep.Results)
	}
	for _, want := range []string{"N=3: deploy dev (one-line change to s01) ... ", "step                                   N=2       N=3      N=3/N=2", "kept (BENCH_KEEP=1)"} {
		if !strings.Contains(f.out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, f.out)
		}
	}
	// The change was committed in N=3's copy before the third step.
	dirs, _ := filepath.Glob(filepath.Join(f.tmp, "deploybench-*", "bench3"))
	if len(dirs) != 1 {
		t.Fatalf("N=3's copy is not kept: %v", dirs)
	}
	if got := git(t, dirs[0], "log", "-1", "--format=%s"); got != "bench: a one-line change to s01" {
		t.Errorf("the last commit of N=3's copy is %q", got)
	}
	changes, _ := strconv.Atoi(git(t, dirs[0], "rev-list", "--count", "--grep=bench: a one-line change to s01", "HEAD"))
	if changes != Repeats {
		t.Errorf("N=3's copy has %d one-line changes, want one per run of the step, %d", changes, Repeats)
	}
	logs, _ := filepath.Glob(filepath.Join(f.tmp, "deploybench-*", "logs", "bench3-1-first-deploy-1.log"))
	if len(logs) != 1 {
		t.Fatalf("no log of N=3's first deploy")
	}
	if b, _ := os.ReadFile(logs[0]); !regexp.MustCompile(`(?m)^\[\+\d+\.\ds\] ok: run mage.go deploy dev$`).Match(b) {
		t.Errorf("the log lacks the step's output:\n%s", b)
	}
}

func TestAFailingStepEndsItsNAfterDestroyAndTheRunFailsAtTheEnd(t *testing.T) {
	f := newFake(t, []int{2, 3}, "FAKE_FAIL=plan dev")
	_, err := Run(context.Background(), f.opts)
	if err == nil || !strings.Contains(err.Error(), "N=2: plan dev (no change) failed: exit status 1") || !strings.Contains(err.Error(), "N=3: plan dev") {
		t.Fatalf("Run = %v; want both Ns' plan named", err)
	}
	// Both Ns run up to plan; its first run fails in each, and each N's destroy cleans up
	// right after its failure.
	both := func(a string) []string {
		return []string{"bench2 bench2 run mage.go " + a, "bench3 bench3 run mage.go " + a}
	}
	want := both("kind:up")
	for range 1 + 2*Repeats { // the first deploy, the no-change runs and the changes
		want = append(want, both("deploy dev")...)
	}
	want = append(want, "bench2 bench2 run mage.go plan dev", "bench2 bench2 run mage.go destroy -env=dev",
		"bench3 bench3 run mage.go plan dev", "bench3 bench3 run mage.go destroy -env=dev")
	if got := f.calls(t); !slices.Equal(got, want) {
		t.Errorf("the steps ran as\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	out := f.out.String()
	for _, want := range []string{"N=2: plan dev (no change) ... failed after", "the last 3 lines of", "] boom: run mage.go plan dev", "N=2: cleaning up: destroy -env=dev ... ", "plan dev (no change)                failed    failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if left, _ := os.ReadDir(f.tmp); len(left) != 0 {
		t.Errorf("the temp dir was not removed: %v", left)
	}
}

func TestAnInterruptReachesTheStepAsCtrlCDoesThenDestroyCleansUp(t *testing.T) {
	f := newFake(t, []int{2, 3}, "FAKE_HANG=deploy dev")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if b, _ := os.ReadFile(f.log); strings.Contains(string(b), "deploy dev") {
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	_, err := Run(ctx, f.opts)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("Run = %v; want interrupted", err)
	}
	want := []string{"bench2 bench2 run mage.go kind:up", "bench3 bench3 run mage.go kind:up", "bench2 bench2 run mage.go deploy dev", "interrupted: run mage.go deploy dev", "bench2 bench2 run mage.go destroy -env=dev"}
	if got := f.calls(t); !slices.Equal(got, want) {
		t.Errorf("the commands ran as\n%s\nwant\n%s (the first deploy gets SIGINT, destroy cleans up, N=3 deploys nothing)", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(err.Error(), "N=3: interrupted before first deploy dev") {
		t.Errorf("Run = %v; want N=3 named as interrupted before its first deploy", err)
	}
	if left, _ := os.ReadDir(f.tmp); len(left) != 0 {
		t.Errorf("the temp dir was not removed: %v", left)
	}
}

func TestAStepThatIgnoresSIGINTIsKilledAfterTheGraceOrAtOnceWhenForced(t *testing.T) {
	for _, tc := range []struct {
		name   string
		grace  time.Duration
		forced bool
	}{
		{name: "after the grace", grace: 300 * time.Millisecond},
		{name: "at once on a second interrupt", grace: time.Hour, forced: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, err := os.Create(filepath.Join(t.TempDir(), "step.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			ctx, cancel := context.WithCancel(context.Background())
			force := make(chan struct{})
			var notes []string
			go func() {
				time.Sleep(200 * time.Millisecond)
				cancel()
				if tc.forced {
					time.Sleep(200 * time.Millisecond)
					close(force)
				}
			}()
			start := time.Now()
			err = runProcess(ctx, force, tc.grace, t.TempDir(), os.Environ(), []string{"sh", "-c", `trap "" INT; while :; do sleep 0.05; done`}, log, func(s string) { notes = append(notes, s) })
			if err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("runProcess = %v; want killed", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("it took %s to stop", d)
			}
			if len(notes) != 2 || !strings.Contains(notes[0], "sent SIGINT") || !strings.Contains(notes[1], "killing") {
				t.Errorf("notes = %q", notes)
			}
		})
	}
}

func TestRunChecksTheCheckoutBeforeAnySideEffect(t *testing.T) {
	f := newFake(t, []int{2})
	if err := os.WriteFile(filepath.Join(f.repo, "services", "api", "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), f.opts)
	if err == nil || !strings.Contains(err.Error(), `has no Name: "api" to replace`) {
		t.Fatalf("Run = %v; want the missing pattern named", err)
	}
	if left, _ := os.ReadDir(f.tmp); len(left) != 0 {
		t.Errorf("a temp dir was made: %v", left)
	}
	if _, err := os.Stat(f.log); err == nil {
		t.Errorf("a step ran")
	}
}

func TestTargetIsTheEmbeddedClusterOnlyWhenNoOtherIsConfigured(t *testing.T) {
	withContext, without := t.TempDir(), t.TempDir()
	testfiles.Write(t, withContext, map[string]string{".kube/config": "apiVersion: v1\ncurrent-context: \"prod-eu\"\n"})
	testfiles.Write(t, without, map[string]string{".kube/config": "apiVersion: v1\ncurrent-context: \"\"\n"})
	for _, tc := range []struct {
		name     string
		environ  []string
		want     string
		embedded bool
	}{
		{name: "nothing configured", environ: []string{"HOME=" + t.TempDir()}, want: "embedded cluster", embedded: true},
		{name: "an empty current context", environ: []string{"HOME=" + without}, want: "embedded cluster", embedded: true},
		{name: "KUBECONFIG", environ: []string{"HOME=" + without, "KUBECONFIG=/k.yaml"}, want: "the cluster of KUBECONFIG=/k.yaml"},
		{name: "a current context in ~/.kube/config is not a choice", environ: []string{"HOME=" + withContext}, want: "embedded cluster", embedded: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, embedded := target(tc.environ); got != tc.want || embedded != tc.embedded {
				t.Errorf("target = %q, %v; want %q, %v", got, embedded, tc.want, tc.embedded)
			}
		})
	}
}

func TestEachLineOfAStepsLogIsStampedWithTheTimeSinceItsStart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{name: "whole lines", writes: []string{"a\nb\n"}, want: "[+0.0s] a\n[+0.0s] b\n"},
		{name: "a line in pieces", writes: []string{"ab", "c\nd", "\n"}, want: "[+0.0s] abc\n[+0.0s] d\n"},
		{name: "no final newline", writes: []string{"a\n", "b"}, want: "[+0.0s] a\n[+0.0s] b"},
		{name: "empty lines", writes: []string{"\n\n"}, want: "[+0.0s] \n[+0.0s] \n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			s := &stamper{w: &out, start: time.Now(), bol: true}
			for _, w := range tc.writes {
				if n, err := s.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if out.String() != tc.want {
				t.Errorf("the log is %q; want %q", out.String(), tc.want)
			}
		})
	}
}

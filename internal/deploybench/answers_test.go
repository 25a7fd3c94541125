package deploybench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// summary is a deploy's output as it ends, with one row per service.
func summary(env string, urls map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "==> smoke check\n\ndeployed %s to namespace bench2-%s (changes applied) in 9.1s\n", env, env)
	b.WriteString("  SERVICE  CHANGE     IMAGE                                   REVISION  READY IN  VERSION   URL\n")
	for svc, u := range urls {
		fmt.Fprintf(&b, "  %-8s installed  localhost:5001/%s@sha256:0123456789ab  1         2.1s      src-1234  %s\n", svc, svc, u)
	}
	b.WriteString("  preflight                                                          0s\n")
	return b.String()
}

func TestEveryServiceOfEachSummaryMustAnswerNamingItsEnvironment(t *testing.T) {
	serve := func(env string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/config" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprintf(w, `{"environment":%q,"service":"x"}`, env)
		}))
		t.Cleanup(s.Close)
		// as the front door's URLs read: a host name under .localhost, on 127.0.0.1
		return strings.Replace(s.URL, "127.0.0.1", "x."+env+".bench2.localhost", 1)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dev := write("dev.log", summary("dev", map[string]string{"api": serve("dev"), "s01": serve("dev")}))
	test := write("test.log", summary("test", map[string]string{"api": serve("test"), "s01": serve("test")}))
	out := filepath.Join(dir, "answers.log")
	if err := allAnswer(t.Context(), out, dev, test); err != nil {
		t.Fatalf("all four answer: %v", err)
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "4 of 4 services answered") {
		t.Errorf("answers log:\n%s", b)
	}

	// A service that answers for another environment, and one that does not answer at all.
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	bad := write("bad.log", summary("test", map[string]string{"api": serve("dev"), "s01": strings.Replace(closed.URL, "127.0.0.1", "s01.test.localhost", 1)}))
	err := allAnswer(t.Context(), out, dev, bad)
	if err == nil || !strings.Contains(err.Error(), `api in test`) || !strings.Contains(err.Error(), `names environment "dev", want "test"`) ||
		!strings.Contains(err.Error(), "s01 in test") {
		t.Errorf("err = %v, want both of test's services named", err)
	}

	if err := allAnswer(t.Context(), out, write("none.log", "deploy failed\n")); err == nil || !strings.Contains(err.Error(), "no deploy summary") {
		t.Errorf("a log without a summary: err = %v", err)
	}
}

func TestBenchTestAddsTestsStepsBeforeDestroyingDev(t *testing.T) {
	o, err := FromEnv(func(k string) string { return map[string]string{EnvTest: "1"}[k] })
	if err != nil || !o.AlsoTest {
		t.Fatalf("BENCH_TEST=1: %+v, %v", o, err)
	}
	var keys []string
	for _, s := range stepsOf(o) {
		keys = append(keys, s.key)
	}
	want := "first-deploy no-change-deploy one-service-change plan first-deploy-test answers destroy-test destroy"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("steps = %s, want %s", got, want)
	}
	if _, err := FromEnv(func(k string) string { return map[string]string{EnvTest: "maybe"}[k] }); err == nil || !strings.Contains(err.Error(), "BENCH_TEST=\"maybe\"") {
		t.Errorf("BENCH_TEST=maybe: err = %v", err)
	}
}

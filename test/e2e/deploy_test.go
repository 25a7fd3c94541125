//go:build integration

package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/cluster"
	"github.com/dtap-platform/monorepo/internal/deploy"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/services"
)

// TestMonorepoDeployLifecycle is `mage deploy dev` end to end on the lab cluster, as users run
// it, with two services (api and the status page): the first deploy, with secrets no tool on
// the way may keep; a teammate's clone that finds nothing to change; a one-line change that
// rebuilds and rolls api alone under load; a README commit that changes no image; a new service
// folder that is found, built, rendered and planned; the front door of two environments; a
// crashing image and a missing one, caught in seconds and rolled back; and destroy in each of
// its forms.
func TestMonorepoDeployLifecycle(t *testing.T) {
	p := newProject(t, "life")
	figures := map[string]time.Duration{}
	defer func() {
		for _, k := range slices.Sorted(maps.Keys(figures)) {
			t.Logf("FIGURE %-44s %s", k, figures[k].Round(100*time.Millisecond))
		}
	}()

	// Secrets generated now: a comma and '=' that Helm's --set would have split, and 4 KiB of
	// random bytes (a NUL among them) that only a file can carry.
	password := "pa,image.repository=localhost:5001/evil," + randomText(t, 12)
	blob := make([]byte, 4096)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	blob[100] = 0
	blobFile := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(blobFile, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	secretVars := map[string]string{"SECRET_API_DB_PASSWORD": password, "SECRET_API_BLOB_FILE": blobFile}

	res, took, err := p.deploy(repoRoot, "dev", secretVars)
	if err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	figures["first deploy of api and status"] = took
	ns := p.ns("dev")
	api, okAPI := res.Row("api")
	status, okStatus := res.Row("status")
	if !okAPI || !okStatus || api.Change != "installed" || status.Change != "installed" || api.Image.Digest == "" || status.Image.Digest == "" {
		t.Fatalf("first deploy summary: %+v", res.Rows)
	}

	t.Run("secrets reach the pod byte for byte and nothing else", func(t *testing.T) {
		checkSecretsOnlyInTheirSecret(t, p, ns, map[string][]byte{"db-password": []byte(password), "blob": blob}, api.Image, filepath.Dir(blobFile))
	})

	t.Run("the status page lists api ready through the cluster", func(t *testing.T) {
		rep := statusReport(t, ns, "api")
		if rep.Version != api.Config["version"] || !rep.Ready {
			t.Errorf("status reports api %+v, want version %v and ready", rep, api.Config["version"])
		}
	})

	t.Run("the summary URLs answer through the front door, by host name", func(t *testing.T) {
		for _, row := range res.Rows {
			if want := lab.door.URL(row.Service+"."+cluster.LocalDomain(p.name, "dev"), false); row.URL != want {
				t.Errorf("%s URL = %s, want the front door's %s", row.Service, row.URL, want)
				continue
			}
			code, body := httpGet(t, row.URL+"/config")
			if code != 200 || !strings.Contains(body, `"environment":"dev"`) {
				t.Errorf("GET %s/config = %d %s", row.URL, code, body)
			}
		}
	})

	t.Run("a browser shows api on the status page", func(t *testing.T) {
		checkStatusPageInBrowser(t, status.URL+"/", "api", fmt.Sprint(api.Config["version"]))
	})

	// A teammate's clone, in another folder, of the same source.
	clone := workCopy(t)
	t.Run("a second clone finds nothing to change", func(t *testing.T) {
		res, took, err := p.deploy(clone, "dev", nil)
		if err != nil {
			t.Fatal(err)
		}
		figures["deploy from a second clone, no change"] = took
		if res.Changed {
			t.Errorf("the second clone's deploy changed something: %+v", res.Rows)
		}
	})

	apiRevision, statusRevision := revisionOf(t, ns, "api"), revisionOf(t, ns, "status")
	statusPods := podUIDs(t, ns, "status")
	t.Run("a one-line change in api is affected, rebuilt and rolled alone", func(t *testing.T) {
		editFile(t, clone, "services/api/main.go", "// Command api is the monorepo's first service", "// Command api is the monorepo's first service (changed)")
		rep, err := inputs.Affected(t.Context(), clone, "HEAD", inputs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rep.Services, []string{"api"}) || len(rep.Changes) != 1 || rep.Changes[0].Reasons[0].Input != "services/api/main.go" {
			t.Fatalf("affected = %+v, want api only, naming services/api/main.go", rep)
		}
		wait := startLoad(t, ns, fmt.Sprintf("http://api.%s.svc.cluster.local:8080/config", ns), 200, 30*time.Second)
		res, took, err := p.deploy(clone, "dev", nil)
		if err != nil {
			t.Fatal(err)
		}
		figures["one-line change to ready (build+deploy)"] = took
		loadResult := wait()
		t.Logf("FIGURE load during the rollout: %s; codes %s; errors %v", loadResult, loadResult.Codes(), loadResult.Errors)
		if loadResult.Failed != 0 {
			t.Errorf("%d of %d requests failed during the rollout", loadResult.Failed, loadResult.Requests)
		}
		a, _ := res.Row("api")
		s, _ := res.Row("status")
		if a.Change != "rolled" || a.Image.Digest == api.Image.Digest || !s.Untouched() || s.Image.Digest != status.Image.Digest {
			t.Errorf("after the change: api %+v, status %+v", a, s)
		}
		if got := revisionOf(t, ns, "status"); got != statusRevision {
			t.Errorf("status's release revision %d -> %d, want it kept", statusRevision, got)
		}
		if got := podUIDs(t, ns, "status"); !slices.Equal(got, statusPods) {
			t.Errorf("status's pods %v -> %v, want the same pods", statusPods, got)
		}
		if got := revisionOf(t, ns, "api"); got != apiRevision+1 {
			t.Errorf("api's revision %d -> %d, want one more", apiRevision, got)
		}
		git(t, clone, "commit", "-qam", "api: a one-line change")
	})

	t.Run("a README commit changes no image tag and plans no change", func(t *testing.T) {
		svcs, err := services.Discover(t.Context(), clone)
		if err != nil {
			t.Fatal(err)
		}
		before, err := inputs.OfAll(t.Context(), clone, svcs, inputs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		editFile(t, clone, "README.md", "# dtap-platform monorepo", "# dtap-platform monorepo (a README change)")
		git(t, clone, "commit", "-qam", "README only")
		after, err := inputs.OfAll(t.Context(), clone, svcs, inputs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range svcs {
			if before[s.Name].Tag() != after[s.Name].Tag() {
				t.Errorf("%s's tag %s -> %s after a README commit", s.Name, before[s.Name].Tag(), after[s.Name].Tag())
			}
		}
		plan, err := p.plan(clone, "dev", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Changes) != 0 || len(plan.Builds) != 0 {
			t.Errorf("plan after a README commit: changes %v, builds %v; want none", plan.Changes, plan.Builds)
		}
	})

	t.Run("a new service folder is found, built, rendered and planned", func(t *testing.T) {
		checkNewServiceFolder(t, p, clone)
	})

	t.Run("a second environment answers on its own host names", func(t *testing.T) {
		res, _, err := p.deploy(clone, "test", nil)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, row := range res.Rows {
			code, body := httpGet(t, row.URL+"/config")
			if code != 200 || !strings.Contains(body, `"environment":"test"`) {
				t.Errorf("test's %s at %s/config = %d %s", row.Service, row.URL, code, body)
			}
			seen[row.URL] = true
		}
		for _, row := range mustRows(t, p, clone, "dev") {
			if seen[row.URL] {
				t.Errorf("dev's %s shares %s with test", row.Service, row.URL)
			}
		}
	})

	t.Run("a crashing image fails fast and is rolled back", func(t *testing.T) {
		crash := pushVariant(t, "api", "crash-"+p.name, `CMD ["crash"]`)
		start := time.Now()
		_, _, err := p.deploy(clone, "dev", map[string]string{"SERVICES": "api", "IMAGE_TAG": crash, "SKIP_BUILD": "true"})
		figures["crashing image until rolled back"] = time.Since(start)
		if err == nil {
			t.Fatal("deploying a crashing image succeeded")
		}
		for _, want := range []string{`unknown command "crash"`, "rolled back to revision"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not say %q:\n%v", want, err)
			}
		}
		checkRunsAgain(t, ns)
	})

	t.Run("an image that cannot be pulled fails fast and is rolled back", func(t *testing.T) {
		start := time.Now()
		_, _, err := p.deploy(clone, "dev", map[string]string{"SERVICES": "api", "IMAGE_TAG": "no-such-tag-" + p.name, "SKIP_BUILD": "true"})
		figures["missing image tag until rolled back"] = time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "ErrImagePull") && !strings.Contains(err.Error(), "ImagePullBackOff") {
			t.Fatalf("deploying a missing tag: %v, want the pull error named", err)
		}
		checkRunsAgain(t, ns)
	})

	t.Run("destroy in each of its forms", func(t *testing.T) {
		before := revisionOf(t, ns, "api")
		out, err := p.mageRun(clone, nil, "destroy", "dev")
		if err == nil || !strings.Contains(out, "did you mean: go run mage.go destroy -env=dev") {
			t.Errorf("`destroy dev` = %v:\n%s\nwant a refusal pointing to -env=dev", err, out)
		}
		if got := revisionOf(t, ns, "api"); got != before {
			t.Errorf("`destroy dev` changed api: revision %d -> %d", before, got)
		}

		start := time.Now()
		if out, err := p.mageRun(clone, nil, "destroy", "-env=dev"); err != nil {
			t.Fatalf("destroy -env=dev: %v\n%s", err, out)
		}
		figures["destroy -env=dev"] = time.Since(start)
		waitGone(t, ns)
		checkNothingLeft(t, p, "dev")
		for _, row := range mustRows(t, p, clone, "test") {
			if code, _ := httpGet(t, row.URL+"/config"); code != 200 {
				t.Errorf("test's %s stopped answering after destroy -env=dev", row.Service)
			}
		}

		// The bare form destroys what this clone deployed (test; dev is gone), but prod only
		// with CONFIRM_PROD=yes: with a record of a prod deploy it changes nothing at all, test
		// included, since every environment is checked before any is touched.
		prodRecord := filepath.Join(clone, ".cache", "deployed", "prod.json")
		if err := os.WriteFile(prodRecord, []byte(`{"env":"prod","namespace":"`+p.ns("prod")+`","local":true}`), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err = p.mageRun(clone, nil, "destroy")
		if err == nil || !strings.Contains(out, "CONFIRM_PROD=yes") || !strings.Contains(out, "nothing was destroyed") {
			t.Errorf("bare destroy with prod recorded = %v:\n%s\nwant prod refused without CONFIRM_PROD=yes, and nothing destroyed", err, out)
		}
		for _, row := range mustRows(t, p, clone, "test") {
			if code, _ := httpGet(t, row.URL+"/config"); code != 200 {
				t.Errorf("a refused bare destroy stopped test's %s", row.Service)
			}
		}
		if err := os.Remove(prodRecord); err != nil {
			t.Fatal(err)
		}
		if out, err := p.mageRun(clone, nil, "destroy"); err != nil {
			t.Errorf("bare destroy of test: %v\n%s", err, out)
		}
		waitGone(t, p.ns("test"))
		checkNothingLeft(t, p, "test")
	})
}

// checkSecretsOnlyInTheirSecret: the Secret the pods mount holds each value byte for byte, the
// pods name it and still run the image deploy built; and no value is in the Terraform state,
// the variables files, a file of the checkout or the temporary directory, a Helm release
// record, or anything deploy printed.
func checkSecretsOnlyInTheirSecret(t *testing.T, p *project, ns string, want map[string][]byte, img image.Ref, ownDir string) {
	t.Helper()
	ctx := t.Context()
	pods, err := lab.clients.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=api,app.kubernetes.io/component=server"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("api pods: %v", err)
	}
	var mounted string
	for _, v := range pods.Items[0].Spec.Volumes {
		if v.Name == "secrets" && v.Secret != nil {
			mounted = v.Secret.SecretName
		}
	}
	if mounted != "api-secrets-1" {
		t.Fatalf("the api pod mounts Secret %q, want the versioned api-secrets-1", mounted)
	}
	sec, err := lab.clients.CoreV1().Secrets(ns).Get(ctx, mounted, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Immutable == nil || !*sec.Immutable {
		t.Error("the secret version is not immutable")
	}
	for k, v := range want {
		if !bytes.Equal(sec.Data[k], v) {
			t.Errorf("Secret %s key %s holds %d bytes, not the %d given", mounted, k, len(sec.Data[k]), len(v))
		}
	}
	if c := pods.Items[0].Spec.Containers[0].Image; c != img.Repository+"@"+img.Digest {
		t.Errorf("the api pod runs %s, want %s@%s (a secret must not change the image)", c, img.Repository, img.Digest)
	}

	var needles [][]byte
	for _, v := range want {
		needles = append(needles, v[:min(len(v), 64)], []byte(base64.StdEncoding.EncodeToString(v)))
	}
	leaks := func(where string, b []byte) {
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("a secret value is in %s", where)
				return
			}
		}
	}
	states := p.stateSecrets(t, "dev")
	if len(states) == 0 {
		t.Fatal("no Terraform state of dev in the cluster")
	}
	for _, state := range states {
		leaks("the Terraform state "+state.Name, gunzip(t, state.Data["tfstate"]))
	}
	records, err := lab.clients.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil || len(records.Items) == 0 {
		t.Fatalf("Helm release records: %v", err)
	}
	for _, rec := range records.Items {
		raw, err := base64.StdEncoding.DecodeString(string(rec.Data["release"]))
		if err != nil {
			t.Fatal(err)
		}
		leaks("Helm release record "+rec.Name, gunzip(t, raw))
	}
	for _, dir := range []string{repoRoot, os.TempDir()} {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if info, err := d.Info(); err != nil || !info.Mode().IsRegular() || info.Size() > 64<<20 || strings.HasPrefix(path, ownDir) {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil {
				leaks(path, b)
			}
			return nil
		})
	}
	leaks("the output of deploy and plan", []byte(p.out.String()))
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return b
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// statusCheck is one service as the status page reports it.
type statusCheck struct {
	Name, Version, Revision, State string
	Ready                          bool
}

// statusReport reads status.json through a port-forward, waiting for the page's first poll of
// service.
func statusReport(t *testing.T, ns, service string) statusCheck {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rep struct{ Services []statusCheck }
		getThroughCluster(t, ns, "status", "/status.json", &rep)
		for _, c := range rep.Services {
			if c.Name == service && (c.Ready || time.Now().After(deadline)) {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("status.json does not list %s: %+v", service, rep)
		}
		time.Sleep(time.Second)
	}
}

func revisionOf(t *testing.T, ns, release string) int {
	t.Helper()
	records, err := lab.clients.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "owner=helm,name=" + release + ",status=deployed"})
	if err != nil || len(records.Items) != 1 {
		t.Fatalf("deployed release records of %s in %s: %v (%d)", release, ns, err, len(records.Items))
	}
	var n int
	fmt.Sscan(records.Items[0].Labels["version"], &n)
	return n
}

func podUIDs(t *testing.T, ns, release string) []string {
	t.Helper()
	pods, err := lab.clients.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release + ",app.kubernetes.io/component=server"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, string(p.UID))
		}
	}
	slices.Sort(out)
	return out
}

// pushVariant builds an image FROM the service's image in the registry with one more
// Dockerfile line, and pushes it under tag.
func pushVariant(t *testing.T, service, tag, line string) string {
	t.Helper()
	repo := lab.opts.Registry() + "/" + service
	running := runningImage(t, service)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+running+"\n"+line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := image.Docker(t.Context(), nil, "build", "-q", "-t", repo+":"+tag, dir); err != nil {
		t.Fatal(err)
	}
	pushLocal(t, image.Ref{Repository: repo, Tag: tag})
	signLocal(t, repo, tag)
	return tag
}

// runningImage is the image reference a service's pods run, pulled into the local engine.
func runningImage(t *testing.T, service string) string {
	t.Helper()
	deps, err := lab.clients.AppsV1().Deployments("").List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + service})
	if err != nil || len(deps.Items) == 0 {
		t.Fatalf("deployments of %s: %v", service, err)
	}
	ref := deps.Items[0].Spec.Template.Spec.Containers[0].Image
	if err := image.Docker(t.Context(), nil, "pull", "-q", ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

// checkRunsAgain: after a failed deploy, api serves dev at a deployed revision, none pending.
func checkRunsAgain(t *testing.T, ns string) {
	t.Helper()
	records, err := lab.clients.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "owner=helm,name=api"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records.Items {
		if strings.HasPrefix(r.Labels["status"], "pending") {
			t.Errorf("release record %s is %s", r.Name, r.Labels["status"])
		}
	}
	revisionOf(t, ns, "api")
	checkServes(t, ns, "api", "dev")
}

// checkNothingLeft: the environment's namespace, secret versions and Terraform state are gone.
func checkNothingLeft(t *testing.T, p *project, env string) {
	t.Helper()
	for _, state := range p.stateSecrets(t, env) {
		t.Errorf("the Terraform state %s of %s is still in the cluster after destroy", state.Name, env)
	}
	left, err := lab.clients.CoreV1().Secrets("").List(t.Context(), metav1.ListOptions{LabelSelector: "dtap.dev/secret-of,dtap.dev/environment=" + env})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range left.Items {
		if s.Namespace == p.ns(env) {
			t.Errorf("secret version %s/%s left after destroy", s.Namespace, s.Name)
		}
	}
}

// mustRows is the summary of a no-change deploy: each service's URL as it runs.
func mustRows(t *testing.T, p *project, root, env string) []deploy.Row {
	t.Helper()
	res, _, err := p.deploy(root, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed {
		t.Errorf("a repeated deploy of %s changed something: %+v", env, res.Rows)
	}
	return res.Rows
}

// checkNewServiceFolder adds services/hello (code and a small deploy description) to a clone,
// and nothing else: it is discovered, built, rendered for every environment and planned.
func checkNewServiceFolder(t *testing.T, p *project, clone string) {
	t.Helper()
	dir := filepath.Join(clone, "services", "hello")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		// It imports a module no other service imports: the Dockerfile's deps stage follows.
		"main.go":     "// Command hello is a throwaway service of the e2e test.\npackage main\n\nimport (\n\t\"github.com/dtap-platform/monorepo/services/kit\"\n\t\"sigs.k8s.io/yaml\"\n)\n\nvar _ = yaml.Marshal\n\nfunc main() { kit.Main(kit.Service{Name: \"hello\"}) }\n",
		"values.yaml": "service:\n  port: 8080\ningress:\n  enabled: false\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	all, err := services.Discover(t.Context(), clone)
	if err != nil {
		t.Fatal(err)
	}
	hello, err := services.Select(all, "hello")
	if err != nil {
		t.Fatalf("hello is not discovered among %v: %v", services.Names(all), err)
	}
	m, err := inputs.Of(t.Context(), clone, hello[0], inputs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref := image.Ref{Repository: "hello", Tag: m.Tag()}
	if err := image.BuildAll(t.Context(), clone, []image.Spec{{Service: "hello", Inputs: m, Ref: ref}}, os.Stdout); err != nil {
		t.Fatalf("build hello: %v", err)
	}
	envs, err := environments.List(filepath.Join(clone, environments.ChartDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		var files []string
		for _, f := range hello[0].ValuesFiles(clone, env) {
			files = append(files, filepath.Join(clone, f))
		}
		man, err := chart.Render(t.Context(), filepath.Join(clone, environments.ChartDir), env, "hello", p.ns(env), nil, files...)
		if err != nil {
			t.Errorf("render hello in %s: %v", env, err)
			continue
		}
		if _, ok := man.Find("Deployment", "hello"); !ok {
			t.Errorf("hello's rendering in %s has no Deployment", env)
		}
	}
	plan, err := p.plan(clone, "dev", map[string]string{"SERVICES": "hello"})
	if err != nil {
		t.Fatalf("plan with hello: %v", err)
	}
	if plan.Changes["hello"] != "installed" || len(plan.Changes) != 1 {
		t.Errorf("plan with hello = %v, want hello installed and nothing else", plan.Changes)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
}

func randomText(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

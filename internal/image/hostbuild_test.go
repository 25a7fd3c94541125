package image

import (
	"archive/tar"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/services"
)

func TestBuilderIsTakenFromBUILDEROrChosenByTheHostsGo(t *testing.T) {
	g := hostGoOnce()
	wantDefault := BuilderDocker
	if hostGoUnfit(g.version, g.goLine, g.err) == "" {
		wantDefault = BuilderHost
	}
	tests := []struct {
		name, builder, want string
		wantErr             []string // each in the error
	}{
		{"docker is docker", "docker", BuilderDocker, nil},
		{"unset is host when the host's Go is recent enough, else docker", "", wantDefault, nil},
		{"a bogus builder is refused, naming the fix", "bogus", "", []string{`BUILDER="bogus" is no builder`, "BUILDER=host", "BUILDER=docker", "unset it"}},
		{"a builder in capitals is refused", "Docker", "", []string{`BUILDER="Docker"`}},
	}
	if wantDefault == BuilderHost {
		tests = append(tests, struct {
			name, builder, want string
			wantErr             []string
		}{"host is host when the host's Go is recent enough", "host", BuilderHost, nil})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("BUILDER", tt.builder)
			got, err := Builder()
			if tt.wantErr == nil {
				if err != nil || got != tt.want {
					t.Errorf("Builder() = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Builder() = %q, nil; want an error", got)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Builder() error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestTheHostsGoFitsWhenItIsAtLeastGoModsGoLine(t *testing.T) {
	tests := []struct {
		name, goVersion, goLine string
		err                     error
		fits                    bool
		why                     string
	}{
		{"a later patch release fits", "go1.26.8", "1.26.0", nil, true, ""},
		{"the same release fits", "go1.26.0", "1.26.0", nil, true, ""},
		{"a language version line fits its first release", "go1.26.0", "1.26", nil, true, ""},
		{"a later minor release fits", "go1.27.1", "1.26.0", nil, true, ""},
		{"a release with experiments fits by its release", "go1.26.8 X:nocoverageredesign", "1.26.0", nil, true, ""},
		{"an older minor release does not", "go1.25.9", "1.26.0", nil, false, "older than go.mod's go 1.26.0"},
		{"an older patch release does not", "go1.26.1", "1.26.2", nil, false, "older than"},
		{"a release candidate before the release does not", "go1.26rc2", "1.26.0", nil, false, "older than"},
		{"a development toolchain does not", "devel go1.27-abcdef", "1.26.0", nil, false, "not a released version"},
		{"no go line cannot be compared", "go1.26.8", "", nil, false, "no go line"},
		{"a go command that does not answer does not", "", "1.26.0", errors.New("exec: \"go\": not found"), false, "does not answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := hostGoUnfit(tt.goVersion, tt.goLine, tt.err)
			if (why == "") != tt.fits || !strings.Contains(why, tt.why) {
				t.Errorf("hostGoUnfit(%q, %q) = %q; want fits=%v, saying %q", tt.goVersion, tt.goLine, why, tt.fits, tt.why)
			}
		})
	}
}

func TestGoLineOfReadsGoModsGoDirective(t *testing.T) {
	tests := []struct{ name, gomod, want string }{
		{"a plain go line", "module m\n\ngo 1.26.0\n", "1.26.0"},
		{"a go line with a comment", "module m\ngo 1.26 // the language\ntoolchain go1.26.8\n", "1.26"},
		{"no go line", "module m\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "go.mod")
			writeFile(t, path, tt.gomod, 0o644)
			if got := goLineOf(path); got != tt.want {
				t.Errorf("goLineOf = %q, want %q", got, tt.want)
			}
		})
	}
}

// apiService is this repository's services/api.
func apiService(t *testing.T) (root string, svc services.Service) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root, services.Service{Name: "api", Dir: "services/api", Package: "github.com/dtap-platform/monorepo/services/api"}
}

func TestTheTwoBuildersNeverShareAContentTag(t *testing.T) {
	if why := func() string { g := hostGoOnce(); return hostGoUnfit(g.version, g.goLine, g.err) }(); why != "" {
		t.Skipf("no host builder here: %s", why)
	}
	root, svc := apiService(t)
	tags := map[string]string{}
	for _, b := range []string{BuilderHost, BuilderDocker} {
		t.Setenv("BUILDER", b)
		o := InputOptions(t.Context())
		if b == BuilderHost && (o.BuilderImage != HostBuilderImage() || !strings.HasPrefix(o.BuilderImage, "host go1.") || !strings.HasPrefix(o.Platform, "linux/")) {
			t.Errorf("InputOptions with BUILDER=host = %+v; want the builder %q and a linux platform", o, HostBuilderImage())
		}
		if b == BuilderDocker && o.BuilderImage != BuilderImage() {
			t.Errorf("InputOptions with BUILDER=docker = %+v; want the builder image %q as before", o, BuilderImage())
		}
		m, err := inputs.Of(t.Context(), root, svc, o)
		if err != nil {
			t.Fatal(err)
		}
		tags[b] = m.Tag()
	}
	if tags[BuilderHost] == tags[BuilderDocker] {
		t.Errorf("both builders give api the tag %s", tags[BuilderHost])
	}
}

// keepGoCaches pins the go command's caches to the ones it uses now, so that a test that moves
// HOME (testRegistry does) still builds warm and finds the downloaded modules.
func keepGoCaches(t *testing.T) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH", "GOENV").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOENV"} {
		if i < len(lines) {
			t.Setenv(k, lines[i])
		}
	}
}

// hostSpec is api's spec with a content tag for the host builder and a fixed revision.
func hostSpec(t *testing.T) (string, Spec) {
	t.Helper()
	root, svc := apiService(t)
	t.Setenv("BUILDER", BuilderHost)
	m, err := inputs.Of(t.Context(), root, svc, InputOptions(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	rev := inputs.Revision{Commit: strings.Repeat("c0ffee", 6) + "beef", Time: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	return root, Spec{Service: "api", Inputs: m, Revision: rev, Ref: Ref{Repository: "api", Tag: m.Tag()}}
}

func pulled(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestBuildAndPushMakesAReproducibleOneFileImageOfTheService(t *testing.T) {
	if why := func() string { g := hostGoOnce(); return hostGoUnfit(g.version, g.goLine, g.err) }(); why != "" {
		t.Skipf("no host builder here: %s", why)
	}
	keepGoCaches(t)
	host := testRegistry(t)
	root, spec := hostSpec(t)
	repo := host + "/api"

	var out bytes.Buffer
	first, err := BuildAndPush(t.Context(), root, spec, repo, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^  api built on the host in [0-9.]+s \(go build [0-9.]+s, image [0-9.]+s, push [0-9.]+s\)\n$`).MatchString(out.String()) {
		t.Errorf("output %q, want one line with the times", out.String())
	}
	t.Logf("first build: %s", strings.TrimSpace(out.String()))
	img := pulled(t, repo+":"+spec.Ref.Tag)
	if d := digest(t, img).String(); d != first {
		t.Errorf("the registry's %s is %s, BuildAndPush returned %s", spec.Ref.Tag, d, first)
	}

	t.Run("the manifest, config and layer are OCI", func(t *testing.T) {
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
			t.Errorf("manifest %s, config %s, layers %+v; want OCI media types and one layer", m.MediaType, m.Config.MediaType, m.Layers)
		}
	})

	var binary string
	t.Run("the one layer holds exactly app, 0755, owned by 0:0", func(t *testing.T) {
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 1 {
			t.Fatalf("%d layers, want 1", len(layers))
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		headers, contents := tarEntries(t, rc)
		if len(headers) != 1 {
			t.Fatalf("the layer holds %d entries, want exactly app", len(headers))
		}
		h := headers[0]
		if h.Name != "app" || h.Typeflag != tar.TypeReg || h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" ||
			!h.ModTime.Equal(spec.Created()) {
			t.Errorf("entry %q type %c mode %o owner %d:%d %q:%q time %s; want a regular file app 0755 owned by 0:0 without names at %s",
				h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime.UTC(), spec.Created())
		}
		binary = contents["app"]
	})

	t.Run("the binary is a static linux ELF built as the Dockerfile builds it", func(t *testing.T) {
		if binary == "" {
			t.Skip("no binary read")
		}
		f, err := elf.NewFile(strings.NewReader(binary))
		if err != nil {
			t.Fatalf("app is no ELF: %v", err)
		}
		defer f.Close()
		if machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]; machine != 0 && f.Machine != machine {
			t.Errorf("app is for %s, want %s", f.Machine, machine)
		}
		if slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
			t.Error("app has an ELF interpreter: it is not static")
		}
		bi, err := buildinfo.Read(strings.NewReader(binary))
		if err != nil {
			t.Fatal(err)
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		for k, want := range map[string]string{"GOOS": "linux", "GOARCH": runtime.GOARCH, "CGO_ENABLED": "0", "-tags": inputs.BuildTags, "-trimpath": "true"} {
			if settings[k] != want {
				t.Errorf("build setting %s = %q, want %q", k, settings[k], want)
			}
		}
		// -trimpath leaves -ldflags out of the build settings: the stamped values are in the data.
		if !strings.Contains(binary, spec.Ref.Tag) {
			t.Errorf("the binary does not carry its version %q: the -ldflags -X stamp is missing", spec.Ref.Tag)
		}
		// The revision is no input of the tag: it must not be in the bytes.
		for _, stamp := range []string{spec.Revision.Commit, spec.Revision.Time.Format(time.RFC3339)} {
			if strings.Contains(binary, stamp) {
				t.Errorf("the binary carries %q, which is no input of its content tag", stamp)
			}
		}
		if _, ok := settings["vcs.revision"]; ok {
			t.Error("the binary carries the work tree's VCS stamp: it would change with every commit")
		}
		if bi.Path != "github.com/dtap-platform/monorepo/services/api" {
			t.Errorf("the binary is %s, want services/api", bi.Path)
		}
	})

	t.Run("the config runs /app as 65532 on 8080 with the Dockerfile's labels", func(t *testing.T) {
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cfg.Config
		if !slices.Equal(c.Entrypoint, []string{"/app"}) || c.User != "65532:65532" || len(c.Cmd) != 0 {
			t.Errorf("entrypoint %v, cmd %v, user %q; want [/app], none, 65532:65532", c.Entrypoint, c.Cmd, c.User)
		}
		if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
			t.Errorf("exposed ports %v, want 8080/tcp", c.ExposedPorts)
		}
		want := map[string]string{
			"org.opencontainers.image.title":    "api",
			"org.opencontainers.image.source":   "https://github.com/dtap-platform/monorepo",
			"org.opencontainers.image.version":  spec.Ref.Tag,
			"org.opencontainers.image.licenses": "Apache-2.0",
		}
		if !equalMaps(c.Labels, want) {
			t.Errorf("labels %v, want %v", c.Labels, want)
		}
		if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || !cfg.Created.Time.Equal(spec.Created()) || len(cfg.History) != 1 || !cfg.History[0].Created.Time.Equal(spec.Created()) {
			t.Errorf("os %s, arch %s, created %s, history %+v; want linux, %s, %s and one entry then", cfg.OS, cfg.Architecture, cfg.Created.Time, cfg.History, runtime.GOARCH, spec.Created())
		}
	})

	t.Run("building again gives the same digest", func(t *testing.T) {
		out.Reset()
		again, err := BuildAndPush(t.Context(), root, spec, host+"/again", &out)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("warm rebuild: %s", strings.TrimSpace(out.String()))
		if again != first {
			t.Errorf("the second build is %s, the first %s", again, first)
		}
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestBuildAndPushAllBuildsEveryServiceAndNamesEachDigest(t *testing.T) {
	if why := func() string { g := hostGoOnce(); return hostGoUnfit(g.version, g.goLine, g.err) }(); why != "" {
		t.Skipf("no host builder here: %s", why)
	}
	keepGoCaches(t)
	host := testRegistry(t)
	root, spec := hostSpec(t)

	var out bytes.Buffer
	got, err := BuildAndPushAll(t.Context(), root, []Spec{spec}, func(service string) string { return host + "/" + service }, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.HasPrefix(got["api"], "sha256:") || !strings.Contains(out.String(), "api built on the host") {
		t.Errorf("BuildAndPushAll = %v, output %q; want api's digest and its line", got, out.String())
	}

	bad := spec
	bad.Service = "nosuchservice"
	if _, err := BuildAndPushAll(t.Context(), root, []Spec{bad}, func(service string) string { return host + "/" + service }, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "build nosuchservice") {
		t.Errorf("BuildAndPushAll with a missing service = %v; want an error naming it", err)
	}
}

func TestBuildAndPushRefusesWhatItCannotBuildFaithfully(t *testing.T) {
	root, _ := apiService(t)
	good := Spec{Service: "api", Inputs: inputs.Manifest{Service: "api", Inputs: []inputs.Input{
		{Kind: inputs.KindBuild, Name: "GO_IMAGE", Digest: HostBuilderImage()},
		{Kind: inputs.KindBuild, Name: "platform", Digest: "windows/amd64"},
	}}, Ref: Ref{Repository: "api", Tag: "src-0123456789abcdef"}}
	tests := []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"a tag computed for the docker builder", func(s *Spec) {
			s.Inputs = inputs.Manifest{Inputs: []inputs.Input{{Kind: inputs.KindBuild, Name: "GO_IMAGE", Digest: inputs.DefaultBuilderImage}}}
		}, "compute it with image.InputOptions under BUILDER=host"},
		{"a service name that is no folder name", func(s *Spec) { s.Service = "../api" }, "services/../api"},
		{"an invalid tag", func(s *Spec) { s.Ref.Tag = "-x" }, "image tag"},
		{"a platform other than linux", func(s *Spec) {}, "builds linux images, not windows"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			spec := good
			tt.edit(&spec)
			_, err := BuildAndPush(t.Context(), root, spec, "127.0.0.1:1/api", io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("BuildAndPush = %v; want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestTheHostImageIsTheDockerfilesFinalStage keeps the host builder's image config and link
// flags equal to the Dockerfile's: its LABEL, USER, EXPOSE, ENTRYPOINT and -ldflags, with its
// build arguments as Build sets them.
func TestTheHostImageIsTheDockerfilesFinalStage(t *testing.T) {
	dockerfile, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(dockerfile), "\\\n", " ")
	spec := Spec{Service: "api", Ref: Ref{Tag: "src-0123456789abcdef"},
		Revision: inputs.Revision{Commit: "abc123", Time: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}}
	args := map[string]string{"SERVICE": spec.Service, "VERSION": spec.Ref.Tag}
	if m := regexp.MustCompile(`(?m)^ARG SOURCE=(\S+)`).FindStringSubmatch(text); m != nil {
		args["SOURCE"] = m[1]
	}
	expand := func(s string) string {
		return regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(s, func(v string) string { return args[v[2:len(v)-1]] })
	}
	stage := text[strings.LastIndex(text, "\nFROM "):]

	img, err := hostImage(spec, []byte("\x7fELF"), v1.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}

	labels := map[string]string{}
	for _, m := range regexp.MustCompile(`(org\.opencontainers\.image\.\w+)="([^"]*)"`).FindAllStringSubmatch(stage, -1) {
		labels[m[1]] = expand(m[2])
	}
	if len(labels) == 0 || !equalMaps(cfg.Config.Labels, labels) {
		t.Errorf("host labels %v\nDockerfile's %v", cfg.Config.Labels, labels)
	}
	line := func(instr string) string {
		m := regexp.MustCompile(`(?m)^` + instr + ` (.*)$`).FindStringSubmatch(stage)
		if m == nil {
			t.Fatalf("the Dockerfile's final stage has no %s", instr)
		}
		return strings.TrimSpace(m[1])
	}
	if got, want := cfg.Config.User, line("USER"); got != want {
		t.Errorf("host user %q, Dockerfile's %q", got, want)
	}
	if _, ok := cfg.Config.ExposedPorts[line("EXPOSE")+"/tcp"]; !ok || len(cfg.Config.ExposedPorts) != 1 {
		t.Errorf("host ports %v, Dockerfile's EXPOSE %s", cfg.Config.ExposedPorts, line("EXPOSE"))
	}
	if got, want := `["`+strings.Join(cfg.Config.Entrypoint, `", "`)+`"]`, line("ENTRYPOINT"); got != want {
		t.Errorf("host entrypoint %s, Dockerfile's %s", got, want)
	}
	m := regexp.MustCompile(`-ldflags "([^"]*)"`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("the Dockerfile has no -ldflags")
	}
	if got, want := ldflags(spec), strings.Join(strings.Fields(expand(m[1])), " "); got != want {
		t.Errorf("host -ldflags %q\nDockerfile's %q", got, want)
	}
}

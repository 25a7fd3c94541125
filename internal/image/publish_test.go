package image

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// tarEntries reads a tar stream's headers and contents.
func tarEntries(t *testing.T, r io.Reader) ([]*tar.Header, map[string]string) {
	t.Helper()
	tr := tar.NewReader(r)
	var headers []*tar.Header
	contents := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		headers = append(headers, h)
		contents[h.Name] = string(b)
	}
	return headers, contents
}

func TestContextTarHoldsExactlyTheInputsWithFixedModesAndTimes(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "Dockerfile"), "FROM scratch\n", 0o600)
	writeFile(t, filepath.Join(root, "go.mod"), "module example.com/m\n", 0o644)
	writeFile(t, filepath.Join(root, "services", "a", "main.go"), "package main\n", 0o755)
	writeFile(t, filepath.Join(root, "README.md"), "not an input\n", 0o644)
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(root, "go.mod"), old, old); err != nil {
		t.Fatal(err)
	}

	files := []string{"go.mod", "services/a/main.go", "Dockerfile", "go.mod"} // the Dockerfile and go.mod twice
	buf, err := contextTar(root, files)
	if err != nil {
		t.Fatal(err)
	}
	first := slices.Clone(buf.Bytes())
	headers, contents := tarEntries(t, bytes.NewReader(first))

	var names []string
	for _, h := range headers {
		names = append(names, h.Name)
		if h.Mode != 0o644 || h.Typeflag != tar.TypeReg || !h.ModTime.Equal(time.Unix(0, 0)) ||
			h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mode %o, type %c, time %s, owner %d:%d %q:%q; want a regular file 0644 at the epoch owned by 0:0",
				h.Name, h.Mode, h.Typeflag, h.ModTime.UTC(), h.Uid, h.Gid, h.Uname, h.Gname)
		}
	}
	if want := []string{"Dockerfile", "go.mod", "services/a/main.go"}; !slices.Equal(names, want) {
		t.Errorf("entries = %v, want exactly %v", names, want)
	}
	for name, want := range map[string]string{"Dockerfile": "FROM scratch\n", "go.mod": "module example.com/m\n", "services/a/main.go": "package main\n"} {
		if contents[name] != want {
			t.Errorf("%s = %q, want %q", name, contents[name], want)
		}
	}

	// Only content counts: another mode and time on disk give the same bytes.
	if err := os.Chmod(filepath.Join(root, "services", "a", "main.go"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := os.Chtimes(filepath.Join(root, "go.mod"), now, now); err != nil {
		t.Fatal(err)
	}
	again, err := contextTar(root, files)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again.Bytes()) {
		t.Error("two build contexts of the same content differ")
	}

	writeFile(t, filepath.Join(root, "services", "a", "main.go"), "package main // changed\n", 0o644)
	changed, err := contextTar(root, files)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, changed.Bytes()) {
		t.Error("a changed input gave the same build context")
	}
}

func TestContextTarRefusesAMissingInput(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "go.mod"), "module example.com/m\n", 0o644)
	if _, err := contextTar(root, []string{"go.mod"}); err == nil || !strings.Contains(err.Error(), "build context:") || !strings.Contains(err.Error(), "Dockerfile") {
		t.Errorf("contextTar without a Dockerfile = %v, want an error naming it", err)
	}
	writeFile(t, filepath.Join(root, "Dockerfile"), "FROM scratch\n", 0o644)
	if _, err := contextTar(root, []string{"lib/gone.go"}); err == nil || !strings.Contains(err.Error(), "lib/gone.go") {
		t.Errorf("contextTar of a missing file = %v, want an error naming it", err)
	}
}

// builtImage is an image as an engine leaves it: one layer whose files carry the build's time,
// a config created then, with the engine's version, the build container and its host name.
func builtImage(t *testing.T, at time.Time, container string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		h    tar.Header
		body string
	}{
		{tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		{tar.Header{Name: "app/server", Typeflag: tar.TypeReg, Mode: 0o755}, "\x7fELF binary bytes"},
		{tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, "nobody:x:65534:65534::/:/sbin/nologin\n"},
	}
	for _, e := range entries {
		h := e.h
		h.ModTime, h.AccessTime, h.ChangeTime, h.Format = at, at, at, tar.FormatPAX
		h.Size = int64(len(e.body))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer,
		History: v1.History{Created: v1.Time{Time: at}, CreatedBy: "COPY /out/server /app/server", Author: "builder@" + container}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: at}
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.DockerVersion = "27.3.1"
	cfg.Container = container
	cfg.Config.Hostname = container[:12]
	cfg.Config.Image = "sha256:" + strings.Repeat("ab", 32)
	cfg.Config.Cmd = []string{"/app/server"}
	cfg.Config.Labels = map[string]string{"org.opencontainers.image.version": "src-0123456789abcdef"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestNormalizeGivesTheSameDigestForTheSameContentBuiltAtDifferentTimes(t *testing.T) {
	commit := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	a := builtImage(t, time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC), strings.Repeat("a", 64))
	b := builtImage(t, time.Now().UTC().Truncate(time.Second), strings.Repeat("b", 64))
	if digest(t, a) == digest(t, b) {
		t.Fatal("the two builds already have the same digest: the test proves nothing")
	}
	na, err := Normalize(a, commit)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := Normalize(b, commit)
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, na) != digest(t, nb) {
		t.Errorf("normalised digests differ: %s and %s", digest(t, na), digest(t, nb))
	}
	if twice, err := Normalize(na, commit); err != nil || digest(t, twice) != digest(t, na) {
		t.Errorf("normalising twice changed the digest (%v)", err)
	}
	if other, err := Normalize(a, commit.Add(time.Second)); err != nil || digest(t, other) == digest(t, na) {
		t.Errorf("another commit time gave the same digest (%v): the time is part of the image", err)
	}

	cfg, err := na.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Created.Time.Equal(commit) {
		t.Errorf("config created %s, want %s", cfg.Created.Time, commit)
	}
	for i, h := range cfg.History {
		if !h.Created.Time.Equal(commit) || h.Author != "" {
			t.Errorf("history %d: created %s by author %q, want %s and no author", i, h.Created.Time, h.Author, commit)
		}
	}
	if cfg.DockerVersion != "" || cfg.Container != "" || cfg.Config.Hostname != "" || cfg.Config.Image != "" {
		t.Errorf("engine stamps left: docker_version %q, container %q, hostname %q, image %q",
			cfg.DockerVersion, cfg.Container, cfg.Config.Hostname, cfg.Config.Image)
	}
	if !slices.Equal(cfg.Config.Cmd, []string{"/app/server"}) || cfg.Config.Labels["org.opencontainers.image.version"] != "src-0123456789abcdef" ||
		cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("the image's own settings were lost: %+v", cfg.Config)
	}

	layers, err := na.Layers()
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
	if len(headers) != 3 {
		t.Errorf("layer holds %d entries, want 3", len(headers))
	}
	for _, h := range headers {
		if !h.ModTime.Equal(commit) {
			t.Errorf("%s: modified %s, want %s", h.Name, h.ModTime, commit)
		}
		if !h.AccessTime.IsZero() && !h.AccessTime.Equal(commit) || !h.ChangeTime.IsZero() && !h.ChangeTime.Equal(commit) {
			t.Errorf("%s: access %s, change %s, want %s", h.Name, h.AccessTime, h.ChangeTime, commit)
		}
	}
	if contents["app/server"] != "\x7fELF binary bytes" {
		t.Errorf("app/server = %q: the content changed", contents["app/server"])
	}
}

// testRegistry is an in-memory registry served over plain HTTP on 127.0.0.1, which the
// image package speaks to without TLS as it does to the local cluster's registry.
func testRegistry(t *testing.T) string {
	t.Helper()
	t.Setenv("HOME", t.TempDir()) // no credentials from the user's docker configuration
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestLookupAsksTheRegistryForATag(t *testing.T) {
	host := testRegistry(t)
	img := builtImage(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), strings.Repeat("c", 64))
	ref, err := name.ParseReference(host + "/api:src-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}

	got, err := Lookup(t.Context(), host+"/api", "src-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if want := digest(t, img).String(); got != want {
		t.Errorf("Lookup of a pushed tag = %q, want %q", got, want)
	}

	for _, tt := range []struct{ name, repo, tag string }{
		{"a missing tag", host + "/api", "src-ffffffffffffffff"},
		{"a repository never pushed", host + "/web", "src-0123456789abcdef"},
	} {
		t.Run(tt.name+" is no digest and no error", func(t *testing.T) {
			got, err := Lookup(t.Context(), tt.repo, tt.tag)
			if err != nil || got != "" {
				t.Errorf("Lookup = %q, %v; want \"\", nil", got, err)
			}
		})
	}
}

func TestLookupFailsWhenTheRegistryCannotBeAsked(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there any more

	got, err := Lookup(t.Context(), host+"/api", "v1")
	if err == nil {
		t.Fatalf("Lookup on a closed registry = %q, nil; want an error", got)
	}
	if got != "" || !strings.Contains(err.Error(), "look up "+host+"/api:v1 in its registry") {
		t.Errorf("Lookup = %q, %v; want an error naming the reference", got, err)
	}

	if _, err := Lookup(t.Context(), host+"/API", "v1"); err == nil || !strings.Contains(err.Error(), "image reference") {
		t.Errorf("Lookup of an invalid reference = %v, want an error naming it", err)
	}
}

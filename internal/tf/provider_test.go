package tf

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mirror lays out a Terraform filesystem mirror under dir holding hashicorp/helm version for
// platform (GOOS_GOARCH), and returns the provider's path. An empty file is enough: only its
// place is looked at.
func mirror(t *testing.T, dir, version, platform string) string {
	t.Helper()
	p := filepath.Join(dir, "registry.terraform.io", "hashicorp", "helm", version, platform, "terraform-provider-helm_v"+version)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

const platform = runtime.GOOS + "_" + runtime.GOARCH

// isolate keeps the user's own Terraform configuration and plugin directories out of a test.
func isolate(t *testing.T) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("TF_CLI_CONFIG_FILE", "")
	t.Setenv(MirrorEnv, "")
}

func TestCLIConfigInstallsHelmFromTheMirrorAndTheRestDirectly(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	mirror(t, dir, "3.1.2", platform)
	t.Setenv(MirrorEnv, dir)
	cache := t.TempDir()

	path, err := CLIConfig(cache)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "terraform", "provider-mirror.tfrc"); path != want {
		t.Errorf("CLIConfig wrote %s, want %s", path, want)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"filesystem_mirror {\n    path    = \"" + dir + "\"\n    include = [\"registry.terraform.io/hashicorp/helm\"]\n  }",
		"direct {\n    exclude = [\"registry.terraform.io/hashicorp/helm\"]\n  }",
		"from " + MirrorEnv,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("CLI configuration lacks %q:\n%s", want, got)
		}
	}

	// The same mirror again leaves the file as it is.
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := CLIConfig(cache)
	if err != nil || again != path {
		t.Fatalf("CLIConfig again = %s, %v", again, err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("an unchanged configuration was rewritten")
	}
	if leftovers, _ := filepath.Glob(path + ".*"); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestCLIConfigNamesARelativeMirrorByItsAbsolutePath(t *testing.T) {
	isolate(t)
	work := t.TempDir()
	mirror(t, filepath.Join(work, "shared", "terraform-mirror"), "3.0.0", platform)
	t.Chdir(work)
	t.Setenv(MirrorEnv, filepath.Join("shared", "terraform-mirror"))
	path, err := CLIConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "path    = \"" + filepath.Join(work, "shared", "terraform-mirror") + "\""; !strings.Contains(string(b), want) {
		t.Errorf("CLI configuration lacks %q:\n%s", want, b)
	}
}

func TestCLIConfigRefusesAMirrorWithoutTheProvider(t *testing.T) {
	tests := []struct {
		name   string
		layout func(t *testing.T, dir string)
	}{
		{"an empty directory", func(t *testing.T, dir string) {}},
		{"a mirror for another platform", func(t *testing.T, dir string) { mirror(t, dir, "3.1.2", "plan9_mips") }},
		{"a mirror of helm provider 2", func(t *testing.T, dir string) { mirror(t, dir, "2.17.0", platform) }},
		{"a directory that does not exist", func(t *testing.T, dir string) { os.Remove(dir) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			dir := t.TempDir()
			tt.layout(t, dir)
			t.Setenv(MirrorEnv, dir)
			cache := t.TempDir()
			path, err := CLIConfig(cache)
			if err == nil {
				t.Fatalf("CLIConfig = %s, want an error", path)
			}
			for _, want := range []string{MirrorEnv + "=" + dir, "holds no registry.terraform.io/hashicorp/helm provider for " + platform, "or unset it"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if entries, _ := os.ReadDir(cache); len(entries) > 0 {
				t.Errorf("a refused mirror left files in the cache: %v", entries)
			}
			if src, ok := ProviderSource(); ok || !strings.Contains(src, MirrorEnv+"="+dir+" holds no hashicorp/helm provider") {
				t.Errorf("ProviderSource = %q, %v; want the mirror refused", src, ok)
			}
		})
	}
}

func TestCLIConfigIsEmptyWithoutAMirror(t *testing.T) {
	isolate(t)
	cache := t.TempDir()
	path, err := CLIConfig(cache)
	if err != nil || path != "" {
		t.Errorf("CLIConfig without %s = %q, %v; want \"\", nil", MirrorEnv, path, err)
	}
	if entries, _ := os.ReadDir(cache); len(entries) > 0 {
		t.Errorf("CLIConfig wrote %v without a mirror", entries)
	}
}

func TestProviderSourceSaysWhereTerraformFindsHelm(t *testing.T) {
	systemMirror := slices.ContainsFunc([]string{"/usr/local/share/terraform/plugins", "/usr/share/terraform/plugins"},
		func(d string) bool { return MirrorHasHelm(d) != "" })

	t.Run("the mirror TF_PROVIDER_MIRROR names", func(t *testing.T) {
		isolate(t)
		dir := t.TempDir()
		p := mirror(t, dir, "3.1.2", platform)
		t.Setenv(MirrorEnv, dir)
		src, ok := ProviderSource()
		if !ok || src != "filesystem mirror "+dir+" ("+MirrorEnv+"): "+p {
			t.Errorf("ProviderSource = %q, %v", src, ok)
		}
	})
	t.Run("an implied local mirror in the home directory", func(t *testing.T) {
		isolate(t)
		home := t.TempDir()
		t.Setenv("HOME", home)
		p := mirror(t, filepath.Join(home, ".terraform.d", "plugins"), "3.0.2", platform)
		src, ok := ProviderSource()
		if !ok || src != "implied local mirror "+p {
			t.Errorf("ProviderSource = %q, %v", src, ok)
		}
	})
	t.Run("the user's CLI configuration", func(t *testing.T) {
		if systemMirror {
			t.Skip("this machine has hashicorp/helm in a system-wide implied mirror, which ProviderSource reports first")
		}
		isolate(t)
		cfg := filepath.Join(t.TempDir(), "terraformrc")
		if err := os.WriteFile(cfg, []byte("# empty\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("TF_CLI_CONFIG_FILE", cfg)
		src, ok := ProviderSource()
		if !ok || src != "the CLI configuration TF_CLI_CONFIG_FILE="+cfg {
			t.Errorf("ProviderSource = %q, %v", src, ok)
		}
	})
	t.Run("only the registry", func(t *testing.T) {
		if systemMirror {
			t.Skip("this machine has hashicorp/helm in a system-wide implied mirror")
		}
		isolate(t)
		t.Setenv("TF_CLI_CONFIG_FILE", filepath.Join(t.TempDir(), "missing"))
		src, ok := ProviderSource()
		if ok || src != "the Terraform registry (no mirror configured)" {
			t.Errorf("ProviderSource = %q, %v", src, ok)
		}
	})
}

// start runs name with args as a child of this process and stops it when the test ends.
func start(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start %s (%v)", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestChildrenNamedFindsTheDirectChildrenByName(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skipf("no /proc (%v): childrenNamed reads it", err)
	}
	sleepPath, err := exec.LookPath("sleep")
	if err != nil {
		t.Skipf("sleep is not on PATH: %v", err)
	}
	child := start(t, sleepPath, "5")
	// A grandchild named sleep is not a child: sh runs it and waits.
	sh := start(t, "sh", "-c", sleepPath+" 5; exit 0")
	// A name with spaces and parentheses, as /proc/<pid>/stat writes it inside (...).
	odd := filepath.Join(t.TempDir(), "a (b) c")
	b, err := os.ReadFile(sleepPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(odd, b, 0o755); err != nil {
		t.Fatal(err)
	}
	oddChild := start(t, odd, "5")

	got := childrenNamed(os.Getpid(), "sleep")
	if !slices.Contains(got, child.Process.Pid) {
		t.Errorf("childrenNamed(me, sleep) = %v, want it to hold %d", got, child.Process.Pid)
	}
	if len(got) != 1 {
		t.Errorf("childrenNamed(me, sleep) = %v, want only the direct child %d", got, child.Process.Pid)
	}
	if got := childrenNamed(os.Getpid(), "a (b) c"); !slices.Equal(got, []int{oddChild.Process.Pid}) {
		t.Errorf("childrenNamed(me, \"a (b) c\") = %v, want [%d]", got, oddChild.Process.Pid)
	}
	if got := childrenNamed(os.Getpid(), "terraform"); len(got) != 0 {
		t.Errorf("childrenNamed(me, terraform) = %v, want none", got)
	}
	// sh starts its sleep when it gets to it: look until it has.
	var shChildren []int
	for range 500 {
		if shChildren = childrenNamed(sh.Process.Pid, "sleep"); len(shChildren) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(shChildren) != 1 {
		t.Errorf("childrenNamed(sh, sleep) = %v, want sh's one sleep", shChildren)
	}
	if got := childrenNamed(os.Getpid(), "sleep"); slices.ContainsFunc(got, func(pid int) bool { return slices.Contains(shChildren, pid) }) {
		t.Errorf("childrenNamed(me, sleep) = %v lists sh's sleep %v, a grandchild", got, shChildren)
	}
	// The child found is the one signalled: stopping it ends it.
	if err := syscall.Kill(child.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if got := childrenNamed(os.Getpid(), "sleep"); slices.Contains(got, child.Process.Pid) {
		t.Errorf("childrenNamed = %v still lists the ended child", got)
	}
}

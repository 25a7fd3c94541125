package tf

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// MirrorEnv names a Terraform filesystem mirror that holds the hashicorp/helm provider, for
// machines that cannot reach the Terraform registry (this project's CI points it at
// ../shared/terraform-mirror).
const MirrorEnv = "TF_PROVIDER_MIRROR"

const helmProvider = "registry.terraform.io/hashicorp/helm"

// CLIConfig returns the Terraform CLI configuration the runs should use: with TF_PROVIDER_MIRROR
// set, a file written under cacheDir that installs hashicorp/helm from that mirror and every
// other provider directly; else "" (the user's own configuration, or the registry). The
// user's ~/.terraformrc is never touched.
func CLIConfig(cacheDir string) (string, error) {
	dir := os.Getenv(MirrorEnv)
	if dir == "" {
		return "", nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if MirrorHasHelm(abs) == "" {
		return "", fmt.Errorf("%s=%s holds no %s provider for %s_%s (want %s/<version>/%s_%s/terraform-provider-helm_*): point it at a Terraform filesystem mirror, or unset it to use the registry",
			MirrorEnv, dir, helmProvider, runtime.GOOS, runtime.GOARCH, helmProvider, runtime.GOOS, runtime.GOARCH)
	}
	content := fmt.Sprintf(`# Written by the delivery toolkit from %s; do not edit.
provider_installation {
  filesystem_mirror {
    path    = %q
    include = [%q]
  }
  direct {
    exclude = [%q]
  }
}
`, MirrorEnv, abs, helmProvider, helmProvider)
	path := filepath.Join(cacheDir, "terraform", "provider-mirror.tfrc")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if old, err := os.ReadFile(path); err == nil && string(old) == content {
		return path, nil
	}
	tmp := path + fmt.Sprintf(".%d", os.Getpid())
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// ProviderSource says where terraform init finds the hashicorp/helm provider: a filesystem
// mirror (TF_PROVIDER_MIRROR), one of Terraform's implied local mirror directories, or the
// user's own CLI configuration. ok is false when none of those holds it and only the
// registry is left, which this project's CI cannot reach.
func ProviderSource() (string, bool) {
	if dir := os.Getenv(MirrorEnv); dir != "" {
		if p := MirrorHasHelm(dir); p != "" {
			return fmt.Sprintf("filesystem mirror %s (%s): %s", dir, MirrorEnv, p), true
		}
		return fmt.Sprintf("%s=%s holds no hashicorp/helm provider", MirrorEnv, dir), false
	}
	home, _ := os.UserHomeDir()
	for _, dir := range []string{
		filepath.Join(home, ".terraform.d", "plugins"),
		filepath.Join(home, ".local", "share", "terraform", "plugins"),
		"/usr/local/share/terraform/plugins",
		"/usr/share/terraform/plugins",
	} {
		if p := MirrorHasHelm(dir); p != "" {
			return "implied local mirror " + p, true
		}
	}
	if cfg := os.Getenv("TF_CLI_CONFIG_FILE"); cfg != "" {
		if _, err := os.Stat(cfg); err == nil {
			return "the CLI configuration TF_CLI_CONFIG_FILE=" + cfg, true
		}
	}
	return "the Terraform registry (no mirror configured)", false
}

// MirrorHasHelm returns the path of a hashicorp/helm v3 provider for this platform in a
// filesystem mirror directory, or "".
func MirrorHasHelm(dir string) string {
	matches, _ := filepath.Glob(filepath.Join(dir, "registry.terraform.io", "hashicorp", "helm", "3.*",
		runtime.GOOS+"_"+runtime.GOARCH, "terraform-provider-helm*"))
	if len(matches) == 0 {
		return ""
	}
	return matches[0]
}

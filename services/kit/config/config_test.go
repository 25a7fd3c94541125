package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadAppliesDefaultsToAnEmptyEnvironment(t *testing.T) {
	cfg, err := Load(nil)
	if err != nil {
		t.Fatalf("Load(nil): %v", err)
	}
	if cfg.Port != DefaultPort || cfg.LogLevel != slog.LevelInfo || cfg.Environment != DefaultEnvironment ||
		cfg.ShutdownDrain != DefaultShutdownDrain || cfg.ShutdownTimeout != DefaultShutdownTimeout {
		t.Errorf("defaults: got %+v", cfg)
	}
	if cfg.Files == nil || cfg.Env == nil || cfg.Secrets == nil {
		t.Errorf("maps must be non-nil so /config renders {} rather than null: %+v", cfg)
	}
}

func TestLoadReadsEveryVariable(t *testing.T) {
	cfg, err := Load([]string{
		"PORT=18081", "LOG_LEVEL=DEBUG", "APP_ENV=staging", "APP_RELEASE=api-staging",
		"SHUTDOWN_DRAIN=250ms", "SHUTDOWN_TIMEOUT=3s", "APP_FEATURE_X=on", "HOME=/root",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Port: 18081, LogLevel: slog.LevelDebug, Environment: "staging", Release: "api-staging",
		ShutdownDrain: 250 * time.Millisecond, ShutdownTimeout: 3 * time.Second}
	if cfg.Port != want.Port || cfg.LogLevel != want.LogLevel || cfg.Environment != want.Environment ||
		cfg.Release != want.Release || cfg.ShutdownDrain != want.ShutdownDrain || cfg.ShutdownTimeout != want.ShutdownTimeout {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
	if len(cfg.Env) != 1 || cfg.Env["APP_FEATURE_X"] != "on" {
		t.Errorf("Env shows only APP_ keys other than APP_ENV and APP_RELEASE: got %v", cfg.Env)
	}
}

func TestLoadRejectsBadInputNamingTheVariableAndTheFix(t *testing.T) {
	unreadable := t.TempDir()
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(unreadable, 0o755) })
	tooBig := t.TempDir()
	if err := os.WriteFile(filepath.Join(tooBig, "blob"), make([]byte, MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		env     string
		wantVar string
		want    string
	}{
		{"a port that is not a number", "PORT=abc", EnvPort, "not a number"},
		{"port zero", "PORT=0", EnvPort, "port out of range"},
		{"a port above 65535", "PORT=65536", EnvPort, "port out of range"},
		{"a negative port", "PORT=-1", EnvPort, "port out of range"},
		{"an unknown log level", "LOG_LEVEL=verbose", EnvLogLevel, "use one of debug, info, warn, error"},
		{"a drain without unit", "SHUTDOWN_DRAIN=5", EnvShutdownDrain, "not a duration"},
		{"a negative timeout", "SHUTDOWN_TIMEOUT=-1s", EnvShutdownTimeout, "negative duration"},
		{"a missing config dir", "CONFIG_DIR=/does/not/exist", EnvConfigDir, "no such file or directory"},
		{"a missing secrets dir", "SECRETS_DIR=/does/not/exist", EnvSecretsDir, "no such file or directory"},
		{"a file instead of a dir", "CONFIG_DIR=/etc/hostname", EnvConfigDir, "cannot read directory"},
		{"a config file over 1 MiB", "CONFIG_DIR=" + tooBig, EnvConfigDir, "larger than"},
		{"a size cap that is not a size", "CONFIG_DIR_MAX_BYTES=lots", EnvConfigMaxBytes, "not a size"},
		{"a size cap of zero", "CONFIG_DIR_MAX_BYTES=0", EnvConfigMaxBytes, "size out of range"},
		{"a size cap with an unknown unit", "CONFIG_DIR_MAX_BYTES=5MB", EnvConfigMaxBytes, "not a size"},
		{"a redact name that is not a word", "REDACT_NAMES=LICENSE,a b", EnvRedactNames, "not a word"},
	}
	if os.Geteuid() != 0 { // root reads anything, so the mode-000 case only bites for other users
		tests = append(tests, struct{ name, env, wantVar, want string }{"an unreadable dir", "SECRETS_DIR=" + unreadable, EnvSecretsDir, "permission denied"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]string{tt.env})
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load(%q) = %v, want a *config.Error", tt.env, err)
			}
			if cerr.Var != tt.wantVar || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%q) = %q, want it to name %s and say %q", tt.env, err, tt.wantVar, tt.want)
			}
			if cerr.Fix == "" {
				t.Errorf("Load(%q): error has no fix: %q", tt.env, err)
			}
		})
	}
}

func TestLoadRefusesOverlappingConfigAndSecretsDirs(t *testing.T) {
	root := t.TempDir()
	secrets := filepath.Join(root, "secrets")
	mustMkdir(t, filepath.Join(secrets, "nested"))
	mustWrite(t, filepath.Join(secrets, "db-password"), "hunter2")
	mustSymlink(t, secrets, filepath.Join(root, "link-to-secrets"))
	tests := []struct {
		name, configDir, secretsDir, how string
	}{
		{"the same directory", secrets, secrets, "is the same directory as"},
		{"the same directory spelt differently", secrets + "/./", secrets, "is the same directory as"},
		{"the same directory through a symbolic link", filepath.Join(root, "link-to-secrets"), secrets, "is the same directory as"},
		{"the secrets inside the config", root, secrets, "contains"},
		{"the config inside the secrets", filepath.Join(secrets, "nested"), secrets, "is inside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load([]string{"CONFIG_DIR=" + tt.configDir, "SECRETS_DIR=" + tt.secretsDir})
			var cerr *Error
			if !errors.As(err, &cerr) || cerr.Var != EnvConfigDir {
				t.Fatalf("Load = %v, want a *config.Error on %s", err, EnvConfigDir)
			}
			for _, want := range []string{EnvConfigDir + "=", EnvSecretsDir + "=", tt.how, "separate directories"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if len(cfg.Files) != 0 || len(cfg.Secrets) != 0 {
				t.Errorf("overlapping dirs were read anyway: files %v", cfg.Files)
			}
		})
	}
	t.Run("sibling directories with a common prefix are fine", func(t *testing.T) {
		mustMkdir(t, secrets+"-config")
		if _, err := Load([]string{"CONFIG_DIR=" + secrets + "-config", "SECRETS_DIR=" + secrets}); err != nil {
			t.Errorf("Load = %v", err)
		}
	})
}

func TestLoadCapsTheTotalSizeOfTheMountedFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a", "b", "c"} {
		mustWrite(t, filepath.Join(dir, name), strings.Repeat("x", 1000))
	}
	tests := []struct {
		name, limit string
		wantErr     bool
	}{
		{"the default cap", "", false},
		{"a cap in bytes that fits", "3003", false},
		{"a cap one byte short", "3002", true},
		{"a cap in KiB that fits", "3Ki", false},
		{"a cap in KiB too small", "2Ki", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := []string{"CONFIG_DIR=" + dir}
			if tt.limit != "" {
				env = append(env, "CONFIG_DIR_MAX_BYTES="+tt.limit)
			}
			cfg, err := Load(env)
			if !tt.wantErr {
				if err != nil || len(cfg.Files) != 3 {
					t.Fatalf("Load = %v, %d files", err, len(cfg.Files))
				}
				return
			}
			var cerr *Error
			if !errors.As(err, &cerr) || cerr.Var != EnvConfigDir || !strings.Contains(err.Error(), "add up to more than") ||
				!strings.Contains(cerr.Fix, EnvConfigMaxBytes) {
				t.Errorf("Load = %v, want CONFIG_DIR's total refused, naming %s in the fix", err, EnvConfigMaxBytes)
			}
		})
	}
	t.Run("the cap applies to SECRETS_DIR too", func(t *testing.T) {
		_, err := Load([]string{"SECRETS_DIR=" + dir, "CONFIG_DIR_MAX_BYTES=100"})
		var cerr *Error
		if !errors.As(err, &cerr) || cerr.Var != EnvSecretsDir {
			t.Errorf("Load = %v, want SECRETS_DIR's total refused", err)
		}
	})
	if cfg, err := Load(nil); err != nil || cfg.MaxConfigBytes != DefaultConfigMaxBytes {
		t.Errorf("default cap = %d (%v), want %d", cfg.MaxConfigBytes, err, DefaultConfigMaxBytes)
	}
}

func TestLoadKeepsBinaryFilesByteForByte(t *testing.T) {
	dir, secrets := t.TempDir(), t.TempDir()
	blob := []byte{0xff, 0xfe, 'h', 0, 'i', '\n'}
	latin1 := []byte("caf\xe9\n")
	mustWrite(t, filepath.Join(dir, "blob.bin"), string(blob))
	mustWrite(t, filepath.Join(dir, "latin1.txt"), string(latin1))
	mustWrite(t, filepath.Join(dir, "utf8.txt"), "café\n")
	mustWrite(t, filepath.Join(secrets, "keystore"), string(blob))
	cfg, err := Load([]string{"CONFIG_DIR=" + dir, "SECRETS_DIR=" + secrets})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.BinaryFiles["blob.bin"]; string(got) != string(blob) {
		t.Errorf("BinaryFiles[blob.bin] = %q, want %q", got, blob)
	}
	if got := cfg.BinaryFiles["latin1.txt"]; string(got) != string(latin1) {
		t.Errorf("a non-UTF-8 file = %q, want it kept as bytes %q", got, latin1)
	}
	if cfg.Files["utf8.txt"] != "café" || len(cfg.Files) != 1 {
		t.Errorf("Files = %q, want only the UTF-8 text file", cfg.Files)
	}
	if got := cfg.Secrets["keystore"].Reveal(); got != string(blob) {
		t.Errorf("a binary secret = %q, want it byte for byte, trailing newline included", got)
	}
}

func TestLoadRedactsAppVariablesWithTheOperatorsNames(t *testing.T) {
	cfg, err := Load([]string{"REDACT_NAMES=license", "APP_LICENSE=abc", "APP_DATABASE_URL=postgres://u:hunter2@db/app", "APP_AUTHOR=ada"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"APP_LICENSE": Redacted, "APP_DATABASE_URL": "postgres://u:[REDACTED]@db/app", "APP_AUTHOR": "ada"}
	for k, v := range want {
		if cfg.Env[k] != v {
			t.Errorf("Env[%s] = %q, want %q", k, cfg.Env[k], v)
		}
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	_, err := Load([]string{"PORT=abc", "LOG_LEVEL=loud", "SHUTDOWN_DRAIN=x"})
	for _, v := range []string{EnvPort, EnvLogLevel, EnvShutdownDrain} {
		if err == nil || !strings.Contains(err.Error(), v+"=") {
			t.Errorf("error %q does not name %s", err, v)
		}
	}
}

// A mounted ConfigMap is a set of symlinks into a timestamped dir behind "..data".
func TestLoadReadsAMountedConfigMapLayout(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_11_25_22_00_00.000000001")
	mustMkdir(t, ts)
	mustWrite(t, filepath.Join(ts, "greeting"), "hello\n")
	mustWrite(t, filepath.Join(ts, "limits.json"), `{"max":3}`)
	mustSymlink(t, filepath.Base(ts), filepath.Join(dir, "..data"))
	mustSymlink(t, "..data/greeting", filepath.Join(dir, "greeting"))
	mustSymlink(t, "..data/limits.json", filepath.Join(dir, "limits.json"))
	mustMkdir(t, filepath.Join(dir, "subdir"))

	cfg, err := Load([]string{"CONFIG_DIR=" + dir})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"greeting": "hello", "limits.json": `{"max":3}`}
	if len(cfg.Files) != len(want) {
		t.Fatalf("Files = %v, want %v", cfg.Files, want)
	}
	for k, v := range want {
		if cfg.Files[k] != v {
			t.Errorf("Files[%q] = %q, want %q", k, cfg.Files[k], v)
		}
	}
}

func TestLoadKeepsSecretsAsRedactingValues(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "db-password"), "hunter2")
	cfg, err := Load([]string{"SECRETS_DIR=" + dir, "APP_DB_PASSWORD=hunter3", "APP_API_TOKEN=t0k"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Secrets["db-password"].Reveal(); got != "hunter2" {
		t.Errorf("Reveal() = %q, want the file's content", got)
	}
	for _, k := range []string{"APP_DB_PASSWORD", "APP_API_TOKEN"} {
		if cfg.Env[k] != Redacted {
			t.Errorf("Env[%s] = %q, want it redacted because its name looks like a credential", k, cfg.Env[k])
		}
	}
}

func TestLooksSecret(t *testing.T) {
	for name, want := range map[string]bool{
		"APP_DB_PASSWORD": true, "APP_GITHUB_TOKEN": true, "APP_CLIENT_SECRET": true, "APP_API_KEY": true,
		"APP_FEATURE": false, "APP_REGION": false, "APP_KEYBOARD_LAYOUT": false,
	} {
		if got := LooksSecret(name); got != want {
			t.Errorf("LooksSecret(%q) = %v, want %v", name, got, want)
		}
	}
}

// FuzzLoad: whatever the environment holds, Load either fails with a *config.Error or returns a
// configuration that is in range; it never panics.
func FuzzLoad(f *testing.F) {
	for _, seed := range [][4]string{
		{"8080", "info", "5s", "10s"}, {"abc", "loud", "5", "-1s"}, {"0", "", "", ""}, {"65535", "DEBUG", "1h", "0"},
		{"65536", "warn ", " 1ms", "1e3s"}, {"+80", "error", "9223372036854775807ns", "1.5m"}, {"0x50", "Warn", "", "∞"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	f.Fuzz(func(t *testing.T, port, level, drain, timeout string) {
		cfg, err := Load([]string{"PORT=" + port, "LOG_LEVEL=" + level, "SHUTDOWN_DRAIN=" + drain, "SHUTDOWN_TIMEOUT=" + timeout})
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if cfg.Port < 1 || cfg.Port > 65535 || cfg.ShutdownDrain < 0 || cfg.ShutdownTimeout < 0 {
			t.Fatalf("accepted out-of-range config %+v", cfg)
		}
	})
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

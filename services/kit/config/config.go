// Package config loads a service's configuration from its environment and from the
// files that Kubernetes mounts (a ConfigMap directory and a Secret directory), validates it,
// and keeps secret values out of every rendering of it.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The environment variables the service reads. The chart, the tests and the docs use these names.
const (
	EnvPort            = "PORT"
	EnvLogLevel        = "LOG_LEVEL"
	EnvEnvironment     = "APP_ENV"
	EnvRelease         = "APP_RELEASE"
	EnvConfigDir       = "CONFIG_DIR"
	EnvSecretsDir      = "SECRETS_DIR"
	EnvShutdownDrain   = "SHUTDOWN_DRAIN"
	EnvShutdownTimeout = "SHUTDOWN_TIMEOUT"

	// AppPrefix marks the environment variables that /config shows.
	AppPrefix = "APP_"
)

// Defaults, shared with the chart tests so that probes and grace periods agree with the service.
const (
	DefaultPort            = 8080
	DefaultShutdownDrain   = 5 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultEnvironment     = "local"

	// MaxFileSize bounds one mounted config or secret file; Kubernetes caps a ConfigMap at 1 MiB.
	MaxFileSize = 1 << 20
)

// Config is the validated configuration of one service process.
type Config struct {
	Port            int
	LogLevel        slog.Level
	Environment     string
	Release         string
	ConfigDir       string
	SecretsDir      string
	ShutdownDrain   time.Duration
	ShutdownTimeout time.Duration

	// Files holds the mounted config directory: file name -> content.
	Files map[string]string
	// Env holds the APP_-prefixed environment variables (other than APP_ENV and APP_RELEASE).
	// Values whose names look like credentials are stored as redacted.
	Env map[string]string
	// Secrets holds the mounted secret directory. A Secret never renders its value.
	Secrets map[string]Secret
}

// Error is a configuration problem: which variable, what is wrong, and how to fix it.
type Error struct {
	Var   string
	Value string
	Cause string
	Fix   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s=%q: %s; %s", e.Var, e.Value, e.Cause, e.Fix)
}

// Load reads and validates the configuration from environ ("KEY=value" pairs, as os.Environ
// returns them) and from the directories it names. All problems are reported together.
func Load(environ []string) (Config, error) {
	env := toMap(environ)
	cfg := Config{
		Environment: valueOr(env[EnvEnvironment], DefaultEnvironment),
		Release:     env[EnvRelease],
		ConfigDir:   env[EnvConfigDir],
		SecretsDir:  env[EnvSecretsDir],
	}
	var errs []error
	var err error
	if cfg.Port, err = parsePort(env[EnvPort]); err != nil {
		errs = append(errs, err)
	}
	if cfg.LogLevel, err = parseLogLevel(env[EnvLogLevel]); err != nil {
		errs = append(errs, err)
	}
	if cfg.ShutdownDrain, err = parseDuration(EnvShutdownDrain, env[EnvShutdownDrain], DefaultShutdownDrain); err != nil {
		errs = append(errs, err)
	}
	if cfg.ShutdownTimeout, err = parseDuration(EnvShutdownTimeout, env[EnvShutdownTimeout], DefaultShutdownTimeout); err != nil {
		errs = append(errs, err)
	}
	if cfg.Files, err = readDir(EnvConfigDir, cfg.ConfigDir); err != nil {
		errs = append(errs, err)
	}
	secretFiles, err := readDir(EnvSecretsDir, cfg.SecretsDir)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Secrets = make(map[string]Secret, len(secretFiles))
	for k, v := range secretFiles {
		cfg.Secrets[k] = Secret(v)
	}
	cfg.Env = appEnv(env)
	return cfg, errors.Join(errs...)
}

func toMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func valueOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func parsePort(v string) (int, error) {
	if v == "" {
		return DefaultPort, nil
	}
	fix := fmt.Sprintf("set %s to a TCP port between 1 and 65535, for example %s=%d", EnvPort, EnvPort, DefaultPort)
	p, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, &Error{Var: EnvPort, Value: v, Cause: "not a number", Fix: fix}
	}
	if p < 1 || p > 65535 {
		return 0, &Error{Var: EnvPort, Value: v, Cause: "port out of range", Fix: fix}
	}
	return p, nil
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}

func parseLogLevel(v string) (slog.Level, error) {
	if v == "" {
		return slog.LevelInfo, nil
	}
	if l, ok := logLevels[strings.ToLower(strings.TrimSpace(v))]; ok {
		return l, nil
	}
	return 0, &Error{Var: EnvLogLevel, Value: v, Cause: "unknown log level", Fix: "use one of debug, info, warn, error"}
}

func parseDuration(name, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	fix := fmt.Sprintf("use a Go duration of 0 or more, for example %s=%s", name, def)
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, &Error{Var: name, Value: v, Cause: "not a duration", Fix: fix}
	}
	if d < 0 {
		return 0, &Error{Var: name, Value: v, Cause: "negative duration", Fix: fix}
	}
	return d, nil
}

// readDir reads the regular files at the top of a mounted ConfigMap or Secret directory.
// Kubernetes' own bookkeeping entries ("..data", "..2026_...") are skipped; the visible
// names are symlinks into them, which are followed. An empty dir means "none".
func readDir(name, dir string) (map[string]string, error) {
	files := map[string]string{}
	if dir == "" {
		return files, nil
	}
	fix := fmt.Sprintf("point %s at a readable directory, or unset it", name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &Error{Var: name, Value: dir, Cause: "cannot read directory: " + causeOf(err), Fix: fix}
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		info, err := os.Stat(path)
		if err != nil {
			return nil, &Error{Var: name, Value: dir, Cause: fmt.Sprintf("cannot read %s: %s", e.Name(), causeOf(err)), Fix: fix}
		}
		if !info.Mode().IsRegular() {
			continue
		}
		if info.Size() > MaxFileSize {
			return nil, &Error{Var: name, Value: dir, Cause: fmt.Sprintf("%s is larger than %d bytes", e.Name(), MaxFileSize), Fix: "keep each mounted file under 1 MiB"}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, &Error{Var: name, Value: dir, Cause: fmt.Sprintf("cannot read %s: %s", e.Name(), causeOf(err)), Fix: fix}
		}
		files[e.Name()] = strings.TrimRight(string(b), "\r\n")
	}
	return files, nil
}

// causeOf drops the path that os errors repeat, since Error already names it.
func causeOf(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func appEnv(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if !strings.HasPrefix(k, AppPrefix) || k == EnvEnvironment || k == EnvRelease {
			continue
		}
		if LooksSecret(k) {
			v = Redacted
		}
		out[k] = v
	}
	return out
}

// secretWords mark an environment variable name as a credential. Secrets belong in SECRETS_DIR;
// this is the safety net for one that was passed as APP_DB_PASSWORD anyway.
var secretWords = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY", "API_KEY", "PRIVATE", "CREDENTIAL"}

// LooksSecret reports whether an environment variable name suggests a credential.
func LooksSecret(name string) bool {
	upper := strings.ToUpper(name)
	for _, w := range secretWords {
		if strings.Contains(upper, w) {
			return true
		}
	}
	return false
}

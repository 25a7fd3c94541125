// Package config loads a service's configuration from its environment and from the
// files that Kubernetes mounts (a ConfigMap directory and a Secret directory), validates it,
// and keeps secret values out of every rendering of it.
//
// The variables, all optional:
//
//	PORT                  TCP port to serve on (default 8080)
//	LOG_LEVEL             debug, info, warn or error (default info)
//	APP_ENV, APP_RELEASE  the environment and the release, shown by /config
//	APP_*                 shown by /config, redacted where they hold credentials (see Redactor)
//	CONFIG_DIR            a mounted ConfigMap: its files are shown by /config
//	SECRETS_DIR           a mounted Secret: its file names are shown, never their values
//	CONFIG_DIR_MAX_BYTES  the most that the files of CONFIG_DIR, and those of SECRETS_DIR, may
//	                      add up to: bytes, or with a suffix Ki, Mi or Gi (default 64Mi)
//	REDACT_NAMES          comma-separated words that mark more names as credentials, matched
//	                      case-insensitively anywhere in a name (REDACT_NAMES=LICENSE,PARTNER_ID)
//	SHUTDOWN_DRAIN        how long readiness is 503 before the server stops (default 5s)
//	SHUTDOWN_TIMEOUT      how long in-flight requests get to finish after that (default 10s)
//
// CONFIG_DIR and SECRETS_DIR must not overlap (the same directory, or one inside the other):
// Load refuses that, since the secret files would show as configuration. One file may hold
// at most 1 MiB (MaxFileSize). A file that is not UTF-8 text (invalid UTF-8, or a NUL byte)
// is kept byte for byte in BinaryFiles and shown base64-encoded under "configBase64", or as
// [REDACTED] when Redactor.HidesBinary finds, or cannot rule out, a credential in it (a
// Latin-1 or UTF-16 file with a password in it, a keystore, an archive).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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
	EnvConfigMaxBytes  = "CONFIG_DIR_MAX_BYTES"
	EnvRedactNames     = "REDACT_NAMES"

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
	// DefaultConfigMaxBytes bounds the files of CONFIG_DIR, and those of SECRETS_DIR, together
	// (names and contents), unless CONFIG_DIR_MAX_BYTES says otherwise.
	DefaultConfigMaxBytes = 64 << 20
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

	// MaxConfigBytes is the cap on the total size of CONFIG_DIR, and of SECRETS_DIR.
	MaxConfigBytes int64

	// Files holds the text files of the mounted config directory: file name -> content, with
	// its trailing line breaks trimmed. Renderings pass it through Redactor.Value.
	Files map[string]string
	// BinaryFiles holds the files of the config directory that are not UTF-8 text, byte for byte.
	// Renderings show them base64-encoded, unless Redactor.HidesBinary.
	BinaryFiles map[string][]byte
	// Env holds the APP_-prefixed environment variables (other than APP_ENV and APP_RELEASE),
	// as Redactor.Value shows them: credentials are stored redacted.
	Env map[string]string
	// Secrets holds the mounted secret directory. A Secret never renders its value.
	Secrets map[string]Secret
	// Redactor is the redaction rules, with the names of REDACT_NAMES.
	Redactor Redactor
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
	if cfg.MaxConfigBytes, err = parseSize(EnvConfigMaxBytes, env[EnvConfigMaxBytes], DefaultConfigMaxBytes); err != nil {
		errs = append(errs, err)
		cfg.MaxConfigBytes = DefaultConfigMaxBytes
	}
	names, err := parseNames(env[EnvRedactNames])
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Redactor = NewRedactor(names)

	cfg.Files, cfg.BinaryFiles, cfg.Secrets = map[string]string{}, map[string][]byte{}, map[string]Secret{}
	if err := checkOverlap(cfg.ConfigDir, cfg.SecretsDir); err != nil {
		// Neither is read: the secrets must not be loaded as configuration.
		errs = append(errs, err)
	} else {
		files, err := readDir(EnvConfigDir, cfg.ConfigDir, cfg.MaxConfigBytes)
		if err != nil {
			errs = append(errs, err)
		}
		for k, b := range files {
			if isText(b) {
				cfg.Files[k] = strings.TrimRight(string(b), "\r\n")
			} else {
				cfg.BinaryFiles[k] = b
			}
		}
		secretFiles, err := readDir(EnvSecretsDir, cfg.SecretsDir, cfg.MaxConfigBytes)
		if err != nil {
			errs = append(errs, err)
		}
		for k, b := range secretFiles {
			if isText(b) { // a binary secret (a keystore) is kept byte for byte
				b = bytes.TrimRight(b, "\r\n")
			}
			cfg.Secrets[k] = Secret(b)
		}
	}
	cfg.Env = appEnv(env, cfg.Redactor)
	return cfg, errors.Join(errs...)
}

// isText reports whether a file is shown as text: valid UTF-8 without NUL bytes.
func isText(b []byte) bool { return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 }

// checkOverlap refuses a CONFIG_DIR and a SECRETS_DIR that are the same directory, or one
// inside the other (symbolic links resolved): the secret files would show as configuration.
func checkOverlap(configDir, secretsDir string) error {
	if configDir == "" || secretsDir == "" {
		return nil
	}
	c, s := resolve(configDir), resolve(secretsDir)
	inside := func(dir, parent string) bool {
		rel, err := filepath.Rel(parent, dir)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
	}
	how := ""
	switch {
	case c == s:
		how = "is the same directory as"
	case inside(s, c):
		how = "contains"
	case inside(c, s):
		how = "is inside"
	default:
		return nil
	}
	return &Error{Var: EnvConfigDir, Value: configDir,
		Cause: fmt.Sprintf("%s %s=%q, so the secret files would be shown as configuration", how, EnvSecretsDir, secretsDir),
		Fix:   fmt.Sprintf("mount the ConfigMap and the Secret at separate directories, neither inside the other, and point %s and %s at them", EnvConfigDir, EnvSecretsDir)}
}

// resolve is dir made absolute and clean, with its symbolic links followed where it exists.
func resolve(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return filepath.Clean(dir)
}

var sizeUnits = map[string]int64{"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}

// parseSize reads a byte count: digits, optionally followed by Ki, Mi or Gi.
func parseSize(name, v string, def int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	fix := fmt.Sprintf("use a positive number of bytes, optionally with Ki, Mi or Gi, for example %s=%dMi", name, def>>20)
	t := strings.TrimSpace(v)
	digits := strings.TrimRight(t, "KMGi")
	unit, ok := sizeUnits[t[len(digits):]]
	n, err := strconv.ParseInt(digits, 10, 64)
	if !ok || err != nil {
		return 0, &Error{Var: name, Value: v, Cause: "not a size", Fix: fix}
	}
	if n <= 0 || n > (1<<62)/unit {
		return 0, &Error{Var: name, Value: v, Cause: "size out of range", Fix: fix}
	}
	return n * unit, nil
}

var nameWord = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// parseNames reads REDACT_NAMES: comma-separated words of letters, digits and underscores.
func parseNames(v string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !nameWord.MatchString(n) {
			return nil, &Error{Var: EnvRedactNames, Value: v, Cause: fmt.Sprintf("%q is not a word of letters, digits and underscores", n),
				Fix: fmt.Sprintf("list words separated by commas, for example %s=LICENSE,PARTNER_ID", EnvRedactNames)}
		}
		out = append(out, n)
	}
	return out, nil
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
// names are symlinks into them, which are followed. An empty dir means "none". The names and
// contents of the files may add up to at most limit bytes.
func readDir(name, dir string, limit int64) (map[string][]byte, error) {
	files := map[string][]byte{}
	if dir == "" {
		return files, nil
	}
	fix := fmt.Sprintf("point %s at a readable directory, or unset it", name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &Error{Var: name, Value: dir, Cause: "cannot read directory: " + causeOf(err), Fix: fix}
	}
	var total int64
	tooMuch := func() error {
		return &Error{Var: name, Value: dir, Cause: fmt.Sprintf("its files add up to more than %d bytes", limit),
			Fix: fmt.Sprintf("mount fewer or smaller files, or raise %s (now %d)", EnvConfigMaxBytes, limit)}
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
		tooBig := &Error{Var: name, Value: dir, Cause: fmt.Sprintf("%s is larger than %d bytes", e.Name(), MaxFileSize), Fix: "keep each mounted file under 1 MiB"}
		if info.Size() > MaxFileSize {
			return nil, tooBig
		}
		if total += int64(len(e.Name())) + info.Size(); total > limit {
			return nil, tooMuch()
		}
		b, err := readFile(path, MaxFileSize)
		if err != nil {
			return nil, &Error{Var: name, Value: dir, Cause: fmt.Sprintf("cannot read %s: %s", e.Name(), causeOf(err)), Fix: fix}
		}
		if len(b) > MaxFileSize { // it grew since Stat
			return nil, tooBig
		}
		if total += int64(len(b)) - info.Size(); total > limit {
			return nil, tooMuch()
		}
		files[e.Name()] = b
	}
	return files, nil
}

// readFile reads at most limit+1 bytes of path, so that a file that grows cannot make it read
// without bound.
func readFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// causeOf drops the path that os errors repeat, since Error already names it.
func causeOf(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func appEnv(env map[string]string, r Redactor) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if !strings.HasPrefix(k, AppPrefix) || k == EnvEnvironment || k == EnvRelease {
			continue
		}
		out[k] = r.Value(k, v)
	}
	return out
}

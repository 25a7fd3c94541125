// Package config loads a service's configuration from its environment and from the
// files that Kubernetes mounts (a ConfigMap directory and a Secret directory), validates it,
// and decides what of it GET /config may show.
//
// The variables, all optional:
//
//	PORT                   TCP port to serve on (default 8080)
//	LOG_LEVEL              debug, info, warn or error (default info)
//	APP_ENV, APP_RELEASE   the environment and the release, shown by /config
//	APP_*                  shown by /config as the view says (below)
//	CONFIG_DIR             a mounted ConfigMap: its files are shown by /config as the view says
//	SECRETS_DIR            a mounted Secret: its file names are shown, never their values
//	CONFIG_VIEW            fingerprints (the default) or redacted: how /config shows values
//	CONFIG_PUBLIC          comma-separated keys (APP_* names, CONFIG_DIR file names) whose values
//	                       the fingerprints view shows; the service adds its own (kit.Service.Public)
//	CONFIG_VIEW_MAX_BYTES  the most bytes GET /config answers (default 1Mi, at least 16Ki)
//	CONFIG_DIR_MAX_BYTES   the most that the files of CONFIG_DIR, and those of SECRETS_DIR, may
//	                       add up to: bytes, or with a suffix Ki, Mi or Gi (default 64Mi)
//	REDACT_NAMES           comma-separated words that mark more names as credentials, matched
//	                       case-insensitively anywhere in a name (REDACT_NAMES=LICENSE,PARTNER_ID)
//	SHUTDOWN_DRAIN         how long readiness is 503 before the server stops (default 5s)
//	SHUTDOWN_TIMEOUT       how long in-flight requests get to finish after that (default 10s)
//
// # What /config shows: the views
//
// The fingerprints view (CONFIG_VIEW=fingerprints, the default, and what the chart sets in
// staging and prod) fails closed: a value is shown only when its key is declared public, in
// code (kit.Service.Public) or in CONFIG_PUBLIC (the chart's configView.public). Every other
// value, and every secret, is shown as a fingerprint and its length (see Fingerprinter): enough
// to tell whether two pods, two revisions or two environments hold the same value, and of no
// use to guess it. Public values still go through the Redactor, a second line. The kit's own
// settings (environment, release, version, log level, port) are public.
//
// The redacted view (CONFIG_VIEW=redacted, what the chart sets in dev and test) shows every value
// through the Redactor, as the kit always did, and secrets as [REDACTED]. Redaction recognises
// credentials by name and shape, so it fails open on forms it does not know: it is for
// environments whose values are not worth protecting.
//
// # Files
//
// CONFIG_DIR and SECRETS_DIR must not overlap (the same directory, or one inside the other):
// Load refuses that, since the secret files would show as configuration. A file is judged by
// where it is, with its symbolic links resolved: a file of CONFIG_DIR that resolves outside
// CONFIG_DIR (into SECRETS_DIR, or anywhere else) is a secret, kept in LinkedSecrets, and never
// shown, in either view. One file may hold at most MaxFileSize bytes. A file that is not UTF-8
// text (invalid UTF-8, or a NUL byte) is kept byte for byte in BinaryFiles and shown
// base64-encoded under "configBase64" when it may be shown, or as [REDACTED] when
// Redactor.HidesBinary finds, or cannot rule out, a credential in it.
//
// Loading reads each file once and keeps it; its cost is linear in the size of the files.
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
	EnvView            = "CONFIG_VIEW"
	EnvPublic          = "CONFIG_PUBLIC"
	EnvViewMaxBytes    = "CONFIG_VIEW_MAX_BYTES"

	// AppPrefix marks the environment variables that /config shows.
	AppPrefix = "APP_"
)

// Defaults, shared with the chart tests so that probes and grace periods agree with the service.
const (
	DefaultPort            = 8080
	DefaultShutdownDrain   = 5 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultEnvironment     = "local"

	// MaxFileSize bounds one mounted config or secret file. Kubernetes caps a ConfigMap at 1 MiB,
	// but CONFIG_DIR may be any volume, so a file of a few MB loads: CONFIG_DIR_MAX_BYTES bounds
	// the total.
	MaxFileSize = 8 << 20
	// DefaultConfigMaxBytes bounds the files of CONFIG_DIR, and those of SECRETS_DIR, together
	// (names and contents), unless CONFIG_DIR_MAX_BYTES says otherwise.
	DefaultConfigMaxBytes = 64 << 20

	// DefaultViewMaxBytes is the most bytes GET /config answers, unless CONFIG_VIEW_MAX_BYTES
	// says otherwise; MinViewMaxBytes is the least it may say.
	DefaultViewMaxBytes = 1 << 20
	MinViewMaxBytes     = 16 << 10
)

// View is how GET /config shows the values of the configuration.
type View string

// The views. The zero View is ViewFingerprints: a Config built by hand fails closed too.
const (
	// ViewFingerprints shows public values, and a fingerprint and the length of every other one.
	ViewFingerprints View = "fingerprints"
	// ViewRedacted shows every value through the Redactor, and secrets as Redacted.
	ViewRedacted View = "redacted"
)

// Normal is v with the zero View read as ViewFingerprints.
func (v View) Normal() View {
	if v == ViewRedacted {
		return ViewRedacted
	}
	return ViewFingerprints
}

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
	// LinkedSecrets holds the files of the config directory that resolve outside it (a symbolic
	// link into SECRETS_DIR, or anywhere else): secrets, judged by where they point. They are
	// listed under "config" and never shown.
	LinkedSecrets map[string]Secret
	// Env holds the APP_-prefixed environment variables (other than APP_ENV and APP_RELEASE),
	// as Redactor.Value shows them: credentials are stored redacted. EnvValues holds the same
	// variables as they are, for the fingerprints; a Secret never renders its value.
	Env       map[string]string
	EnvValues map[string]Secret
	// Secrets holds the mounted secret directory. A Secret never renders its value.
	Secrets map[string]Secret
	// Redactor is the redaction rules, with the names of REDACT_NAMES.
	Redactor Redactor

	// View is how /config shows values (CONFIG_VIEW); Public are the keys whose values the
	// fingerprints view shows (CONFIG_PUBLIC, and the service's own); ViewMaxBytes bounds the
	// size of /config (CONFIG_VIEW_MAX_BYTES).
	View         View
	Public       map[string]bool
	ViewMaxBytes int64
	// Fingerprinter makes the fingerprints of the values that are not shown: keyed by
	// SECRETS_DIR/config-fingerprint-key when the Secret holds one.
	Fingerprinter Fingerprinter
}

// IsPublic reports whether the fingerprints view shows the value of key.
func (c Config) IsPublic(key string) bool { return c.Public[key] }

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
	if cfg.ViewMaxBytes, err = parseSize(EnvViewMaxBytes, env[EnvViewMaxBytes], DefaultViewMaxBytes); err == nil && cfg.ViewMaxBytes < MinViewMaxBytes {
		err = &Error{Var: EnvViewMaxBytes, Value: env[EnvViewMaxBytes], Cause: fmt.Sprintf("below the least, %d bytes (16Ki)", MinViewMaxBytes),
			Fix: fmt.Sprintf("use 16Ki or more, for example %s=1Mi", EnvViewMaxBytes)}
	}
	if err != nil {
		errs = append(errs, err)
		cfg.ViewMaxBytes = DefaultViewMaxBytes
	}
	if cfg.View, err = parseView(env[EnvView]); err != nil {
		errs = append(errs, err)
	}
	if cfg.Public, err = parsePublic(env[EnvPublic]); err != nil {
		errs = append(errs, err)
	}
	names, err := parseNames(env[EnvRedactNames])
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Redactor = NewRedactor(names)

	cfg.Files, cfg.BinaryFiles, cfg.LinkedSecrets, cfg.Secrets = map[string]string{}, map[string][]byte{}, map[string]Secret{}, map[string]Secret{}
	if err := checkOverlap(cfg.ConfigDir, cfg.SecretsDir); err != nil {
		// Neither is read: the secrets must not be loaded as configuration.
		errs = append(errs, err)
	} else {
		files, err := readDir(EnvConfigDir, cfg.ConfigDir, cfg.MaxConfigBytes)
		if err != nil {
			errs = append(errs, err)
		}
		for _, f := range files {
			switch {
			case f.outside: // judged by where it points: a secret
				cfg.LinkedSecrets[f.name] = secretOf(f.content)
			case isText(f.content):
				cfg.Files[f.name] = strings.TrimRight(string(f.content), "\r\n")
			default:
				cfg.BinaryFiles[f.name] = f.content
			}
		}
		secretFiles, err := readDir(EnvSecretsDir, cfg.SecretsDir, cfg.MaxConfigBytes)
		if err != nil {
			errs = append(errs, err)
		}
		for _, f := range secretFiles {
			cfg.Secrets[f.name] = secretOf(f.content)
		}
	}
	key, ok := cfg.Secrets[FingerprintKeyName]
	if ok && len(key) < MinFingerprintKeyLength {
		errs = append(errs, &Error{Var: EnvSecretsDir, Value: cfg.SecretsDir,
			Cause: fmt.Sprintf("%s holds %d bytes, fewer than %d: a short key lets a reader of /config guess values from their fingerprints", FingerprintKeyName, len(key), MinFingerprintKeyLength),
			Fix:   "put 32 random bytes in it, for example SECRET_<SERVICE>_CONFIG_FINGERPRINT_KEY=$(openssl rand -hex 32) with mage deploy"})
		ok = false
	}
	if ok {
		cfg.Fingerprinter = NewFingerprinter([]byte(key), cfg.Release)
	} else {
		cfg.Fingerprinter = NewFingerprinter(nil, cfg.Release)
	}
	cfg.Env, cfg.EnvValues = appEnv(env, cfg.Redactor)
	return cfg, errors.Join(errs...)
}

// parseView reads CONFIG_VIEW: fingerprints (the default) or redacted.
func parseView(v string) (View, error) {
	switch View(strings.ToLower(strings.TrimSpace(v))) {
	case "", ViewFingerprints:
		return ViewFingerprints, nil
	case ViewRedacted:
		return ViewRedacted, nil
	}
	return ViewFingerprints, &Error{Var: EnvView, Value: v, Cause: "unknown view",
		Fix: fmt.Sprintf("use %s (public values shown, the others as fingerprints) or %s (every value through the redaction rules)", ViewFingerprints, ViewRedacted)}
}

var publicKey = regexp.MustCompile(`^[-._a-zA-Z0-9]{1,253}$`)

// parsePublic reads CONFIG_PUBLIC: keys (APP_* names, file names) separated by commas or blanks.
func parsePublic(v string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, k := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		if !publicKey.MatchString(k) {
			return out, &Error{Var: EnvPublic, Value: v, Cause: fmt.Sprintf("%q is not a key (an APP_* name or a file name)", k),
				Fix: fmt.Sprintf("list keys separated by commas, for example %s=APP_FEATURE,features.yaml", EnvPublic)}
		}
		out[k] = true
	}
	return out, nil
}

// secretOf is the content of a secret file: text without its trailing line breaks, as config
// files are read; a binary secret (a keystore) byte for byte.
func secretOf(b []byte) Secret {
	if isText(b) {
		b = bytes.TrimRight(b, "\r\n")
	}
	return Secret(b)
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
	how := ""
	switch {
	case c == s:
		how = "is the same directory as"
	case within(s, c):
		how = "contains"
	case within(c, s):
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

// dirFile is a file of a mounted directory: its name, its content, and whether it resolves
// outside the directory.
type dirFile struct {
	name    string
	content []byte
	outside bool
}

// readDir reads the regular files at the top of a mounted ConfigMap or Secret directory.
// Kubernetes' own bookkeeping entries ("..data", "..2026_...") are skipped; the visible
// names are symlinks into them, which are followed, and a file is marked outside when its
// links resolve outside dir. An empty dir means "none". The names and contents of the files
// may add up to at most limit bytes.
func readDir(name, dir string, limit int64) ([]dirFile, error) {
	if dir == "" {
		return nil, nil
	}
	fix := fmt.Sprintf("point %s at a readable directory, or unset it", name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &Error{Var: name, Value: dir, Cause: "cannot read directory: " + causeOf(err), Fix: fix}
	}
	root := resolve(dir)
	var files []dirFile
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
		// Where the name leads, every link followed: that, not the name, is what is read and judged.
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return nil, &Error{Var: name, Value: dir, Cause: fmt.Sprintf("cannot read %s: %s", e.Name(), causeOf(err)), Fix: fix}
		}
		info, err := os.Stat(real)
		if err != nil {
			return nil, &Error{Var: name, Value: dir, Cause: fmt.Sprintf("cannot read %s: %s", e.Name(), causeOf(err)), Fix: fix}
		}
		if !info.Mode().IsRegular() {
			continue
		}
		tooBig := &Error{Var: name, Value: dir, Cause: fmt.Sprintf("%s is larger than %d bytes", e.Name(), MaxFileSize), Fix: fmt.Sprintf("keep each mounted file under %d MiB", MaxFileSize>>20)}
		if info.Size() > MaxFileSize {
			return nil, tooBig
		}
		if total += int64(len(e.Name())) + info.Size(); total > limit {
			return nil, tooMuch()
		}
		b, err := readFile(real, MaxFileSize)
		if err != nil {
			return nil, &Error{Var: name, Value: dir, Cause: fmt.Sprintf("cannot read %s: %s", e.Name(), causeOf(err)), Fix: fix}
		}
		if len(b) > MaxFileSize { // it grew since Stat
			return nil, tooBig
		}
		if total += int64(len(b)) - info.Size(); total > limit {
			return nil, tooMuch()
		}
		abs, err := filepath.Abs(real)
		if err != nil {
			return nil, &Error{Var: name, Value: dir, Cause: fmt.Sprintf("cannot read %s: %s", e.Name(), causeOf(err)), Fix: fix}
		}
		files = append(files, dirFile{name: e.Name(), content: b, outside: !within(filepath.Clean(abs), root)})
	}
	return files, nil
}

// within reports whether path is dir or inside it; both absolute, clean and resolved.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
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

// appEnv is the APP_ variables but APP_ENV and APP_RELEASE: as the Redactor shows them, and as
// they are.
func appEnv(env map[string]string, r Redactor) (map[string]string, map[string]Secret) {
	shown, values := map[string]string{}, map[string]Secret{}
	for k, v := range env {
		if !strings.HasPrefix(k, AppPrefix) || k == EnvEnvironment || k == EnvRelease {
			continue
		}
		shown[k], values[k] = r.Value(k, v), Secret(v)
	}
	return shown, values
}

// Package golist runs `go list` for the toolkit, and remembers its answer for a tree that has
// not changed: which services exist and what each one links is asked on every deploy, and the
// go command takes a few hundred milliseconds to say it again.
//
// The answer is kept in the user's cache directory (dtap/golist/, as the Go build cache is kept
// there: never in the repository, which a read-only command must leave as it is), named by a
// digest of the module's path, the arguments, the environment given, the Go version, and the
// path, size and modification time of every Go file, go.mod and go.sum of the module (a walk of
// a few milliseconds). A file that changes
// changes the digest; file contents are never taken from the cache (the callers hash them).
package golist

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/dtap-platform/monorepo/internal/procenv"
)

// Run runs `go list args...` in root with env added to the toolkit's environment, and returns
// its standard output, from the cache when the tree is as it was.
func Run(ctx context.Context, root string, env []string, args ...string) ([]byte, error) {
	key, err := stamp(root, env, args)
	cache, cerr := os.UserCacheDir()
	if err != nil || cerr != nil {
		return run(ctx, root, env, args)
	}
	path := filepath.Join(cache, "dtap", "golist", key+".json")
	if b, err := os.ReadFile(path); err == nil {
		return b, nil
	}
	out, err := run(ctx, root, env, args)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
		if os.WriteFile(tmp, out, 0o644) == nil {
			_ = os.Rename(tmp, path)
		}
		prune(filepath.Dir(path), 64)
	}
	return out, nil
}

// prune keeps the newest keep answers of dir.
func prune(dir string, keep int) {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) <= keep {
		return
	}
	type file struct {
		name string
		mod  int64
	}
	var files []file
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			files = append(files, file{e.Name(), info.ModTime().UnixNano()})
		}
	}
	slices.SortFunc(files, func(a, b file) int { return cmp.Compare(b.mod, a.mod) })
	for _, f := range files[min(keep, len(files)):] {
		_ = os.Remove(filepath.Join(dir, f.name))
	}
}

func run(ctx context.Context, root string, env, args []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"list"}, args...)...)
	cmd.Dir = root
	cmd.Env = procenv.Clean(env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// stamp is the digest that names an answer: what was asked, of what tree, with which Go.
func stamp(root string, env, args []string) (string, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", root)
	fmt.Fprintf(h, "%s\t%s\t%s\n", runtime.Version(), strings.Join(args, "\x00"), strings.Join(env, "\x00"))
	for _, k := range []string{"GOFLAGS", "GOOS", "GOARCH", "CGO_ENABLED", "GOEXPERIMENT", "GOWORK", "GOPATH", "GOMODCACHE", "GOTOOLCHAIN"} {
		fmt.Fprintf(h, "%s=%s\n", k, os.Getenv(k))
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "node_modules" || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if n := d.Name(); strings.HasSuffix(n, ".go") || n == "go.mod" || n == "go.sum" {
			info, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\t%d\t%d\n", path, info.Size(), info.ModTime().UnixNano())
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:32], err
}

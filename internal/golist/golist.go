// Package golist runs `go list` for the toolkit, and remembers its answer for a tree that has
// not changed: which services exist and what each one links is asked on every deploy, and the
// go command takes a few hundred milliseconds to say it again.
//
// The answer is kept in the user's cache directory (dtap/golist/, as the Go build cache is kept
// there: never in the repository, which a read-only command must leave as it is), named by a
// digest of the module's path, the arguments, the environment given, the Go version, and the
// path, size and modification time of every Go file, go.mod and go.sum of the module (a walk of
// a few milliseconds). A file that changes changes the digest; file contents are never taken
// from the cache (the callers hash them).
//
// When that digest is new, a second one is asked before the go command: a digest of what
// go list reads of a tree (as go/build does), which is every Go file's header (build
// constraints, package clause, imports and the cgo preamble among them), its //go:embed lines,
// the names of the other files, and go.mod and go.sum. An edit inside a function body, the
// usual one-line change to a service, leaves it as it was, so the answer is still known.
package golist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"hash"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/dtap-platform/monorepo/internal/procenv"
	"github.com/dtap-platform/monorepo/internal/usercache"
)

// Run runs `go list args...` in root with env added to the toolkit's environment, and returns
// its standard output, from the cache when the tree is as it was.
func Run(ctx context.Context, root string, env []string, args ...string) ([]byte, error) {
	key, err := stamp(root, env, args)
	dir := usercache.Dir("golist")
	if err != nil || dir == "" {
		return run(ctx, root, env, args)
	}
	path := filepath.Join(dir, key+".json")
	if b, err := os.ReadFile(path); err == nil {
		return b, nil
	}
	var shapePath string
	if shape, err := shapeStamp(root, env, args); err == nil {
		shapePath = filepath.Join(dir, "shape-"+shape+".json")
		if b, err := os.ReadFile(shapePath); err == nil {
			usercache.Write(path, b, 0o644)
			return b, nil
		}
	}
	out, err := run(ctx, root, env, args)
	if err != nil {
		return nil, err
	}
	usercache.Write(path, out, 0o644)
	if shapePath != "" {
		usercache.Write(shapePath, out, 0o644)
	}
	usercache.Prune(dir, 128)
	return out, nil
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

// stamp is the digest that names an answer: what was asked, of what tree (each Go file's
// path, size and modification time), with which Go.
func stamp(root string, env, args []string) (string, error) {
	h, root, err := question(root, env, args)
	if err != nil {
		return "", err
	}
	err = walk(root, func(path string, d fs.DirEntry) error {
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

// shapeStamp is the digest of what go list reads of the tree: each Go file's header and
// //go:embed lines, the other files' names, go.mod and go.sum. Any file it cannot read or
// parse is an error: then go list runs and says what is wrong.
func shapeStamp(root string, env, args []string) (string, error) {
	h, root, err := question(root, env, args)
	if err != nil {
		return "", err
	}
	err = walk(root, func(path string, d fs.DirEntry) error {
		n := d.Name()
		switch {
		case strings.HasSuffix(n, ".go"):
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			head, embeds, err := header(src)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "go\t%s\t%d\n%s\n%s\n", path, len(head), head, embeds)
		case n == "go.mod", n == "go.sum":
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "mod\t%s\t%d\n%s\n", path, len(src), src)
		default:
			fmt.Fprintf(h, "file\t%s\n", path)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:32], err
}

// header is the part of a Go file go/build reads to list its package: everything up to the
// end of its imports (build constraints, package clause, cgo preamble), and the file's
// //go:embed lines.
func header(src []byte) (head []byte, embeds []byte, err error) {
	f, err := parser.ParseFile(token.NewFileSet(), "", src, parser.ImportsOnly)
	if err != nil {
		return nil, nil, err
	}
	end := f.Name.End()
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT && g.End() > end {
			end = g.End()
		}
	}
	head = src[:int(end)-1] // a file's positions start at 1
	for line := range bytes.Lines(src[len(head):]) {
		if bytes.HasPrefix(bytes.TrimSpace(line), []byte("//go:embed")) {
			embeds = append(embeds, line...)
		}
	}
	return head, embeds, nil
}

// question starts a digest with what was asked and with which Go.
func question(root string, env, args []string) (hash.Hash, string, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", root)
	fmt.Fprintf(h, "%s\t%s\t%s\n", runtime.Version(), strings.Join(args, "\x00"), strings.Join(env, "\x00"))
	for _, k := range []string{"GOFLAGS", "GOOS", "GOARCH", "CGO_ENABLED", "GOEXPERIMENT", "GOWORK", "GOPATH", "GOMODCACHE", "GOTOOLCHAIN"} {
		fmt.Fprintf(h, "%s=%s\n", k, os.Getenv(k))
	}
	return h, root, nil
}

// walk calls fn for every file of the module at root, leaving out what go list leaves out
// (directories named with a leading dot, node_modules, testdata).
func walk(root string, fn func(path string, d fs.DirEntry) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "node_modules" || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		return fn(path, d)
	})
}

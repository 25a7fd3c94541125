//go:build ignore

// Zero-install entry point: `go run mage.go <target>` runs the magefile with the mage version
// pinned in go.mod, so a fresh machine needs nothing but Go.
//
// The compiled magefile is kept in .cache/mage/, named by a digest of what it is built from (the
// module's Go files outside test/ and outside the services' own folders, services/kit included;
// go.mod, go.sum, the Go version and GOFLAGS), and an unchanged tree runs it directly. mage itself would relink it on every run (a second or more, for a
// binary that links Helm and client-go), as it trusts the Go build cache to notice changes.
// Mage's own flags (-l, -h, -v, ...) go to mage as they are.
package main

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/magefile/mage/mage"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		os.Exit(mage.Main())
	}
	digest, err := sourceDigest(".")
	if err != nil {
		os.Exit(mage.Main())
	}
	dir := filepath.Join(".cache", "mage")
	bin, _ := filepath.Abs(filepath.Join(dir, "magefile-"+digest))
	if _, err := os.Stat(bin); err != nil {
		// Compiled under a name of its own, then renamed: a run started meanwhile never finds
		// a half-written binary.
		tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid())
		if code := mage.ParseAndRun(os.Stdout, os.Stderr, os.Stdin, []string{"-compile", tmp}); code != 0 {
			os.Exit(code)
		}
		if err := os.Rename(tmp, bin); err != nil {
			log.Fatal(err)
		}
		prune(dir, bin)
	}
	os.Exit(mage.RunCompiled(mage.Invocation{Dir: ".", WorkDir: ".", Args: args, Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin},
		bin, log.New(os.Stderr, "", 0)))
}

// sourceDigest is a digest of everything the compiled magefile is built from.
func sourceDigest(root string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\t%s/%s\t%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, os.Getenv("GOFLAGS"))
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch {
			case path == ".git", path == ".cache", path == "test", path == "bin", path == "node_modules":
				return filepath.SkipDir
			case filepath.Dir(path) == "services" && d.Name() != "kit":
				// A service's own code: the toolkit never imports a service (only the kit), so
				// a change to a service does not recompile the magefile.
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") || path == "go.mod" || path == "go.sum" {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	slices.Sort(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\t%x\n", f, sha256.Sum256(b))
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// prune removes the compiled magefiles but keep and the newest other one.
func prune(dir, keep string) {
	paths, _ := filepath.Glob(filepath.Join(dir, "magefile-*"))
	modTime := func(p string) int64 {
		info, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return info.ModTime().UnixNano()
	}
	slices.SortFunc(paths, func(a, b string) int { return cmp.Compare(modTime(b), modTime(a)) })
	others := 0
	for _, p := range paths {
		if abs, _ := filepath.Abs(p); abs == keep {
			continue
		}
		if others++; others > 1 {
			_ = os.Remove(p)
		}
	}
}

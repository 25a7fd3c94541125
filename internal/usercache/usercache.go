// Package usercache keeps what the toolkit can work out again, to save time, in the user's
// cache directory (dtap/<name>/, as the Go build cache is kept there): never in the
// repository, which a read-only command must leave as it is. Every write may fail silently.
package usercache

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// Dir is the cache directory called name, "" when the user has no cache directory.
func Dir(name string) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "dtap", name)
}

// Write puts data at path whole or not at all (a temporary file renamed), with the file mode
// perm; a private file (no permission for group or others) gets a private directory.
func Write(path string, data []byte, perm os.FileMode) {
	dirPerm := os.FileMode(0o755)
	if perm&0o077 == 0 {
		dirPerm = 0o700
	}
	if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Chmod(tmp.Name(), perm) != nil || os.Rename(tmp.Name(), path) != nil {
		_ = os.Remove(tmp.Name())
	}
}

// Prune keeps the newest keep files of dir.
func Prune(dir string, keep int) {
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

// Keep writes data as a private file name of dir, headed by its digest, and, the first time
// this process adds to dir, prunes dir to its newest max files. Read gives it back.
func Keep(dir, name string, data []byte, max int) {
	sum := sha256.Sum256(data)
	Write(filepath.Join(dir, name), append([]byte(hex.EncodeToString(sum[:])+"\n"), data...), 0o600)
	once, _ := pruned.LoadOrStore(dir, new(sync.Once))
	once.(*sync.Once).Do(func() { Prune(dir, max) })
}

var pruned sync.Map // dir -> *sync.Once

// Read gives back what Keep kept as name in dir; ok is false when there is no such file, or
// when it does not match its digest (cut short or damaged): what is kept decides what is
// deployed, so it is taken whole and right or not at all.
func Read(dir, name string) (data []byte, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, false
	}
	head, data, found := bytes.Cut(b, []byte("\n"))
	sum := sha256.Sum256(data)
	if !found || string(head) != hex.EncodeToString(sum[:]) {
		return nil, false
	}
	return data, true
}

// Package usercache keeps what the toolkit can work out again, to save time, in the user's
// cache directory (dtap/<name>/, as the Go build cache is kept there): never in the
// repository, which a read-only command must leave as it is. Every write may fail silently.
package usercache

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
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

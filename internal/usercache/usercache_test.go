package usercache

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestWriteIsWholeAndPrivateWhenAskedAndPruneKeepsTheNewest: a private file gets a private
// directory and leaves no temporary file behind; Prune removes the oldest files beyond keep.
func TestWriteIsWholeAndPrivateWhenAskedAndPruneKeepsTheNewest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "values")
	Write(filepath.Join(dir, "a.json"), []byte(`{"a":1}`), 0o600)
	st, err := os.Stat(filepath.Join(dir, "a.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("a.json: %v, %v", err, st)
	}
	if d, _ := os.Stat(dir); d.Mode().Perm() != 0o700 {
		t.Errorf("the directory of a private file has mode %v", d.Mode().Perm())
	}
	Write(filepath.Join(dir, "a.json"), []byte(`{"a":2}`), 0o600)
	if b, _ := os.ReadFile(filepath.Join(dir, "a.json")); string(b) != `{"a":2}` {
		t.Errorf("a.json = %s after the second write", b)
	}
	base := time.Now().Add(-time.Hour)
	for i := range 4 {
		p := filepath.Join(dir, fmt.Sprintf("f%d.json", i))
		Write(p, []byte("x"), 0o600)
		if err := os.Chtimes(p, base.Add(time.Duration(i)*time.Minute), base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	Prune(dir, 3)
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"a.json", "f2.json", "f3.json"}; !slices.Equal(names, want) {
		t.Errorf("after Prune(3): %v, want %v (the newest three, no temporary file)", names, want)
	}
}

// TestReadGivesBackWhatKeepKeptWholeAndRightOrNothing: a kept file reads back as it was; one
// cut short, with a byte changed, or written by something else reads as missing.
func TestReadGivesBackWhatKeepKeptWholeAndRightOrNothing(t *testing.T) {
	dir := t.TempDir()
	Keep(dir, "a.yaml", []byte("port: 8080\n"), 10)
	if b, ok := Read(dir, "a.yaml"); !ok || string(b) != "port: 8080\n" {
		t.Fatalf("Read = %q, %v", b, ok)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "a.yaml"))
	for name, damaged := range map[string][]byte{
		"cut short":      raw[:len(raw)-3],
		"a byte changed": append(raw[:len(raw)-5:len(raw)-5], []byte("9080\n")...),
		"no digest":      []byte("port: 8080\n"),
		"an empty file":  nil,
	} {
		if err := os.WriteFile(filepath.Join(dir, "a.yaml"), damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		if b, ok := Read(dir, "a.yaml"); ok {
			t.Errorf("%s: Read = %q, want nothing", name, b)
		}
	}
	if _, ok := Read(dir, "missing.yaml"); ok {
		t.Error("a missing file was read")
	}
}

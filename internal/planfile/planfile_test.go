package planfile

import (
	"path/filepath"
	"slices"
	"testing"
)

func TestMovedNamesWhatMovedSinceThePlan(t *testing.T) {
	f := &File{Services: map[string]Service{
		"api":    {Basis: Basis{Workspace: "dev.api", Lineage: "l1", Serial: 4, Revision: 3}},
		"status": {Basis: Basis{Workspace: "dev.status", Lineage: "l2", Serial: 2, Revision: 1}},
	}}
	now := map[string]Basis{
		"api":    {Workspace: "dev.api", Lineage: "l1", Serial: 5, Revision: 4},
		"status": {Workspace: "dev.status", Lineage: "l2", Serial: 3, Revision: 1},
	}
	got := f.Moved("p", now)
	want := []string{
		"plan p was made against api's release revision 3, it is now 4 (someone deployed since): make a new plan",
		"plan p was made against the state of workspace dev.status at serial 2, it is now 3 (someone applied since): make a new plan",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Moved = %q\nwant %q", got, want)
	}
	if moved := f.Moved("p", map[string]Basis{"api": f.Services["api"].Basis, "status": f.Services["status"].Basis}); len(moved) != 0 {
		t.Errorf("nothing moved, Moved = %q", moved)
	}
}

func TestReadRefusesAnotherFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p")
	if err := Write(path, &File{Env: "dev"}); err != nil {
		t.Fatal(err)
	}
	if f, err := Read(path); err != nil || f.Env != "dev" || f.Version != Version {
		t.Fatalf("Read of a written plan: %+v, %v", f, err)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("Read of a missing file: no error")
	}
}

package lineprefix

import (
	"bytes"
	"io"
	"testing"
)

func TestEachCompleteLineGetsThePrefix(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, "[tf] ")
	for _, chunk := range []string{"Init", "ializing\nPlan: 1 to add", "\n\nApply", " complete\n"} {
		if _, err := io.WriteString(w, chunk); err != nil {
			t.Fatal(err)
		}
	}
	want := "[tf] Initializing\n[tf] Plan: 1 to add\n[tf] \n[tf] Apply complete\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

package bench

import (
	"strings"
	"testing"
	"time"
)

// TestRunCountsOneAccessLinePerAnsweredRequest runs a short bench: it must finish without
// error, which includes the check that the log file holds one access line per request.
func TestRunCountsOneAccessLinePerAnsweredRequest(t *testing.T) {
	var out strings.Builder
	rep, err := Run(t.Context(), Options{Rounds: 3, Round: 200 * time.Millisecond, Connections: 2}, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if len(rep.Rounds) != 3 || rep.Ratio <= 0 || rep.Service.Throughput <= 0 || rep.Bare.Throughput <= 0 {
		t.Errorf("report %+v", rep)
	}
	if rep.AccessLines < int(rep.Service.Requests) {
		t.Errorf("%d access lines for %d requests of the rounds alone", rep.AccessLines, rep.Service.Requests)
	}
	for _, want := range []string{"p50", "p99", "req/s", "ratio service/bare throughput (median of 3 rounds)", "access lines:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

func TestConnectionsIsADocumentedSetting(t *testing.T) {
	tests := []struct {
		value string
		want  int
		ok    bool
	}{
		{"", DefaultConnections, true},
		{"64", 64, true},
		{" 8 ", 8, true},
		{"0", 0, false},
		{"many", 0, false},
		{"100000", 0, false},
	}
	for _, tt := range tests {
		got, err := Connections(tt.value)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Connections(%q) = %d, %v; want %d (ok %v)", tt.value, got, err, tt.want, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), EnvConnections) {
			t.Errorf("error %q does not name %s", err, EnvConnections)
		}
	}
}

func TestMedianOf(t *testing.T) {
	if got := medianOf([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3,1,2 = %v", got)
	}
	if got := medianOf([]time.Duration{4, 1, 3, 2}); got != 2 {
		t.Errorf("median of 4,1,3,2 = %v", got)
	}
}

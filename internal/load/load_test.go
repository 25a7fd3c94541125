package load

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunIsBoundedAndCountsFailures(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%10 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	start := time.Now()
	res, err := Run(t.Context(), Options{URL: srv.URL, Rate: 100, Duration: time.Second, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a 1s run took %s", took)
	}
	if res.Requests < 90 || res.Requests > 110 {
		t.Errorf("requests = %d, want about 100 at 100/s for 1s", res.Requests)
	}
	if res.Requests != uint64(n.Load()) || res.Failed != res.Requests/10 || res.StatusCodes["503"] != int(res.Failed) {
		t.Errorf("result %s, codes %s; server saw %d", res, res.Codes(), n.Load())
	}
}

func TestRunNeedsADuration(t *testing.T) {
	if _, err := Run(t.Context(), Options{URL: "http://127.0.0.1:1"}); err == nil {
		t.Error("an unbounded run was accepted")
	}
}

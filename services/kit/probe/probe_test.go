package probe

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProbe(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer ok.Close()
	unready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"status":"not ready"}`, http.StatusServiceUnavailable)
	}))
	defer unready.Close()

	tests := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"every URL answers 2xx", []string{ok.URL + "/readyz", ok.URL + "/config"}, 0, ""},
		{"no URL checks the default", nil, 0, ""},
		{"one URL answers 503", []string{ok.URL, unready.URL + "/readyz"}, 1, "503 Service Unavailable"},
		{"nothing listens", []string{"http://127.0.0.1:1/readyz"}, 1, "connection refused"},
		{"a bad flag", []string{"-nope"}, 2, "usage: api probe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(t.Context(), "api", tt.args, ok.URL+"/readyz", &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.inStderr) {
				t.Errorf("Run(%v) = %d, stderr %q; want %d and %q", tt.args, code, stderr.String(), tt.code, tt.inStderr)
			}
		})
	}
}

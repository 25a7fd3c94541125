package image

import (
	"strings"
	"testing"
)

func TestValidateTag(t *testing.T) {
	for tag, ok := range map[string]bool{
		"3f2c1ab9e0d4": true, "3f2c1ab9e0d4-dirty": true, "v1.2.3": true, "_x": true, strings.Repeat("a", 128): true,
		"": false, ".x": false, "-x": false, "v1 beta": false, "a/b": false, "a:b": false, strings.Repeat("a", 129): false,
	} {
		if err := ValidateTag(tag); (err == nil) != ok {
			t.Errorf("ValidateTag(%q) = %v, want ok=%v", tag, err, ok)
		}
	}
}

func TestValidateRepository(t *testing.T) {
	for repo, ok := range map[string]bool{
		"api": true, "localhost:5001/api": true, "registry.example.com/team/api": true, "ghcr.io/o/a_b": true,
		"API": false, "localhost:5001/": false, "/api": false, "a//b": false, "reg.example.com/API": false,
	} {
		if err := ValidateRepository(repo); (err == nil) != ok {
			t.Errorf("ValidateRepository(%q) = %v, want ok=%v", repo, err, ok)
		}
	}
}

func TestRefString(t *testing.T) {
	r := Ref{Repository: "localhost:5001/api", Tag: "abc"}
	if r.String() != "localhost:5001/api:abc" {
		t.Errorf("String() = %s", r)
	}
	r.Digest = "sha256:0123"
	if r.String() != "localhost:5001/api:abc@sha256:0123" {
		t.Errorf("String() = %s", r)
	}
}

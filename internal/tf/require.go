package tf

import (
	"os"
	"testing"
)

// RequireEnv, set to 1 (as .ci/run does), turns a missing provider from a loud skip into a
// failure: in CI every Terraform test must run.
const RequireEnv = "DTAP_REQUIRE_PROVIDER"

// RequireProvider returns where the hashicorp/helm provider comes from, or ends the test: it
// skips, naming what is missing and how to provide it, or fails when RequireEnv=1.
func RequireProvider(t testing.TB) string {
	t.Helper()
	src, ok := ProviderSource()
	if ok {
		return src
	}
	msg := "no hashicorp/helm provider v3 can be found (" + src + "), and the Terraform registry cannot be reached here, " +
		"so terraform init cannot install it: set " + MirrorEnv + " to a filesystem mirror that holds it (CI uses ../shared/terraform-mirror)"
	if os.Getenv(RequireEnv) == "1" {
		t.Fatal("FAILED: " + msg + " (" + RequireEnv + "=1: this run must not skip Terraform tests)")
	}
	t.Skip("SKIPPED: " + msg)
	return ""
}

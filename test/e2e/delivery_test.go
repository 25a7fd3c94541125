//go:build integration

package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dtap-platform/monorepo/internal/deploy"
)

// TestPromotionStatusAndRollback is the path from staging to prod, as the README gives it:
// deploy staging, promote its very digests to prod without a build, read both environments
// with status, render prod pinned by digest, promote a second build, and roll prod back.
func TestPromotionStatusAndRollback(t *testing.T) {
	p := newProject(t, "prom")
	if out, err := p.mageRun(repoRoot, nil, "deploy", "staging"); err != nil {
		t.Fatalf("deploy staging: %v\n%s", err, out)
	}
	prod := map[string]string{"CONFIRM_PROD": "yes"}
	out, err := p.mageRun(repoRoot, prod, "promote", "staging", "prod")
	if err != nil {
		t.Fatalf("promote staging prod: %v\n%s", err, out)
	}
	if strings.Contains(out, "==> build") || !strings.Contains(out, "promoted, not rebuilt") {
		t.Errorf("the promotion built something, or does not say it did not:\n%s", out)
	}
	rows := status(t, p)
	for _, svc := range []string{"api", "status"} {
		s, pr := rows["staging/"+svc], rows["prod/"+svc]
		if s.Digest == "" || s.Digest != pr.Digest || pr.Differs == nil || *pr.Differs {
			t.Errorf("%s: staging runs %q, prod %q (differs: %v); want the same digest", svc, s.Digest, pr.Digest, pr.Differs)
		}
	}
	first := rows["prod/api"]

	out, err = p.mageRun(repoRoot, prod, "render", "prod")
	if err != nil {
		t.Fatalf("render prod: %v\n%s", err, out)
	}
	images := 0
	for _, line := range strings.Split(out, "\n") {
		if img, ok := strings.CutPrefix(strings.TrimSpace(line), "image: "); ok {
			images++
			if !strings.Contains(img, "@sha256:") {
				t.Errorf("render prod leaves an image unpinned: %s", img)
			}
		}
	}
	if images < 4 { // each service's Deployment and test pod
		t.Errorf("render prod shows %d images, want every Deployment's and test pod's:\n%s", images, out)
	}

	// A second build of api reaches staging, then prod; rolling prod back returns the first.
	next := pushVariant(t, "api", "next-"+p.name, `LABEL org.opencontainers.image.description="the next build"`)
	if out, err := p.mageRun(repoRoot, map[string]string{"SERVICES": "api", "IMAGE_TAG": next, "SKIP_BUILD": "true"}, "deploy", "staging"); err != nil {
		t.Fatalf("deploy the next build to staging: %v\n%s", err, out)
	}
	if out, err := p.mageRun(repoRoot, prod, "promote", "staging", "prod"); err != nil {
		t.Fatalf("promote the next build: %v\n%s", err, out)
	}
	second := status(t, p)["prod/api"]
	if second.Digest == first.Digest || second.Revision <= first.Revision {
		t.Fatalf("the second promotion: prod api %+v, want a new digest and revision after %+v", second, first)
	}
	hist, err := p.mageRun(repoRoot, nil, "history", "-env=prod")
	if err != nil || !strings.Contains(hist, "promoted from staging") {
		t.Errorf("history -env=prod = %v, want the promotions recorded:\n%s", err, hist)
	}
	if out, err := p.mageRun(repoRoot, prod, "rollback", "-env=prod"); err != nil {
		t.Fatalf("rollback -env=prod: %v\n%s", err, out)
	}
	after := status(t, p)
	if got := after["prod/api"]; got.Digest != first.Digest || got.Differs == nil || !*got.Differs {
		t.Errorf("after the rollback prod api runs %q (differs from staging: %v), want the first build %q", got.Digest, got.Differs, first.Digest)
	}
	// A deploy that leaves api alone keeps the rollback: it passes api's inputs back as they run.
	if out, err := p.mageRun(repoRoot, map[string]string{"CONFIRM_PROD": "yes", "SERVICES": "status"}, "deploy", "prod"); err != nil {
		t.Fatalf("deploy status to prod: %v\n%s", err, out)
	}
	if got := status(t, p)["prod/api"]; got.Digest != first.Digest {
		t.Errorf("a deploy of status to prod changed api: it runs %s, want the rolled-back %s", got.Digest, first.Digest)
	}
}

// status runs `go run mage.go status` with FORMAT=json and returns its rows by env/service.
func status(t *testing.T, p *project) map[string]deploy.StatusRow {
	t.Helper()
	out, err := p.mageRun(repoRoot, map[string]string{"FORMAT": "json"}, "status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	start := strings.Index(out, "[")
	var rows []deploy.StatusRow
	if start < 0 || json.Unmarshal([]byte(out[start:strings.LastIndex(out, "]")+1]), &rows) != nil {
		t.Fatalf("status output is not JSON:\n%s", out)
	}
	byKey := map[string]deploy.StatusRow{}
	for _, r := range rows {
		byKey[r.Env+"/"+r.Service] = r
	}
	return byKey
}

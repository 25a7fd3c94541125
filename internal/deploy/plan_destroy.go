package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dtap-platform/monorepo/internal/image"
)

// Plan shows what a deploy of the current settings would change, and changes nothing: no
// image is built or pushed, no state is written. It plans with the digest the image already
// has in the registry when it was pushed before, so an unchanged tree plans no change.
func Plan(ctx context.Context, s Settings, out io.Writer) (bool, error) {
	r := &Runner{S: s, Out: out}
	if err := r.step("preflight", func() error { return r.Preflight(ctx, false) }); err != nil {
		return false, err
	}
	if r.S.Local && r.clients == nil {
		return false, fmt.Errorf("the local cluster %q does not exist yet: nothing is deployed; `go run mage.go deploy %s` creates it", s.Cluster.Name, s.Env)
	}
	ref := image.Ref{Repository: s.ImageRepository(), Tag: s.ImageTag}
	if digest, err := image.RegistryDigest(ctx, ref); err == nil {
		ref.Digest = digest
	}
	if ref.Digest == "" {
		fmt.Fprintf(out, "  note: %s was not pushed yet; the plan shows it by tag, deploy will pin its digest\n", ref)
	}
	tmp, err := os.MkdirTemp("", "plan-"+s.Env+"-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	if err := r.step("terraform init, workspace "+s.Env, func() error {
		if err := r.initTerraform(ctx); err != nil {
			return err
		}
		return r.tfRunner.Workspace(ctx, s.Env)
	}); err != nil {
		return false, err
	}
	// The plan reads its variables from a private temporary file: plan writes no tfvars and
	// no state, so it leaves the environment exactly as it found it.
	varsPath := filepath.Join(tmp, "plan.tfvars.json")
	files := []string{varsPath}
	if err := writeTFVarsTo(varsPath, s, ref); err != nil {
		return false, err
	}
	if len(s.Secrets) > 0 {
		p := filepath.Join(tmp, "secrets.tfvars.json")
		if err := writeSecretVars(p, s.Secrets); err != nil {
			return false, err
		}
		files = append(files, p)
	}
	var changed bool
	err = r.step("terraform plan", func() error {
		var err error
		changed, err = r.tfRunner.Plan(ctx, filepath.Join(tmp, "plan.tfplan"), false, files...)
		return err
	})
	return changed, err
}

// Destroy removes the environment's release in its workspace, then the namespace deploy
// created for it, and checks that nothing of it is left. It says so when nothing is deployed.
func Destroy(ctx context.Context, s Settings, out io.Writer) error {
	r := &Runner{S: s, Out: out}
	if err := s.GuardProduction("destroy"); err != nil {
		return err
	}
	if err := r.step("preflight", func() error { return r.Preflight(ctx, false) }); err != nil {
		return err
	}
	if r.S.Local && r.clients == nil {
		fmt.Fprintf(out, "nothing is deployed in %s: the local cluster %q does not exist\n", s.Env, s.Cluster.Name)
		return nil
	}
	var resources []string
	if err := r.step("terraform init, workspace "+s.Env, func() error {
		if err := r.initTerraform(ctx); err != nil {
			return err
		}
		has, err := r.tfRunner.HasWorkspace(ctx, s.Env)
		if err != nil || !has {
			return err
		}
		if err := r.tfRunner.Workspace(ctx, s.Env); err != nil {
			return err
		}
		resources, err = r.tfRunner.Resources(ctx)
		return err
	}); err != nil {
		return err
	}
	varsPath := TFVarsPath(s.RepoRoot, s.Env)
	if len(resources) == 0 {
		fmt.Fprintf(out, "nothing is deployed in %s: Terraform workspace %q holds no resources\n", s.Env, s.Env)
	} else {
		if _, err := os.Stat(varsPath); err != nil {
			return fmt.Errorf("%s is missing, so the release's variables are unknown: %w; run `go run mage.go deploy %s` once, or terraform destroy by hand", varsPath, err, s.Env)
		}
		tmp, err := os.MkdirTemp("", "destroy-"+s.Env+"-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		plan := filepath.Join(tmp, "destroy.tfplan")
		if err := r.step("terraform destroy", func() error {
			if _, err := r.tfRunner.Plan(ctx, plan, true, varsPath); err != nil {
				return err
			}
			return r.tfRunner.Apply(ctx, plan)
		}); err != nil {
			return err
		}
	}
	return r.step("namespace "+s.Namespace, func() error { return r.removeNamespace(ctx) })
}

// removeNamespace deletes the namespace when deploy created it, and waits until it is gone.
func (r *Runner) removeNamespace(ctx context.Context) error {
	ns, err := r.clients.CoreV1().Namespaces().Get(ctx, r.S.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		fmt.Fprintf(r.Out, "  namespace %s does not exist\n", r.S.Namespace)
		return nil
	}
	if err != nil {
		return err
	}
	if ns.Labels[ManagedByLabel] != "deploy" {
		fmt.Fprintf(r.Out, "  namespace %s was not created by deploy: kept\n", r.S.Namespace)
		return nil
	}
	if err := r.clients.CoreV1().Namespaces().Delete(ctx, r.S.Namespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := r.clients.CoreV1().Namespaces().Get(ctx, r.S.Namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			fmt.Fprintf(r.Out, "  namespace %s deleted\n", r.S.Namespace)
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("namespace %s still terminating after 2m", r.S.Namespace)
}

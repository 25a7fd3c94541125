package deploybench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dtap-platform/monorepo/internal/services"
)

// Template is the service the generated ones are copies of, and NamePattern what is replaced
// in its main.go by each one's name.
const (
	Template    = "api"
	NamePattern = `Name: "api"`
)

// Prepared is a copy made by Prepare.
type Prepared struct {
	Files     int      // files copied from the checkout
	Generated []string // the generated services
	Changed   string   // the service the one-line change goes to
}

// Prepare makes dst a git repository holding the checkout at root, as it is in the working
// tree, and n services: root's own (api and status, so n-2 are generated) and generated ones. Every service gets a file naming
// run, so that its content tag is new to the registry. Both are committed.
func Prepare(ctx context.Context, root, dst string, n int, run string) (Prepared, error) {
	var p Prepared
	var err error
	if p.Files, err = Copy(ctx, root, dst); err != nil {
		return p, err
	}
	if err := initRepo(ctx, dst); err != nil {
		return p, err
	}
	own, err := services.Discover(ctx, dst)
	if err != nil {
		return p, err
	}
	if len(own) > n {
		return p, fmt.Errorf("the checkout has %d services of its own (%s), more than N=%d: use counts of at least %d in %s",
			len(own), strings.Join(services.Names(own), ", "), n, len(own), EnvServices)
	}
	if p.Generated, err = Generate(dst, n-len(own)); err != nil {
		return p, err
	}
	found, err := services.Discover(ctx, dst)
	if err != nil {
		return p, err
	}
	if len(found) != n {
		return p, fmt.Errorf("go list finds %d services in the copy (%s), not the %d it should: %d of the checkout's and %d generated",
			len(found), strings.Join(services.Names(found), ", "), n, len(own), len(p.Generated))
	}
	if err := Mark(dst, found, run); err != nil {
		return p, err
	}
	if err := commit(ctx, dst, fmt.Sprintf("bench: %d services (%d generated from services/%s), run %s", n, len(p.Generated), Template, run), services.Dir); err != nil {
		return p, err
	}
	p.Changed = Template
	if len(p.Generated) > 0 {
		p.Changed = p.Generated[0]
	}
	return p, nil
}

// Copy copies the files of the checkout at root to dst, as they are in the working tree: those
// `git ls-files` lists, with their uncommitted changes, and the new files git does not ignore,
// which a change often adds and which a build in the checkout would use too; files deleted but
// not yet committed are left out. Symbolic links are copied as links, modes are kept. It
// returns how many files it copied.
func Copy(ctx context.Context, root, dst string) (int, error) {
	out, err := gitOutput(ctx, root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	n := 0
	for _, rel := range strings.Split(out, "\x00") {
		if rel == "" || seen[rel] || rel == mageOutputFile { // an unmerged file is listed once per stage
			continue
		}
		seen[rel] = true
		src := filepath.Join(root, filepath.FromSlash(rel))
		st, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return n, err
		}
		to := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return n, err
		}
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(src)
			if err != nil {
				return n, err
			}
			if err := os.Symlink(link, to); err != nil {
				return n, err
			}
		case st.Mode().IsRegular():
			if err := copyFile(src, to, st.Mode().Perm()); err != nil {
				return n, err
			}
		default:
			continue // a submodule's folder
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("git ls-files lists no file in %s", root)
	}
	return n, nil
}

// mageOutputFile is the file mage writes beside the magefile while it compiles it, and removes.
const mageOutputFile = "mage_output_file.go"

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Names are the names of count generated services: s01, s02, ..., numbered with at least two
// digits and as many as the largest needs (s001..s198 for 198).
func Names(count int) []string {
	if count <= 0 {
		return nil
	}
	width := max(2, len(strconv.Itoa(count)))
	names := make([]string, count)
	for i := range names {
		names[i] = fmt.Sprintf("s%0*d", width, i+1)
	}
	return names
}

// template reads services/api/main.go of root and checks that it names its service as
// NamePattern.
func template(root string) ([]byte, error) {
	path := filepath.Join(root, services.Dir, Template, "main.go")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("the generated services are copies of %s/%s/main.go, which cannot be read: %w", services.Dir, Template, err)
	}
	if !bytes.Contains(b, []byte(NamePattern)) {
		return nil, fmt.Errorf("%s has no %s to replace with each generated service's name; the benchmark expects the service's main.go to be kit.Main(kit.Service{%s}): update %s.NamePattern to how it names itself now",
			path, NamePattern, NamePattern, "deploybench")
	}
	return b, nil
}

// Generate writes, in the repository at root, the count services Names(count) lists: each a
// folder services/<name>/ holding main.go, which is services/api/main.go with NamePattern naming
// it, and a copy of services/api/values.yaml when there is one.
func Generate(root string, count int) ([]string, error) {
	src, err := template(root)
	if err != nil {
		return nil, err
	}
	values, err := os.ReadFile(filepath.Join(root, services.Dir, Template, "values.yaml"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	names := Names(count)
	for _, name := range names {
		dir := filepath.Join(root, services.Dir, name)
		if _, err := os.Stat(dir); err == nil {
			return nil, fmt.Errorf("%s/%s exists already: the checkout has a service named as a generated one; rename it, or let the benchmark name its own otherwise", services.Dir, name)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		main := bytes.ReplaceAll(src, []byte(NamePattern), []byte(`Name: "`+name+`"`))
		if err := os.WriteFile(filepath.Join(dir, "main.go"), main, 0o644); err != nil {
			return nil, err
		}
		if values != nil {
			if err := os.WriteFile(filepath.Join(dir, "values.yaml"), values, 0o644); err != nil {
				return nil, err
			}
		}
	}
	return names, nil
}

// MarkFile is the file Mark writes in each service's folder.
const MarkFile = "deploybench_run.go"

// Mark writes in each service's folder a Go file of its package that names run, so that the
// service's content tag is new to the registry and the first deploy builds it.
func Mark(root string, svcs []services.Service, run string) error {
	for _, s := range svcs {
		src := fmt.Sprintf("// Written by the deploy benchmark (internal/deploybench) in its throwaway copy of the\n"+
			"// repository: it names the run, so that this service's content tag is new to the registry.\n"+
			"// run: %s\n\npackage main\n", run)
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(s.Dir), MarkFile), []byte(src), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Change appends a comment line to the service's main.go and commits it: the one-line change.
func Change(ctx context.Context, root, service string, at time.Time) error {
	rel := services.Dir + "/" + service + "/main.go"
	f, err := os.OpenFile(filepath.Join(root, filepath.FromSlash(rel)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "\n// bench change %s\n", at.Format(time.RFC3339Nano)); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return commit(ctx, root, "bench: a one-line change to "+service, rel)
}

// The copy's commits have a fixed author, committer and date: nothing of them depends on who
// runs the benchmark, or when.
var gitIdentity = []string{
	"GIT_AUTHOR_NAME=deploybench", "GIT_AUTHOR_EMAIL=deploybench@localhost", "GIT_AUTHOR_DATE=2024-01-01T00:00:00Z",
	"GIT_COMMITTER_NAME=deploybench", "GIT_COMMITTER_EMAIL=deploybench@localhost", "GIT_COMMITTER_DATE=2024-01-01T00:00:00Z",
}

func initRepo(ctx context.Context, dir string) error {
	if _, err := gitOutput(ctx, dir, "init", "-q", "--initial-branch=main"); err != nil {
		return err
	}
	return commit(ctx, dir, "bench: the checkout, as it is in the working tree", ".")
}

// commit adds paths (ignored ones too: the copy holds only what the checkout tracks) and
// commits them.
func commit(ctx context.Context, dir, msg string, paths ...string) error {
	if _, err := gitOutput(ctx, dir, append([]string{"add", "-f", "--"}, paths...)...); err != nil {
		return err
	}
	_, err := gitOutput(ctx, dir, "commit", "-q", "--no-verify", "-m", msg)
	return err
}

// gitOutput runs git in dir with the fixed identity, no hooks and no signing, and none of the
// caller's GIT_* variables, and returns its output without the final newline.
func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "SECRET_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, gitIdentity...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSuffix(string(out), "\n"), nil
}

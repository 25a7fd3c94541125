package tf

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// run runs one terraform command. terraform-exec kills terraform with SIGKILL when its context
// is cancelled, which can leave a Helm release pending and the state lock held. So the command
// gets a context that is never cancelled, and when ctx is, terraform is sent SIGINT instead: it
// finishes the operation under way, saves its state, releases its lock and exits. A second
// interrupt (Force) tells it to exit at once, and SIGKILL follows if it still runs.
func (r *Runner) run(ctx context.Context, fn func(context.Context) error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		if r.signal(syscall.SIGINT) > 0 {
			fmt.Fprintln(r.out, "interrupt: terraform was asked to stop cleanly; it finishes the operation under way and saves its state")
		}
		select {
		case <-done:
			return
		case <-r.force:
		}
		fmt.Fprintln(r.out, "second interrupt: terraform is told to exit now")
		r.signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			r.signal(syscall.SIGKILL)
		}
	}()
	err := fn(context.WithoutCancel(ctx))
	close(done)
	<-stopped
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (interrupted: %v)", err, context.Cause(ctx))
	}
	if err == nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// signal sends sig to the process group of every terraform this process started
// (terraform-exec starts each in a group of its own, with its provider plugins), and returns
// how many it signalled.
func (r *Runner) signal(sig syscall.Signal) int {
	name := r.name
	if len(name) > 15 { // the kernel keeps a command name's first 15 bytes
		name = name[:15]
	}
	n := 0
	for _, pid := range childrenNamed(os.Getpid(), name) {
		if syscall.Kill(-pid, sig) == nil || syscall.Kill(pid, sig) == nil {
			n++
		}
	}
	return n
}

// childrenNamed lists the direct children of ppid whose command name is name (from /proc).
func childrenNamed(ppid int, name string) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) < 2 || s[open+1:close] != name {
			continue
		}
		if parent, _ := strconv.Atoi(fields[1]); parent == ppid {
			pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
			out = append(out, pid)
		}
	}
	return out
}

// Package interrupt gives a long-running target (deploy, plan, destroy) the interrupts meant for
// it. Mage cancels a target's context on SIGINT but exits 5 seconds later whatever the target
// is doing, and ignores SIGTERM. A deploy interrupted half-way must instead let Terraform stop
// cleanly and put the release back at a known revision, which takes longer than that.
package interrupt

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Context returns a context that is cancelled by the first SIGINT or SIGTERM, and a channel
// that is closed by the second one (the user insists: stop at once). Mage's own SIGINT handler
// is removed for the run, so mage no longer exits 5 seconds after the first interrupt; stop
// restores the default handling. A third interrupt exits the process with code 130.
//
// Mage registers its handler just before it starts the target, so call Context after the
// target has done some work of its own (resolving its settings), not as its first statement.
func Context(parent context.Context, out io.Writer) (ctx context.Context, force <-chan struct{}, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	forced := make(chan struct{})
	signal.Reset(os.Interrupt, syscall.SIGTERM)
	ch := make(chan os.Signal, 3)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var once sync.Once
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case sig := <-ch:
				n++
				switch n {
				case 1:
					fmt.Fprintf(out, "\n%s: stopping cleanly (Terraform finishes what it is doing, the release is put back at a known revision); interrupt again to stop at once\n", sig)
					cancel(fmt.Errorf("interrupted by %s", sig))
				case 2:
					fmt.Fprintf(out, "\n%s again: stopping at once; the next deploy recovers a release left pending\n", sig)
					close(forced)
				default:
					os.Exit(130)
				}
			}
		}
	}()
	stop = func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel(context.Canceled)
		})
	}
	return ctx, forced, stop
}

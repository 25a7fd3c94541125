package deploybench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// runProcess runs argv in dir with env, its output to log with each line stamped with the time
// since the start (so a log shows where the time went), in a process group of its own, as a
// terminal runs a command. When ctx ends, the group gets SIGINT, as Ctrl-C in that terminal would
// send (`go run`, mage and the target all see it, so a deploy rolls back), and has grace to
// exit; when force is closed, or grace is over, the group is killed. notify tells the user what
// is being done.
func runProcess(ctx context.Context, force <-chan struct{}, grace time.Duration, dir string, env, argv []string, log io.Writer, notify func(string)) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	out := &stamper{w: log, start: time.Now(), bol: true}
	cmd.Stdout, cmd.Stderr = out, out // the same writer: one pipe, the lines in order
	// A process the step left behind with its output open does not hold the step up.
	cmd.WaitDelay = 10 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	group := -cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	select {
	case err := <-done:
		return err
	case <-force:
		_ = syscall.Kill(group, syscall.SIGKILL)
		<-done
		return fmt.Errorf("killed at once (interrupted twice)")
	case <-ctx.Done():
	}

	_ = syscall.Kill(group, syscall.SIGINT)
	notify(fmt.Sprintf("interrupted: sent SIGINT to the step's process group, as Ctrl-C does; waiting up to %s for it to stop (interrupt again to kill it at once)", grace))
	timer := time.NewTimer(grace)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
		_ = syscall.Kill(group, syscall.SIGKILL) // whatever it left running in its group
		return fmt.Errorf("interrupted, it stopped: %v", exitOf(err))
	case <-force:
		notify("interrupted again: killing the step's process group")
	case <-timer.C:
		notify(fmt.Sprintf("still running %s after SIGINT: killing the step's process group", grace))
	}
	_ = syscall.Kill(group, syscall.SIGKILL)
	<-done
	return fmt.Errorf("interrupted, and killed")
}

// stamper writes each line it is given after the time since start: "[+12.3s] ".
type stamper struct {
	w     io.Writer
	start time.Time
	bol   bool // at the beginning of a line
}

func (s *stamper) Write(p []byte) (int, error) {
	n := len(p)
	var buf bytes.Buffer
	for len(p) > 0 {
		if s.bol {
			fmt.Fprintf(&buf, "[+%.1fs] ", time.Since(s.start).Seconds())
		}
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line = p[:i+1]
		}
		buf.Write(line)
		s.bol = line[len(line)-1] == '\n'
		p = p[len(line):]
	}
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		return 0, err
	}
	return n, nil
}

func exitOf(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

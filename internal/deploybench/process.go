package deploybench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// runProcess runs argv in dir with env, its output to log, in a process group of its own, as a
// terminal runs a command. When ctx ends, the group gets SIGINT, as Ctrl-C in that terminal would
// send (`go run`, mage and the target all see it, so a deploy rolls back), and has grace to
// exit; when force is closed, or grace is over, the group is killed. notify tells the user what
// is being done.
func runProcess(ctx context.Context, force <-chan struct{}, grace time.Duration, dir string, env, argv []string, log *os.File, notify func(string)) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = log, log // a file: Wait returns when the process exits
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

func exitOf(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

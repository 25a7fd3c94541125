// Package lock is the one lock a deploy, plan-and-apply, rollback or destroy of an environment
// holds for its whole run: a Lease in the cluster's state namespace, beside Terraform's own,
// renewed by a heartbeat. A second run of the same environment waits, saying who holds it; runs
// of different environments never wait for each other. A lock whose holder is gone (heartbeat
// stopped, or its process has gone on this machine) is reported with the command that breaks
// it; a live lock is never broken.
package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Heartbeat timing: the holder renews every Renew; a lease seen not renewed for Expire is
// stale. (Variables only so that tests can shorten them.)
var (
	Renew  = 5 * time.Second
	Expire = 30 * time.Second
)

const holderAnnotation = "dtap.dev/holder"

// Holder says who holds a lock.
type Holder struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Host     string    `json:"host"`
	Checkout string    `json:"checkout"`
	PID      int       `json:"pid"`
	Command  string    `json:"command"`
	Since    time.Time `json:"since"`
	// Machine and PIDNamespace tell whether PID can be looked up here: containers may share a
	// host name but not their processes.
	Machine      string `json:"machine,omitempty"`
	PIDNamespace string `json:"pidNamespace,omitempty"`
}

func (h Holder) String() string {
	return fmt.Sprintf("%s@%s (pid %d, checkout %s, `%s`) since %s (%s ago)", h.User, h.Host, h.PID, h.Checkout,
		h.Command, h.Since.Local().Format("15:04:05"), time.Since(h.Since).Round(time.Second))
}

// Me is the holder this process would be.
func Me(checkout, command string) Holder {
	host, _ := os.Hostname()
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return Holder{User: name, Host: host, Checkout: checkout, PID: os.Getpid(), Command: command, Since: time.Now().UTC(),
		ID: fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano()), Machine: machineID(), PIDNamespace: pidNamespace()}
}

func machineID() string {
	b, _ := os.ReadFile("/etc/machine-id")
	return strings.TrimSpace(string(b))
}

func pidNamespace() string {
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return ns
}

// LeaseName is the Lease of env's lock.
func LeaseName(env string) string { return "deploy-lock-" + env }

// Lock is a held lock; Release lets it go.
type Lock struct {
	clients  kubernetes.Interface
	ns, name string
	me       Holder
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	lost     chan struct{}
	lostOnce sync.Once
}

// Lost is closed when the lock is no longer this run's (someone broke it): the run must not
// change anything more.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// StaleError is a lock whose holder is gone.
type StaleError struct {
	Env    string
	Holder Holder
	Reason string
	Unlock string // the command that breaks it
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("the deploy lock of %s is held by %s, but %s: it is stale. Make sure no deploy of %s still runs, then break it with: %s",
		e.Env, e.Holder, e.Reason, e.Env, e.Unlock)
}

// Acquire takes env's lock, waiting up to wait while another live run holds it; out hears who
// holds it. unlock is the command that breaks a stale lock, for the message.
func Acquire(ctx context.Context, cs kubernetes.Interface, ns, env string, me Holder, wait time.Duration, unlock string, out io.Writer) (*Lock, error) {
	leases := cs.CoordinationV1().Leases(ns)
	name := LeaseName(env)
	deadline := time.Now().Add(wait)
	told := ""
	var lastRenew time.Time
	seen := time.Now()
	for {
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if _, err := leases.Create(ctx, newLease(name, me), metav1.CreateOptions{}); err == nil {
				return start(cs, ns, name, me), nil
			} else if !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("take the deploy lock %s/%s: %w", ns, name, err)
			}
			continue // someone else was quicker: look again
		case err != nil:
			return nil, fmt.Errorf("read the deploy lock %s/%s: %w", ns, name, err)
		}
		holder, _ := holderOf(lease)
		if reason := Stale(lease); reason != "" {
			return nil, &StaleError{Env: env, Holder: holder, Reason: reason, Unlock: unlock}
		}
		// The heartbeat, watched by this machine's clock: not renewed for Expire means gone.
		if renewed := renewTime(lease); renewed != lastRenew || holder.ID != told {
			lastRenew, seen = renewed, time.Now()
		} else if time.Since(seen) > Expire {
			return nil, &StaleError{Env: env, Holder: holder, Reason: fmt.Sprintf("its heartbeat has not been renewed for %s", time.Since(seen).Round(time.Second)), Unlock: unlock}
		}
		if told != holder.ID {
			fmt.Fprintf(out, "  waiting for the deploy lock of %s: held by %s; waiting up to %s (DEPLOY_LOCK_TIMEOUT)\n",
				env, holder, time.Until(deadline).Round(time.Second))
			told = holder.ID
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the deploy lock of %s is still held by %s after waiting %s: try again later, or raise DEPLOY_LOCK_TIMEOUT", env, holder, wait)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stopped waiting for the deploy lock of %s: %w", env, context.Cause(ctx))
		case <-time.After(time.Second):
		}
	}
}

func newLease(name string, me Holder) *coordinationv1.Lease {
	now := metav1.NewMicroTime(time.Now())
	secs := int32(Expire / time.Second)
	b, _ := json.Marshal(me)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{holderAnnotation: string(b)},
			Labels: map[string]string{"dtap.dev/managed-by": "deploy"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &me.ID, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}
}

func renewTime(l *coordinationv1.Lease) time.Time {
	if l.Spec.RenewTime == nil {
		return time.Time{}
	}
	return l.Spec.RenewTime.Time
}

func holderOf(l *coordinationv1.Lease) (Holder, error) {
	var h Holder
	err := json.Unmarshal([]byte(l.Annotations[holderAnnotation]), &h)
	return h, err
}

// Stale says why a lease's holder is gone, or "" when it may still be alive: its process is
// gone from this very machine (same host, machine id and PID namespace), or its heartbeat is
// older than StaleAfter by this machine's clock, a margin wide enough for clocks that disagree.
// A live lock is never called stale: a renewed lease, seen over time, is waited for (Acquire)
// or refused (Break).
func Stale(l *coordinationv1.Lease) string {
	h, err := holderOf(l)
	if err != nil {
		return "its holder is unreadable"
	}
	me := Me("", "")
	if h.Host == me.Host && h.Machine == me.Machine && h.PIDNamespace == me.PIDNamespace && !alive(h.PID) {
		return fmt.Sprintf("process %d has gone from this machine", h.PID)
	}
	if r := l.Spec.RenewTime; r != nil && time.Since(r.Time) > StaleAfter {
		return fmt.Sprintf("its heartbeat stopped %s ago", time.Since(r.Time).Round(time.Second))
	}
	return ""
}

// StaleAfter is how old a heartbeat must look, by the reader's clock, before its lock is called
// stale on sight; Acquire and Break also watch a lease for Expire to see it is not renewed.
var StaleAfter = 150 * time.Second

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// start renews the lease until Release.
func start(cs kubernetes.Interface, ns, name string, me Holder) *Lock {
	l := &Lock{clients: cs, ns: ns, name: name, me: me, stop: make(chan struct{}), done: make(chan struct{}), lost: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(Renew)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.renew()
			}
		}
	}()
	return l
}

func (l *Lock) renew() {
	ctx, cancel := context.WithTimeout(context.Background(), Renew)
	defer cancel()
	lease, err := l.clients.CoordinationV1().Leases(l.ns).Get(ctx, l.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || err == nil && (lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != l.me.ID) {
		l.lostOnce.Do(func() { close(l.lost) }) // broken by someone else
		return
	}
	if err != nil {
		return // the API server did not answer this time; the next beat tries again
	}
	now := metav1.NewMicroTime(time.Now())
	lease.Spec.RenewTime = &now
	_, _ = l.clients.CoordinationV1().Leases(l.ns).Update(ctx, lease, metav1.UpdateOptions{})
}

// Release stops the heartbeat and removes the lease, if it is still this run's.
func (l *Lock) Release() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lease, err := l.clients.CoordinationV1().Leases(l.ns).Get(ctx, l.name, metav1.GetOptions{})
		if err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity == l.me.ID {
			rv := lease.ResourceVersion
			_ = l.clients.CoordinationV1().Leases(l.ns).Delete(ctx, l.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		}
	})
}

// Info describes env's locks for unlock: the deploy lock and Terraform's state lock.
type Info struct {
	Deploy      *Holder // nil: not held
	DeployStale string  // why the deploy lock is stale, "" when live or free
	State       string  // Terraform's lock info (who, operation, since), "" when not held
	StateSince  time.Time
	StateHeld   []string // the held Leases of Terraform's locks
}

// Inspect reads env's locks. stateLeases are the Leases of Terraform's kubernetes backend, one
// per workspace of the environment; State describes the oldest one held.
func Inspect(ctx context.Context, cs kubernetes.Interface, ns, env string, stateLeases []string) (Info, error) {
	var info Info
	leases := cs.CoordinationV1().Leases(ns)
	if l, err := leases.Get(ctx, LeaseName(env), metav1.GetOptions{}); err == nil {
		h, _ := holderOf(l)
		info.Deploy, info.DeployStale = &h, Stale(l)
	} else if !apierrors.IsNotFound(err) {
		return info, err
	}
	for _, name := range stateLeases {
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return info, err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			continue
		}
		info.StateHeld = append(info.StateHeld, name)
		if what, since := terraformLockInfo(l); info.State == "" || since.Before(info.StateSince) {
			info.State, info.StateSince = what, since
		}
	}
	if len(info.StateHeld) > 1 {
		info.State = fmt.Sprintf("%s (and %d more workspaces)", info.State, len(info.StateHeld)-1)
	}
	return info, nil
}

// terraformLockInfo reads the lock info Terraform's kubernetes backend keeps on its Lease.
func terraformLockInfo(l *coordinationv1.Lease) (string, time.Time) {
	var li struct {
		ID, Operation, Who string
		Created            time.Time
	}
	if err := json.Unmarshal([]byte(l.Annotations["app.terraform.io/lock-info"]), &li); err != nil {
		return "held (lock id " + *l.Spec.HolderIdentity + ")", l.CreationTimestamp.Time
	}
	return fmt.Sprintf("held by %s for %s since %s (lock id %s)", li.Who, li.Operation, li.Created.Format(time.RFC3339), li.ID), li.Created
}

// Break removes env's deploy lock and clears Terraform's state lock, as `terraform
// force-unlock` does. It refuses a live deploy lock: unless its holder is plainly gone (Stale),
// it watches the lease for Expire and refuses if it is renewed. Terraform's lock alone (no
// deploy lock) is cleared only when it is older than LoneStateLockAge: a plan may hold it.
func Break(ctx context.Context, cs kubernetes.Interface, ns, env string, stateLeases []string, out io.Writer) error {
	info, err := Inspect(ctx, cs, ns, env, stateLeases)
	if err != nil {
		return err
	}
	leases := cs.CoordinationV1().Leases(ns)
	if info.Deploy != nil && info.DeployStale == "" {
		fmt.Fprintf(out, "  watching the deploy lock's heartbeat for %s\n", Expire)
		first, err := leases.Get(ctx, LeaseName(env), metav1.GetOptions{})
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(Expire):
		}
		again, err := leases.Get(ctx, LeaseName(env), metav1.GetOptions{})
		if err == nil && !renewTime(again).Equal(renewTime(first)) {
			return fmt.Errorf("the deploy lock of %s is held by %s and its heartbeat is live: a deploy is running; wait for it to end", env, *info.Deploy)
		}
	}
	if info.Deploy == nil && info.State != "" && time.Since(info.StateSince) < LoneStateLockAge {
		return fmt.Errorf("Terraform's state lock of %s is %s, and no deploy holds the environment: a plan or a terraform command may be running; if none is, wait %s after it was taken, or run terraform force-unlock", env, info.State, LoneStateLockAge)
	}
	if info.Deploy != nil {
		if err := leases.Delete(ctx, LeaseName(env), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove the deploy lock %s/%s: %w", ns, LeaseName(env), err)
		}
	}
	for _, name := range info.StateHeld {
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		l.Spec.HolderIdentity = nil
		delete(l.Annotations, "app.terraform.io/lock-info")
		if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("clear Terraform's state lock %s/%s: %w", ns, name, err)
		}
	}
	return nil
}

// LoneStateLockAge is how old Terraform's state lock must be, with no deploy lock beside it,
// before unlock clears it.
const LoneStateLockAge = 10 * time.Minute

// Describe is a line about a lock for humans.
func (i Info) Describe(env string) string {
	s := "deploy lock of " + env + ": "
	switch {
	case i.Deploy == nil:
		s += "free"
	case i.DeployStale != "":
		s += "stale, held by " + i.Deploy.String() + "; " + i.DeployStale
	default:
		s += "held by " + i.Deploy.String()
	}
	s += "; Terraform state lock: "
	if i.State == "" {
		return s + "free"
	}
	return s + i.State
}

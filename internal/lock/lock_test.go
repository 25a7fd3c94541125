package lock

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// No cluster runs in unit tests: the Leases live in client-go's fake clientset, an in-memory
// object tracker with the API's create, get, update and delete semantics.

const (
	ns     = "dtap-system"
	unlock = "go run mage.go unlock -env=dev"
	// stateLease is the Lease a test names as Terraform's state lock.
	stateLease = "lock-tfstate-default-dtap-dev"
)

// gonePID is a process id that no process has: pid_max itself is never handed out.
func gonePID(t *testing.T) int {
	t.Helper()
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("no /proc/sys/kernel/pid_max and no `true` to run (%v): cannot name a process that has gone", err)
	}
	return cmd.Process.Pid // reaped: gone, unless the pid was reused since
}

func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Skipf("os.Hostname: %v", err)
	}
	return h
}

// lease is env dev's deploy lock held by h, last renewed at renewed.
func lease(h Holder, renewed time.Time) *coordinationv1.Lease {
	l := newLease(LeaseName("dev"), h)
	at := metav1.NewMicroTime(renewed)
	l.Spec.RenewTime = &at
	l.Namespace = ns
	return l
}

func other(host string, pid int) Holder {
	h := Holder{ID: host + "/" + strconv.Itoa(pid) + "/1", User: "alice", Host: host, Checkout: "/src/monorepo", PID: pid,
		Command: "mage deploy -env=dev", Since: time.Now().Add(-time.Minute).UTC()}
	if me := Me("", ""); host == me.Host {
		h.Machine, h.PIDNamespace = me.Machine, me.PIDNamespace // this very machine
	}
	return h
}

// shortHeartbeat makes the heartbeat fast for a test.
func shortHeartbeat(t *testing.T) {
	t.Helper()
	renew, expire := Renew, Expire
	Renew, Expire = 50*time.Millisecond, 400*time.Millisecond
	t.Cleanup(func() { Renew, Expire = renew, expire })
}

func TestStaleSaysWhenTheHolderIsGone(t *testing.T) {
	host := hostname(t)
	now := time.Now()
	tests := []struct {
		name  string
		lease *coordinationv1.Lease
		want  string // a part of the reason; "" means alive
	}{
		{"a lease renewed just now by a live process here is alive", lease(other(host, os.Getpid()), now), ""},
		{"a lease renewed just now on another machine is alive", lease(other("build-42", gonePID(t)), now), ""},
		{"a lease renewed within Expire is alive", lease(other("build-42", 1), now.Add(-Expire/2)), ""},
		{"a lease that looks a minute old is alive on sight: clocks may disagree", lease(other("build-42", 1), now.Add(-time.Minute)), ""},
		{"a lease older than StaleAfter is stale", lease(other("build-42", 1), now.Add(-StaleAfter-10*time.Second)),
			"its heartbeat stopped"},
		{"a holder with this host name but another machine is not looked up here", lease(func() Holder {
			h := other(host, gonePID(t))
			h.Machine = "another-machine"
			return h
		}(), now), ""},
		{"a holder on this machine whose process is gone is stale at once", lease(other(host, gonePID(t)), now),
			"process " + strconv.Itoa(gonePID(t)) + " has gone from this machine"},
		{"a holder on this machine with no pid is stale", lease(other(host, 0), now), "process 0 has gone"},
		{"a lease with an unreadable holder is stale", func() *coordinationv1.Lease {
			l := lease(other("build-42", 1), now)
			l.Annotations[holderAnnotation] = "{not json"
			return l
		}(), "its holder is unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Stale(tt.lease)
			switch {
			case tt.want == "" && got != "":
				t.Errorf("Stale = %q, want alive", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("Stale = %q, want a reason containing %q", got, tt.want)
			}
		})
	}
}

func TestAcquireTakesTheLockAndASecondRunIsToldWhoHoldsIt(t *testing.T) {
	cs := fake.NewClientset()
	me := Me("/src/monorepo", "mage deploy -env=dev")
	l, err := Acquire(t.Context(), cs, ns, "dev", me, 0, unlock, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Release)
	got, err := cs.CoordinationV1().Leases(ns).Get(t.Context(), LeaseName("dev"), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no lease after Acquire: %v", err)
	}
	if got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity != me.ID {
		t.Errorf("holder identity = %v, want %s", got.Spec.HolderIdentity, me.ID)
	}
	if h, err := holderOf(got); err != nil || h.PID != os.Getpid() || h.User != me.User || h.Host != me.Host {
		t.Errorf("holder annotation = %+v, %v; want %+v", h, err, me)
	}

	second := Me("/src/other-clone", "mage deploy -env=dev")
	var out strings.Builder
	_, err = Acquire(t.Context(), cs, ns, "dev", second, 0, unlock, &out)
	if err == nil {
		t.Fatal("a second Acquire took a held lock")
	}
	var stale *StaleError
	if errors.As(err, &stale) {
		t.Fatalf("a live lock was reported stale: %v", err)
	}
	for _, want := range []string{"the deploy lock of dev is still held by",
		me.User + "@" + me.Host, "(pid " + strconv.Itoa(os.Getpid()), "DEPLOY_LOCK_TIMEOUT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if !strings.Contains(out.String(), "waiting for the deploy lock of dev: held by "+me.User+"@"+me.Host) {
		t.Errorf("the waiting run was not told who holds the lock: %q", out.String())
	}

	// Another environment's lock is another Lease: it does not wait.
	prod, err := Acquire(t.Context(), cs, ns, "prod", second, 0, unlock, io.Discard)
	if err != nil {
		t.Fatalf("the lock of prod waited for the lock of dev: %v", err)
	}
	prod.Release()

	l.Release()
	l.Release() // twice is harmless
	if _, err := cs.CoordinationV1().Leases(ns).Get(t.Context(), LeaseName("dev"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the lease is still there after Release: %v", err)
	}
	again, err := Acquire(t.Context(), cs, ns, "dev", second, 0, unlock, io.Discard)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	again.Release()
}

func TestReleaseLeavesALeaseSomeoneElseHolds(t *testing.T) {
	cs := fake.NewClientset()
	me := Me("/src/monorepo", "mage deploy -env=dev")
	l, err := Acquire(t.Context(), cs, ns, "dev", me, 0, unlock, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The lock was broken and taken by another run meanwhile.
	if err := cs.CoordinationV1().Leases(ns).Delete(t.Context(), LeaseName("dev"), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	theirs := other("build-42", 7)
	if _, err := cs.CoordinationV1().Leases(ns).Create(t.Context(), lease(theirs, time.Now()), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	l.Release()
	got, err := cs.CoordinationV1().Leases(ns).Get(t.Context(), LeaseName("dev"), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Release removed another run's lease: %v", err)
	}
	if *got.Spec.HolderIdentity != theirs.ID {
		t.Errorf("holder = %s, want %s", *got.Spec.HolderIdentity, theirs.ID)
	}
}

func TestAcquireReportsAStaleLockWithTheCommandThatBreaksIt(t *testing.T) {
	cs := fake.NewClientset()
	gone := other("build-42", 7)
	if _, err := cs.CoordinationV1().Leases(ns).Create(t.Context(), lease(gone, time.Now().Add(-5*time.Minute)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(t.Context(), cs, ns, "dev", Me("/src", "mage deploy"), time.Minute, unlock, io.Discard)
	var stale *StaleError
	if !errors.As(err, &stale) {
		t.Fatalf("Acquire = %v, want a *StaleError", err)
	}
	if stale.Env != "dev" || stale.Holder.ID != gone.ID || stale.Unlock != unlock {
		t.Errorf("StaleError = %+v", stale)
	}
	for _, want := range []string{"held by alice@build-42 (pid 7", "its heartbeat stopped", "it is stale", "break it with: " + unlock} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// terraformLease is Terraform's kubernetes-backend state lock, held.
func terraformLease() *coordinationv1.Lease {
	id := "6f1c0a52-0000-4000-8000-000000000001"
	info, _ := json.Marshal(map[string]string{"ID": id, "Operation": "OperationTypeApply", "Who": "alice@build-42", "Created": "2026-01-02T03:04:05Z"})
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: stateLease, Namespace: ns, Annotations: map[string]string{"app.terraform.io/lock-info": string(info)}},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &id},
	}
}

func TestBreakRefusesALiveLock(t *testing.T) {
	shortHeartbeat(t)
	cs := fake.NewClientset(terraformLease())
	l, err := Acquire(t.Context(), cs, ns, "dev", Me("/src", "mage deploy"), 0, unlock, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Release)
	err = Break(t.Context(), cs, ns, "dev", []string{stateLease}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "its heartbeat is live: a deploy is running; wait for it to end") {
		t.Fatalf("Break of a live lock = %v, want a refusal", err)
	}
	if _, err := cs.CoordinationV1().Leases(ns).Get(t.Context(), LeaseName("dev"), metav1.GetOptions{}); err != nil {
		t.Errorf("the live deploy lock is gone: %v", err)
	}
	tfl, err := cs.CoordinationV1().Leases(ns).Get(t.Context(), stateLease, metav1.GetOptions{})
	if err != nil || tfl.Spec.HolderIdentity == nil {
		t.Errorf("Terraform's lock was cleared under a live deploy: %v %+v", err, tfl)
	}
}

func TestBreakRemovesAStaleLockAndClearsTerraformsLock(t *testing.T) {
	gone := other(hostname(t), gonePID(t))
	cs := fake.NewClientset(lease(gone, time.Now()), terraformLease())

	info, err := Inspect(t.Context(), cs, ns, "dev", []string{stateLease})
	if err != nil {
		t.Fatal(err)
	}
	if info.Deploy == nil || info.Deploy.ID != gone.ID || !strings.Contains(info.DeployStale, "has gone from this machine") {
		t.Errorf("Inspect deploy lock = %+v, %q", info.Deploy, info.DeployStale)
	}
	if want := "held by alice@build-42 for OperationTypeApply since 2026-01-02T03:04:05Z"; !strings.Contains(info.State, want) {
		t.Errorf("Inspect state lock = %q, want %q", info.State, want)
	}
	if d := info.Describe("dev"); !strings.Contains(d, "deploy lock of dev: stale, held by alice@") || !strings.Contains(d, "Terraform state lock: held by alice@build-42") {
		t.Errorf("Describe = %q", d)
	}

	if err := Break(t.Context(), cs, ns, "dev", []string{stateLease}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoordinationV1().Leases(ns).Get(t.Context(), LeaseName("dev"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the stale deploy lock is still there: %v", err)
	}
	tfl, err := cs.CoordinationV1().Leases(ns).Get(t.Context(), stateLease, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Terraform's Lease was deleted, not cleared: %v", err)
	}
	if tfl.Spec.HolderIdentity != nil {
		t.Errorf("Terraform's lock still has holder %q", *tfl.Spec.HolderIdentity)
	}
	if _, ok := tfl.Annotations["app.terraform.io/lock-info"]; ok {
		t.Error("Terraform's lock info is still there")
	}

	info, err = Inspect(t.Context(), cs, ns, "dev", []string{stateLease})
	if err != nil {
		t.Fatal(err)
	}
	if info.Deploy != nil || info.State != "" || info.Describe("dev") != "deploy lock of dev: free; Terraform state lock: free" {
		t.Errorf("after Break: %+v, %q", info, info.Describe("dev"))
	}
	// Breaking free locks is harmless.
	if err := Break(t.Context(), cs, ns, "dev", []string{stateLease}, io.Discard); err != nil {
		t.Errorf("Break of free locks = %v", err)
	}
}

func TestAcquireCallsALeaseStaleWhenItsHeartbeatStopsWhileWatched(t *testing.T) {
	shortHeartbeat(t)
	cs := fake.NewClientset()
	// Renewed "now" by a holder on another machine, then never again.
	if _, err := cs.CoordinationV1().Leases(ns).Create(t.Context(), lease(other("build-42", 7), time.Now()), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(t.Context(), cs, ns, "dev", Me("/src", "mage deploy"), time.Minute, unlock, io.Discard)
	var stale *StaleError
	if !errors.As(err, &stale) || !strings.Contains(err.Error(), "has not been renewed for") {
		t.Fatalf("Acquire = %v, want a stale lock once its heartbeat stops", err)
	}
}

func TestALoneStateLockIsClearedOnlyWhenOld(t *testing.T) {
	young := terraformLease()
	info, _ := json.Marshal(map[string]string{"ID": *young.Spec.HolderIdentity, "Operation": "OperationTypePlan", "Who": "bob@laptop",
		"Created": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)})
	young.Annotations["app.terraform.io/lock-info"] = string(info)
	cs := fake.NewClientset(young)
	if err := Break(t.Context(), cs, ns, "dev", []string{stateLease}, io.Discard); err == nil || !strings.Contains(err.Error(), "a plan or a terraform command may be running") {
		t.Errorf("Break of a young lone state lock = %v, want a refusal", err)
	}
	cs = fake.NewClientset(terraformLease()) // created in 2026-01-02: old
	if err := Break(t.Context(), cs, ns, "dev", []string{stateLease}, io.Discard); err != nil {
		t.Errorf("Break of an old lone state lock = %v", err)
	}
}

func TestALockBrokenUnderItsHolderIsReportedLost(t *testing.T) {
	shortHeartbeat(t)
	cs := fake.NewClientset()
	l, err := Acquire(t.Context(), cs, ns, "dev", Me("/src", "mage deploy"), 0, unlock, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Release)
	if err := cs.CoordinationV1().Leases(ns).Delete(t.Context(), LeaseName("dev"), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(5 * time.Second):
		t.Error("the holder was not told its lock was broken")
	}
}

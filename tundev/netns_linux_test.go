package tundev_test

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// netNS is a network namespace of the test's own, entered by one locked OS
// thread that runs the functions given to Do. Sockets and devices made in
// Do belong to the namespace and may then be used from any goroutine. The
// thread exits without unlocking when the test ends, so the runtime
// discards it rather than reusing a thread in a foreign namespace.
type netNS struct {
	do   chan func()
	done chan struct{}
}

// newNetNS makes a namespace for tb, or skips tb when it cannot.
func newNetNS(tb testing.TB) *netNS {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (CAP_NET_ADMIN) for a network namespace and a TUN device")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		tb.Skipf("no /dev/net/tun: %v", err)
	}
	n := &netNS{do: make(chan func()), done: make(chan struct{})}
	ready := make(chan error)
	go n.loop(ready)
	if err := <-ready; err != nil {
		tb.Skipf("cannot make a network namespace: %v", err)
	}
	tb.Cleanup(func() { close(n.do); <-n.done })
	return n
}

func (n *netNS) loop(ready chan<- error) {
	defer close(n.done)
	runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		ready <- err
		return
	}
	ready <- nil
	for f := range n.do {
		f()
	}
}

// Do runs f on the namespace's thread and returns its error.
func (n *netNS) Do(f func() error) error {
	errc := make(chan error, 1)
	select {
	case n.do <- func() { errc <- f() }:
	case <-n.done:
		return errors.New("namespace thread gone")
	}
	return <-errc
}

//go:build linux

// Package netns gives tests and benchmarks network namespaces of their
// own: anonymous ones, each entered by one locked OS thread.
package netns

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// NS is an anonymous network namespace, entered by one locked OS thread
// that runs the functions given to Do. Sockets and devices made there
// belong to the namespace and may be used from any goroutine. The thread
// ends without unlocking, so the runtime discards it rather than reuse a
// thread in a foreign namespace; the namespace itself goes when the last
// socket or device in it is closed (nothing is named or mounted, so
// nothing outlives the process, however it ends). Making one needs
// CAP_NET_ADMIN.
type NS struct {
	do   chan func()
	done chan struct{}
}

// New makes a namespace and its thread.
func New() (*NS, error) {
	n := &NS{do: make(chan func()), done: make(chan struct{})}
	ready := make(chan error)
	go n.loop(ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return n, nil
}

func (n *NS) loop(ready chan<- error) {
	defer close(n.done)
	runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		ready <- fmt.Errorf("netns: unshare: %w", err)
		return
	}
	ready <- nil
	for f := range n.do {
		f()
	}
}

// Do runs f on the namespace's thread and returns its error.
func (n *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	select {
	case n.do <- func() { errc <- f() }:
	case <-n.done:
		return errors.New("netns: namespace thread gone")
	}
	return <-errc
}

// Close ends the namespace's thread and waits for it.
func (n *NS) Close() {
	close(n.do)
	<-n.done
}

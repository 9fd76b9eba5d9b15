package netconn

import (
	"context"
	"net"
	"sync"
	"time"
)

// deadline is one direction's deadline, in the style of net/pipe.go's
// pipeDeadline: cancel is closed when the deadline passes and made anew
// only when the deadline is set again after it passed. A deadline moved or
// cleared before it passes keeps its channel, so calls already blocked on
// it see the new time without being re-issued.
//
// A *deadline is also the context.Context of every blocking request in its
// direction: Done is cancel, so each request costs no allocation. Closing
// the conn shuts the deadline: cancel is closed for good.
//
// cancel is made lazily: it stays nil until a deadline is set or a
// request has to wait on Done (a request its caller serves at once never
// asks), so a conn that never sets a deadline and never waits allocates
// no channel. A nil cancel means no deadline and nobody waiting on it.
//
// Lock order: mu is a leaf; the timer's function takes no lock.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer   // +checklocks:mu
	cancel chan struct{} // +checklocks:mu
	// +checklocks:mu
	shut bool // the conn is closed
}

var _ context.Context = (*deadline)(nil)

// newDeadlines makes a conn's read and write deadlines in one allocation.
func newDeadlines() (rd, wd *deadline) {
	ds := new([2]deadline)
	return &ds[0], &ds[1]
}

// set arms the deadline for t; the zero time clears it. It has no effect
// once the deadline is shut.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.shut {
		return
	}
	d.stopTimerLocked()
	closed := d.cancel != nil && isClosedChan(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = nil // made again when needed
		}
		return
	}
	if d.cancel == nil || closed {
		d.cancel = make(chan struct{})
	}
	if dur := time.Until(t); dur > 0 {
		c := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(c) })
		return
	}
	close(d.cancel)
}

// stopTimerLocked stops the timer; if it already fired, it waits until the
// timer's function has closed cancel.
//
// +checklocks:d.mu
func (d *deadline) stopTimerLocked() {
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel
	}
	d.timer = nil
}

// close shuts the deadline: cancel is closed and stays closed, waking every
// call blocked on it.
func (d *deadline) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.shut {
		return
	}
	d.shut = true
	d.stopTimerLocked()
	if d.cancel != nil && !isClosedChan(d.cancel) {
		close(d.cancel)
	} // a nil cancel has nobody waiting: Done makes it closed
}

// check returns net.ErrClosed after close, context.DeadlineExceeded while
// the deadline is past, and nil otherwise.
func (d *deadline) check() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.shut:
		return net.ErrClosed
	case d.cancel != nil && isClosedChan(d.cancel):
		return context.DeadlineExceeded
	}
	return nil
}

// Deadline implements context.Context. It reports no deadline: the time
// may move while a request waits, and Done tells when it passes.
func (d *deadline) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context; it makes cancel if there is none yet
// (closed once the deadline is shut).
func (d *deadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
		if d.shut {
			close(d.cancel)
		}
	}
	return d.cancel
}

// Err implements context.Context. It returns net.ErrClosed after the conn
// closed, so the engine's answer to a cancelled request reads as such.
func (d *deadline) Err() error { return d.check() }

// Value implements context.Context; a deadline carries no values.
func (d *deadline) Value(any) any { return nil }

func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

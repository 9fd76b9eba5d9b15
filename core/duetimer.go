package core

import "time"

// dueTimer runs a function at the earliest of the times it is armed for:
// the one timer of each part of the link that acts later (the recovery
// probes and ACK hold, the loss repair, the reorder hold, the SYN
// retries). Its owner
// guards it with its own lock, calls fired first in the function the
// timer runs, and stop when it closes.
type dueTimer struct {
	t  *time.Timer
	at time.Time // when t fires; zero when it is not armed
}

// arm makes the timer run f at at, or earlier if it is armed for earlier.
// f must be the same function on every call.
func (d *dueTimer) arm(at time.Time, f func()) {
	if !d.at.IsZero() && !at.Before(d.at) {
		return
	}
	d.at = at
	if d.t == nil {
		d.t = time.AfterFunc(time.Until(at), f)
		return
	}
	d.t.Reset(time.Until(at))
}

// fired records that the timer ran: the next arm sets it again.
func (d *dueTimer) fired() { d.at = time.Time{} }

// stop stops the timer.
func (d *dueTimer) stop() {
	if d.t != nil {
		d.t.Stop()
	}
}

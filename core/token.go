package core

import (
	"sync"
	"sync/atomic"
)

// The owner token (DESIGN.md, invariant 1). Socket state (the handle
// table, parked requests, gVisor endpoints of sockets) is touched only by
// the token's holder: the engine goroutine in Run, or, while Run drives
// the stack, a caller of Channel.Request that finds the token free and
// serves the queue itself, or a manual driver in ProcessOneCmd and
// PollDeviceIO. The token is a mutex, so each hand-over is a
// happens-before edge the race detector sees.
//
// Order. Every request goes into the one FIFO queue first; whoever holds
// the token takes requests from its head. So a caller serving "its own"
// request serves every request queued before it first, non-blocking ones
// included: no request overtakes another.
//
// Nothing is left behind. A caller that fails to take the token relies on
// the holder: after it lets go of the token, a holder looks at the queue
// and the ready list again (pending) and serves them, or wakes the engine
// goroutine. A goroutine that queues work for which it will not take the
// token (RequestNonblocking, gVisor's readiness callback markReady) wakes
// someone only when held is false: if it reads true, the holder has not
// yet let go, and its look after letting go finds the work. (Mutexes and
// atomics are sequentially consistent in Go's memory model, so "queued,
// then read held" against "cleared held, then looked" cannot both miss.)
//
// Bounded. A caller serves at most callerTurns turns of at most
// callerBatch commands each (plus the ready sockets once per turn), then
// wakes the engine goroutine for the rest and returns to waiting for its
// reply. A holder never blocks on a device, a reply or gVisor (invariant 4).
type token struct {
	mu sync.Mutex
	// held is true while mu is held: see markReady and RequestNonblocking.
	held atomic.Bool
	// inline is true while Run drives the stack: callers may then take the
	// token and readiness wakes a waiting caller. In manual mode it is
	// false, so whoever calls WaitForCmd sees every command (see
	// ProcessOneCmd).
	inline atomic.Bool
}

const (
	// engineBatch is the most commands the engine goroutine serves in one
	// turn before readiness gets its turn.
	engineBatch = 64
	// callerBatch and callerTurns bound what a caller serves.
	callerBatch = 16
	callerTurns = 4
)

// tryAcquire takes the token if it is free and the stack is not shut. The
// link holds outbound packets for the holder's flush at release.
//
// checklocks cannot follow a lock taken here and let go in another
// function (or taken by TryLock), hence the escape.
//
// +checklocksignore
func (ns *Netstack) tryAcquire() bool {
	if !ns.tok.mu.TryLock() {
		return false
	}
	if ns.shut {
		ns.tok.mu.Unlock()
		return false
	}
	ns.tok.held.Store(true)
	ns.link.hold()
	return true
}

// acquire takes the token, waiting for the holder's bounded turn to end.
// Only the engine goroutine's shutdown and a manual driver wait: a caller
// of Request never does. It reports false once the stack is shut.
//
// checklocks cannot follow a lock taken here and let go in another
// function (or taken by TryLock), hence the escape.
//
// +checklocksignore
func (ns *Netstack) acquire() bool {
	ns.tok.mu.Lock()
	if ns.shut {
		ns.tok.mu.Unlock()
		return false
	}
	ns.tok.held.Store(true)
	ns.link.hold()
	return true
}

// release hands the token back, then lets what the turn sent leave for a
// joined peer (inline, see linkEP.release) without waiting for anyone; an
// InlineWriter device is written before, token held (linkEP.endHold).
//
// checklocks cannot follow a lock taken here and let go in another
// function (or taken by TryLock), hence the escape.
//
// +checklocksignore
func (ns *Netstack) release() {
	if !ns.letGo() {
		ns.link.flushOrWake()
	}
}

// releaseDriver is release for a manual driver (ProcessOneCmd,
// PollDeviceIO): while Run drives the stack too, it looks again after
// letting go, as every holder does, and wakes the engine goroutine for
// what was queued meanwhile by goroutines that found the token held.
//
// +checklocksignore
func (ns *Netstack) releaseDriver() {
	ns.release()
	if ns.tok.inline.Load() && ns.pending() {
		signal(ns.wake)
	}
}

// releaseCaller is release for a caller of Request: after letting go of
// the token, it delivers what waits for a joined peer itself, waiting for
// another deliverer and for the peer's inbound gate (see
// linkEP.deliverAsCaller), so that callers who send do not outrun the
// peer. The next holder's gVisor work meanwhile runs beside the delivery.
//
// +checklocksignore
func (ns *Netstack) releaseCaller() {
	if !ns.letGo() {
		ns.link.deliverAsCaller()
	}
}

// letGo ends the turn's hold on the link (writing an InlineWriter device,
// token held) and lets go of the token; drained reports that nothing waits
// to leave.
//
// +checklocksignore
func (ns *Netstack) letGo() (drained bool) {
	drained = ns.link.endHold()
	ns.tok.held.Store(false)
	ns.tok.mu.Unlock()
	return drained
}

// pending reports whether work waits for a holder: queued commands,
// ready sockets or a UDP sweep.
func (ns *Netstack) pending() bool {
	if len(ns.q.c) > 0 || ns.sweepUDP.Load() || ns.wantPass.Load() || ns.forwardDue() {
		return true
	}
	ns.readyMu.Lock()
	n := len(ns.readyList)
	ns.readyMu.Unlock()
	return n > 0
}

// turn serves up to n queued commands, in order, then the ready sockets.
// The token is held.
func (ns *Netstack) turn(n int) {
	for range n {
		select {
		case r := <-ns.q.c:
			ns.process(r)
			continue
		default:
		}
		break
	}
	if ns.wantPass.Swap(false) || ns.sweepUDP.Load() || ns.forwardDue() || ns.readyWaiting() {
		ns.serviceReady()
	}
}

// readyWaiting reports whether the ready list has sockets.
func (ns *Netstack) readyWaiting() bool {
	ns.readyMu.Lock()
	defer ns.readyMu.Unlock()
	return len(ns.readyList) > 0
}

// serveAsCaller is what a caller of Request does after queuing its
// request, and when its waiting request is kicked by readiness: while Run
// drives the stack, it takes the token if free and serves a bounded batch
// (its own request included, once its turn in the queue comes), then hands
// the token back. It never waits for the token: a holder serves what it
// finds after letting go.
func (ns *Netstack) serveAsCaller() {
	if !ns.tok.inline.Load() {
		return
	}
	for range callerTurns {
		if !ns.tryAcquire() {
			return
		}
		ns.turn(callerBatch)
		ns.callerTurns.Add(1)
		ns.releaseCaller()
		if !ns.pending() {
			return
		}
	}
	signal(ns.wake) // bounded: the engine goroutine serves the rest
}

// engineTurn is one turn of the engine goroutine, woken by ns.wake. If a
// caller holds the token, that caller serves what woke the engine.
func (ns *Netstack) engineTurn() {
	if !ns.tryAcquire() {
		return
	}
	ns.turn(engineBatch)
	ns.release()
	if ns.pending() {
		signal(ns.wake) // readiness and Close get a look in between
	}
}

// kick makes sure work just queued by a goroutine that will not serve it
// (markReady, RequestNonblocking) is served: by the holder if the token is
// held, else by w's caller (a request waiting on the ready socket), else
// by the engine goroutine.
func (ns *Netstack) kick(w *Request) {
	if ns.tok.held.Load() {
		return // the holder looks again after letting go
	}
	if w != nil && ns.tok.inline.Load() {
		signal(w.kick)
		return
	}
	signal(ns.wake)
}

// forwardDue reports whether the forwarder has work for a ready pass (its
// inbox, or a sweep).
func (ns *Netstack) forwardDue() bool { return ns.fwd != nil && ns.fwd.due.Load() }

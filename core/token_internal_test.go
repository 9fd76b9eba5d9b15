package core

import (
	"context"
	"runtime"
	"testing"
)

// Invariant 4: a caller holding the token serves a bounded batch. With
// far more queued than the bound, a caller serves exactly callerTurns
// turns of callerBatch commands, leaves the rest queued and wakes the
// engine goroutine for it.
func TestTokenCallerBatchIsBounded(t *testing.T) {
	ns := newIdleStack(t, "192.0.2.1/24")
	ns.tok.inline.Store(true) // as Run does, without its goroutine
	t.Cleanup(func() { ns.tok.inline.Store(false) })
	ch := ns.CommandChannel()
	const queued = 200
	for i := range queued {
		if err := ch.RequestNonblocking(NoHandle, Nop{}); err != nil {
			t.Fatalf("nonblocking %d: %v", i, err)
		}
	}
	drainSignal(ns.wake)
	ns.serveAsCaller()
	const bound = callerTurns * callerBatch
	if got := ns.commands.Load(); got != bound {
		t.Fatalf("one caller served %d commands, want the bound %d", got, bound)
	}
	if left := len(ns.q.c); left != queued-bound {
		t.Fatalf("%d commands left queued, want %d", left, queued-bound)
	}
	select {
	case <-ns.wake:
	default:
		t.Fatal("the caller left work queued without waking the engine goroutine")
	}
	if turns := ns.callerTurns.Load(); turns != callerTurns {
		t.Fatalf("caller turns %d, want %d", turns, callerTurns)
	}
}

// A caller that finds the token held does not wait for it: its request
// stays queued for the holder, which serves it after its turn.
func TestTokenHeldCallerDoesNotWait(t *testing.T) {
	ns := newIdleStack(t, "192.0.2.1/24")
	ns.tok.inline.Store(true)
	t.Cleanup(func() { ns.tok.inline.Store(false) })
	if !ns.acquire() {
		t.Fatal("acquire failed")
	}
	done := make(chan error, 1)
	go func() {
		_, err := ns.CommandChannel().Request(context.Background(), NoHandle, Nop{})
		done <- err
	}()
	for len(ns.q.c) == 0 { // the caller queued, failed to take the token and waits for its reply
		runtime.Gosched()
	}
	select {
	case err := <-done:
		t.Fatalf("answered (%v) while the token was held", err)
	default:
	}
	ns.release()
	if !ns.pending() {
		t.Fatal("the holder finds nothing pending after its turn")
	}
	ns.engineTurn() // what the holder's look after letting go leads to
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A socket put on the ready list silently (queueReady: nothing was parked
// then) that has a waiting caller by the time gVisor reports it ready
// again wakes that caller: markReady does not take "already queued" to
// mean that someone was woken.
func TestTokenReadyAgainWakesWaiterOfSilentlyQueued(t *testing.T) {
	ns := newIdleStack(t, "192.0.2.1/24")
	ns.tok.inline.Store(true)
	t.Cleanup(func() { ns.tok.inline.Store(false) })
	s := &socket{kind: kindStream, ns: ns}
	ns.queueReady(s) // nothing parked: on the list, nobody woken
	r := newRequest().(*Request)
	s.waiter.Store(r) // then a Read parks, and the data comes
	s.wantRead.Store(true)
	ns.markReady(s)
	select {
	case <-r.kick:
	default:
		t.Fatal("the waiting caller of a socket already on the ready list was not woken")
	}
	ns.readyMu.Lock()
	n := len(ns.readyList)
	ns.readyList = ns.readyList[:0]
	ns.readyMu.Unlock()
	if n != 1 {
		t.Fatalf("the socket is on the ready list %d times, want once", n)
	}
}

package core

import (
	"context"
	"net/netip"
	"runtime"
	"testing"

	"gvisor.dev/gvisor/pkg/waiter"
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

// A readiness event that comes while the holder's request is between its
// failed try and its park is not lost: gVisor's callback decides what the
// event asks for (readiness) then, the holder parks, looks at the ready
// list (empty: the callback has not queued the socket yet) and lets go,
// and only then does the callback act (onReady). The parked request's
// caller must be woken. Before the want flag was set for the try, the
// callback read no flag, queued the socket silently and woke nobody: a
// parked Read with its data in gVisor, the PingPong stall of the reverted
// step 4 (docs/benchmarks.md). The interleaving is played step by step.
func TestTokenReadinessDuringTryIsNotLost(t *testing.T) {
	ns := newIdleStack(t, "192.0.2.1/24")
	ns.tok.inline.Store(true) // as Run does, without its goroutine
	t.Cleanup(func() { ns.tok.inline.Store(false) })
	for _, dir := range []string{"accept", "write"} {
		if !ns.acquire() {
			t.Fatal("acquire failed")
		}
		resp, err, _ := ns.tcpListen(TCPListen{Local: netip.MustParseAddrPort("192.0.2.1:0")})
		if err != nil {
			t.Fatal(err)
		}
		s, err := ns.tab.get(resp.(TCPListening).Handle)
		if err != nil {
			t.Fatal(err)
		}
		r := ns.q.getRequest(s.h, TCPAccept{}) // nothing to accept: it must park
		q := s.queueFor(r.cmd)
		if dir == "write" {
			q = &s.writers // a send that finds the send buffer full parks the same way
		}
		if _, _, wait := s.tryFirst(q, r); !wait {
			t.Fatal("the Accept did not have to wait")
		}
		act := s.readiness(waiter.ReadableEvents | waiter.WritableEvents) // the callback decides now
		ns.park(s, q, r)
		ns.turn(0) // the holder's look at the ready list after its commands
		ns.release()
		if ns.pending() {
			t.Fatal("work pending before the callback acted")
		}
		drainSignal(ns.wake)
		ns.onReady(s, act) // the callback acts
		select {
		case <-r.kick:
		case <-ns.wake:
		default:
			t.Fatalf("%s: readiness during the try: socket queued (%v) with a parked request and nobody woken", dir, s.queued.Load())
		}
		ns.ProcessOneCmd(ns.q.getRequest(s.h, CloseSocket{})) // answers r
		if rep := <-r.reply; rep.err != ErrClosed {
			t.Fatalf("parked request answered %v, want ErrClosed", rep.err)
		}
	}
}

// A socket on the ready list silently (queueReady) whose parked request
// has no waiting caller (a non-blocking send) wakes the engine goroutine
// when gVisor reports it ready again: "already queued" does not mean that
// someone was woken.
func TestTokenReadyAgainWakesEngineForNonblocking(t *testing.T) {
	ns := newIdleStack(t, "192.0.2.1/24")
	ns.tok.inline.Store(true)
	t.Cleanup(func() { ns.tok.inline.Store(false) })
	s := &socket{kind: kindStream, ns: ns}
	ns.queueReady(s)        // nothing parked: on the list, nobody woken
	s.wantWrite.Store(true) // then a non-blocking send parks (no waiter)
	drainSignal(ns.wake)
	ns.onReady(s, s.readiness(waiter.WritableEvents))
	select {
	case <-ns.wake:
	default:
		t.Fatal("a parked non-blocking send of a socket already on the ready list woke nobody")
	}
	ns.readyMu.Lock()
	ns.readyList = ns.readyList[:0]
	ns.readyMu.Unlock()
}

// A manual driver (ProcessOneCmd, PollDeviceIO) mixed with an active Run
// looks again after letting go of the token, as every holder does: a
// socket its own turn put on the ready list (a cancel readies the socket
// for the next request in line, waking nobody while the token is held) is
// not stranded until some later wake-up.
func TestTokenManualDriverLooksAgain(t *testing.T) {
	ns := newIdleStack(t, "192.0.2.1/24")
	ns.tok.inline.Store(true) // Run is active, without its goroutine
	t.Cleanup(func() { ns.tok.inline.Store(false) })
	listen := ns.q.getRequest(NoHandle, TCPListen{Local: netip.MustParseAddrPort("192.0.2.1:0")})
	ns.ProcessOneCmd(listen)
	rep := <-listen.reply
	if rep.err != nil {
		t.Fatal(rep.err)
	}
	acc := ns.q.getRequest(rep.resp.(TCPListening).Handle, TCPAccept{})
	ns.ProcessOneCmd(acc) // nothing to accept: it parks
	ns.serviceReady()     // (as the idle engine would) empty the ready list
	drainSignal(ns.wake)
	c := ns.q.getRequest(NoHandle, cancel{target: acc, seq: acc.seq.Load()})
	c.noReply = true
	ns.ProcessOneCmd(c)
	if rep := <-acc.reply; rep.err != ErrCanceled {
		t.Fatalf("cancelled Accept answered %v, want ErrCanceled", rep.err)
	}
	if !ns.pending() {
		t.Fatal("the cancel readied nothing")
	}
	select {
	case <-ns.wake:
	default:
		t.Fatal("ProcessOneCmd let go of the token with a ready socket and woke nobody")
	}
}

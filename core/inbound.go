package core

import (
	"errors"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// gVisor takes every inbound packet it is handed and queues it for a
// consumer without looking at how much is already queued: TCP segments go
// to the segment queue of their endpoint, drained by gVisor's processor
// goroutines (which admit segments without payload even past the
// endpoint's buffer, and any segment while the processor lags), and UDP
// datagrams to their socket, drained by the token holder. A device can hand over
// packets far faster than those consumers use them (a SYN flood costs
// gVisor several times more to answer than to queue), so without a bound
// the queues, and the heap, grow as long as the flood lasts.
//
// The inbound gate is that bound, the inbound counterpart of the bounded
// outbound ring: every packet delivered into gVisor is charged its size
// plus packetOverhead, and once inboundBudget is charged, deliverers that
// may wait (the inbound pump, a PushDevice's Receive, a peer's outbound
// pump) wait, as a full NIC ring makes a sender wait, and those that may
// not (a token holder, or gVisor's goroutine, delivering to a joined peer)
// stop and leave their packets to the pump. The charge is paid back by a barrier, run by one goroutine
// per stack once half the budget is charged: with deliveries held off it
// pauses and resumes gVisor's TCP dispatcher, which returns only once every
// processor has emptied its queue, and then waits for a token holder to start
// and finish a pass over its ready list, which drains every UDP socket into
// its bounded queue (see udpQueue). So what was charged before the barrier
// started has been processed when it ends, and no more than the budget is
// ever outstanding. Deliveries are held off during the pause because a
// delivery can hand an endpoint, backlog and all, to a processor that has
// already paused.
const (
	inboundBudget  = 16 << 20
	packetOverhead = 512 // a PacketBuffer, a segment or datagram record, chunk rounding
)

// inGate is a link's inbound gate; see inboundBudget.
type inGate struct {
	budget   int64         // inboundBudget (smaller in tests)
	charged  atomic.Int64  // cost delivered since the barriers last caught up
	barriers atomic.Uint64 // barriers run
	kick     chan struct{} // cap 1: wakes the barrier goroutine
	stopping <-chan struct{}
	// deliverMu is held (read side) while a batch is delivered, and by the
	// barrier while it pauses gVisor.
	deliverMu sync.RWMutex

	mu sync.Mutex
	// +checklocks:mu
	caught chan struct{} // closed (and replaced) when a barrier ends
}

// errInboundBusy stops a deliverer that may not wait (a token holder) at a
// full inbound gate.
var errInboundBusy = errors.New("netcore: inbound gate busy")

// init runs before the gate is shared, so it sets caught without mu.
//
// +checklocksignore
func (g *inGate) init(stopping <-chan struct{}) {
	g.budget, g.kick, g.stopping, g.caught = inboundBudget, make(chan struct{}, 1), stopping, make(chan struct{})
}

// cost is what a packet of n bytes is charged.
func cost(n int) int64 { return int64(n) + packetOverhead }

// charge records packets worth c delivered into gVisor.
func (g *inGate) charge(c int64) {
	if g.charged.Add(c) >= g.budget/2 {
		signal(g.kick)
	}
}

// full reports whether the budget is spent: a deliverer that may not wait
// stops.
func (g *inGate) full() bool { return g.charged.Load() >= g.budget }

// wait waits until the budget has room. It reports false once the stack is
// stopping.
func (g *inGate) wait() bool {
	for g.full() {
		g.mu.Lock()
		caught := g.caught
		g.mu.Unlock()
		if !g.full() {
			return true
		}
		signal(g.kick)
		select {
		case <-caught:
		case <-g.stopping:
			return false
		}
	}
	return true
}

// enter admits a batch of deliveries, ended by leave. With wait it waits
// for room, failing with ErrClosed once the stack stops; without, it fails
// with errInboundBusy when the budget is spent or a barrier is running.
//
// checklocks has no model of TryRLock, nor of a lock held on success
// only and released by another function (leave), hence the escapes.
//
// +checklocksignore
func (g *inGate) enter(wait bool) error {
	if !wait {
		if g.full() || !g.deliverMu.TryRLock() {
			return errInboundBusy
		}
		return nil
	}
	if !g.wait() {
		return ErrClosed
	}
	g.deliverMu.RLock()
	return nil
}

// leave ends a batch begun by enter (see enter on checklocks).
//
// +checklocksignore
func (g *inGate) leave() { g.deliverMu.RUnlock() }

// caughtUp pays back c and wakes the waiters.
func (g *inGate) caughtUp(c int64) {
	g.charged.Add(-c)
	g.mu.Lock()
	close(g.caught)
	g.caught = make(chan struct{})
	g.mu.Unlock()
}

// runBarrier is the stack's barrier goroutine (see inboundBudget); it
// ends when the stack stops.
func (ns *Netstack) runBarrier() {
	defer ns.pumps.Done()
	g := &ns.link.in
	tcpProto := ns.s.TransportProtocolInstance(tcp.ProtocolNumber)
	for {
		select {
		case <-g.kick:
		case <-ns.stopping:
			return
		}
		for {
			g.deliverMu.Lock()
			c := g.charged.Load()
			if c < g.budget/2 {
				g.deliverMu.Unlock()
				break
			}
			tcpProto.Pause() // returns once every processor's queue is empty
			tcpProto.Resume()
			g.deliverMu.Unlock()
			if !ns.awaitReadyPass() {
				return
			}
			g.barriers.Add(1)
			g.caughtUp(c)
		}
	}
}

// awaitReadyPass waits until a token holder has started and finished a pass
// over its ready list, waking it for one. Without Run there is no engine
// to wait for (the one driving the stack by hand reads when it likes). It
// reports false once the stack is stopping.
func (ns *Netstack) awaitReadyPass() bool {
	ns.runMu.Lock()
	running := ns.running
	ns.runMu.Unlock()
	if !running {
		return true
	}
	ns.sweepUDP.Store(true) // before start: any pass after start sweeps
	start := ns.passesStarted.Load()
	ns.wantPass.Store(true) // after start: the pass a holder makes for it counts
	signal(ns.wake)
	for ns.passesDone.Load() <= start {
		select {
		case <-ns.passed:
		case <-ns.stopping:
			return false
		}
	}
	return true
}

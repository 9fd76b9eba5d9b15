package core

import (
	"encoding/binary"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Delivery to a joined peer in lanes. Whoever delivers a link's queued
// packets to its peer (a caller after its turn, gVisor's goroutine inline,
// the outbound pump) takes them from the queue under flushMu, in order,
// and then delivers them holding the lanes of their flows instead of
// flushMu, so that the next deliverer can take the next packets and
// deliver those of other flows beside it: with several flows, two cores
// do the peer's inbound gVisor work. A flow's packets all take one lane
// (a hash of the transport ports), and a deliverer takes its lanes before
// it lets go of flushMu, so a later batch of a flow waits for the earlier
// one: order per flow is kept (fragments of one datagram may take another
// lane than its first fragment, which reassembly does not mind, and a
// datagram completes only once its every fragment is in, after the
// earlier ones of its lanes). Lock order: flushMu, the peer's inbound gate
// (read side), then lanes in increasing order; a lane holder takes none
// of them.
const deliverLanes = 8

// laneBatch is the most packets one deliverer takes from the queue at a
// time.
const laneBatch = 64

// lanes are a link's delivery lanes.
type lanes [deliverLanes]sync.Mutex

// laneSet is a set of lanes, one bit each.
type laneSet uint16

// laneOf is pkt's lane: a hash of its UDP or TCP ports, lane 0 for
// other packets.
func laneOf(pkt *stack.PacketBuffer) int {
	switch pkt.TransportProtocolNumber {
	case header.UDPProtocolNumber, header.TCPProtocolNumber:
	default:
		return 0
	}
	th := pkt.TransportHeader().Slice()
	if len(th) < 4 {
		return 0
	}
	ports := binary.BigEndian.Uint32(th)
	ports ^= ports >> 16
	ports ^= ports >> 8
	return int(ports % deliverLanes)
}

// peekLanes returns the lanes of the first (up to laneBatch) queued
// packets and how many they are.
func (l *linkEP) peekLanes() (set laneSet, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(l.n, laneBatch)
	for i := range n {
		set |= 1 << laneOf(l.q[(l.head+i)%len(l.q)])
	}
	return set, n
}

// lock takes the lanes of set, in order, waiting for their holders; or,
// without wait, only if none is held, reporting whether it took them.
//
// checklocks has no model of a set of locks, hence the escape.
//
// +checklocksignore
func (ls *lanes) lock(set laneSet, wait bool) bool {
	for i := range deliverLanes {
		if set&(1<<i) == 0 {
			continue
		}
		if wait {
			ls[i].Lock()
		} else if !ls[i].TryLock() {
			ls.unlock(set & (1<<i - 1))
			return false
		}
	}
	return true
}

// unlock lets go of the lanes of set.
//
// +checklocksignore
func (ls *lanes) unlock(set laneSet) {
	for i := range deliverLanes {
		if set&(1<<i) != 0 {
			ls[i].Unlock()
		}
	}
}

// flushToPeerLocked delivers every queued packet to peer, in order per
// flow, waiting for room in peer's inbound gate and for the lanes; it
// fails with ErrClosed once peer is closed or stopping (the packets are
// dropped). flushMu is held on entry and on return, but not while a batch
// is delivered (see deliverLanes). Without wait it stops with
// errInboundBusy when peer's inbound gate has no room or a lane it needs
// is held, leaving the rest queued for the lane's holder, which looks at
// the queue again when it is done, or for the outbound pump.
//
// checklocks cannot follow flushMu let go of and taken again around the
// delivery, hence the escape.
//
// +checklocksignore
func (l *linkEP) flushToPeerLocked(peer *linkEP, wait bool) error {
	for {
		if err := peer.in.enter(wait); err != nil {
			return err
		}
		set, want := l.peekLanes()
		if want == 0 {
			peer.in.leave()
			return nil
		}
		if !l.lanes.lock(set, wait) {
			peer.in.leave()
			return errInboundBusy
		}
		var batch [laneBatch]*stack.PacketBuffer
		n := l.dequeue(batch[:want])
		l.flushMu.Unlock()
		ok := true
		for _, p := range batch[:n] {
			if ok = ok && peer.deliverPacket(p, wait); !ok {
				l.drops.Add(1)
			}
			p.DecRef()
		}
		l.lanes.unlock(set)
		peer.in.leave()
		l.flushMu.Lock()
		if !ok {
			return ErrClosed
		}
	}
}

package core

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// gVisor charges a queued datagram only its payload against the socket's
// receive buffer, although each one costs it some 700 bytes more (a packet
// buffer, its chunk and a record); empty datagrams cost nothing at all, so
// a flood of them queues without limit. So the engine leaves a UDP socket
// at most keptInGVisor datagrams in gVisor (a ping socket none) and takes
// the rest out, oldest first, into the socket's udpQueue, which charges
// each its real cost, its bytes plus datagramOverhead, within
// Config.UDPRecvBuffer; past it datagrams are dropped and counted
// (Stats.UDPQueueDrops). Receives take from the udpQueue first, then from
// gVisor, so order is kept.
//
// The engine does so when it services the socket and no receive is parked
// on it, and for every socket that had datagrams left in gVisor (its watch
// list) on each pass the inbound barrier asks for, so gVisor holds no more
// than keptInGVisor plus what devices delivered since the last barrier,
// which the inbound gate bounds (see inboundBudget). The cost is one copy
// more for a datagram that waits behind more than keptInGVisor others; one
// that finds a receive parked, or a short queue, still goes straight from
// gVisor into the caller's buffer.
const (
	datagramOverhead = 128 // the record, its slot in the queue, allocation rounding
	keptInGVisor     = 256
)

// datagram is one received datagram taken from gVisor.
type datagram struct {
	from netip.AddrPort
	data []byte
}

// udpQueue is a socket's FIFO of datagrams taken from gVisor, made when
// the first is taken. Only the token holder touches it.
type udpQueue struct {
	q    []datagram
	head int
	cost int // charged for what is queued
	// err is an error gVisor reported instead of a datagram (an ICMP error
	// on a connected socket, which gVisor reports once), kept for the next
	// receive.
	err tcpip.Error
	w   datagramWriter
	// taken counts the datagrams read from gVisor, here or by receives.
	taken uint64
	// watched is set while the socket is on the engine's watch list.
	watched bool
	// pending is an error met by a receive batch after it had filled some
	// messages, kept for the next receive.
	pending error
	// flat is the payload of a send from one buffer.
	flat flatPayload
	// gather and scatter are the payload of a send from several buffers
	// and the room of a receive into several (UDPSendBatch, UDPRecvBatch).
	gather  gatherReader
	scatter scatterWriter
	// to is the destination of the send being made (gVisor's WriteOptions
	// takes a pointer; a field of the socket's queue costs no allocation).
	to tcpip.FullAddress
	// routes are the routes of an unconnected socket's last destinations
	// (see routeCache), made on its first send.
	routes *routeCache
	// noRoutes is set once the socket is closed: it never caches routes
	// again.
	noRoutes bool
	// connected is set once the socket is connected to peer: sends with
	// no destination go there through the route cache.
	connected bool
	peer      tcpip.FullAddress
	// fast is the socket's inbox of datagrams the link delivered past
	// gVisor (see udpFast), made when the socket first takes them, and
	// fastPort the port the socket counts for in udpFast.ports.
	fast     *fastInbox
	fastPort uint16
}

// datagramWriter collects one datagram gVisor writes out.
type datagramWriter struct{ b []byte }

// Write implements io.Writer.
func (w *datagramWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (q *udpQueue) empty() bool { return q.head == len(q.q) }

// push queues d if it fits within limit, and reports whether it did.
func (q *udpQueue) push(d datagram, limit int) bool {
	c := cap(d.data) + datagramOverhead
	if q.cost+c > limit {
		return false
	}
	if q.head > 0 && len(q.q) == cap(q.q) {
		n := copy(q.q, q.q[q.head:])
		clear(q.q[n:])
		q.q, q.head = q.q[:n], 0
	}
	q.q = append(q.q, d)
	q.cost += c
	return true
}

// pop takes the oldest datagram; the queue must not be empty. An emptied
// queue lets go of its slots past a few.
func (q *udpQueue) pop() datagram {
	d := q.q[q.head]
	q.q[q.head] = datagram{}
	q.head++
	q.cost -= cap(d.data) + datagramOverhead
	if q.empty() {
		q.head = 0
		if q.q = q.q[:0]; cap(q.q) > keptSlots {
			q.q = nil
		}
	}
	return d
}

// keptSlots is how many slots an emptied udpQueue keeps for reuse.
const keptSlots = 64

// takeDatagrams moves the datagrams gVisor holds for s past the ones it
// may keep into s's queue, unless receives are parked on s (they take
// them first, straight from gVisor) or an error is kept. A UDP socket with
// datagrams left in gVisor goes on the watch list.
func (s *socket) takeDatagrams() {
	q := s.dgrams
	if q == nil || s.closed || len(s.readers) > 0 {
		return
	}
	for q.err == nil && s.heldInGVisor() > s.keepInGVisor() {
		q.w.b = nil
		res, terr := s.ep.Read(&q.w, tcpip.ReadOptions{NeedRemoteAddr: true})
		switch terr.(type) {
		case nil:
		case *tcpip.ErrWouldBlock, *tcpip.ErrClosedForReceive:
			return // nothing there, or nothing ever again (gVisor says so again)
		default:
			q.err = terr
			return
		}
		q.taken++
		d := datagram{from: fromFull(res.RemoteAddr), data: q.w.b}
		q.w.b = nil
		if !q.push(d, s.ns.cfg.UDPRecvBuffer) {
			s.ns.udpQueueDrops.Add(1)
		}
	}
	if s.kind == kindUDP && !q.watched && s.heldInGVisor() > 0 {
		q.watched = true
		s.ns.udpWatch = append(s.ns.udpWatch, s)
	}
}

// keepInGVisor is how many datagrams s may leave in gVisor.
func (s *socket) keepInGVisor() uint64 {
	if s.kind == kindUDP {
		return keptInGVisor
	}
	return 0
}

// heldInGVisor is how many datagrams gVisor holds for s: for UDP those it
// took (its counters count them before deciding) less those read; a ping
// socket's count is not known, so it says 1 until a read finds none.
func (s *socket) heldInGVisor() uint64 {
	if s.kind != kindUDP {
		return 1
	}
	st, ok := s.ep.Stats().(*tcpip.TransportEndpointStats)
	if !ok {
		return 1
	}
	in := st.PacketsReceived.Value() - st.ReceiveErrors.ClosedReceiver.Value() - st.ReceiveErrors.ReceiveBufferOverflow.Value()
	if in <= s.dgrams.taken {
		return 0
	}
	return in - s.dgrams.taken
}

// sweepDatagrams runs takeDatagrams for every socket on the watch list.
func (ns *Netstack) sweepDatagrams() {
	list := ns.udpWatch
	ns.udpWatch = nil
	for _, s := range list {
		s.dgrams.watched = false
		s.takeDatagrams()
	}
	clear(list)
}

// recvQueued answers a receive from s's queue or its kept error; ok is
// false if there is neither.
func (s *socket) recvQueued(buf []byte) (v UDPRecvd, err error, ok bool) {
	d, err, ok := s.takeQueued()
	if !ok || err != nil {
		return v, err, ok
	}
	n := copy(buf, d.data)
	return UDPRecvd{N: n, From: d.from, Truncated: n < len(d.data)}, nil, true
}

// recvQueuedTo is recvQueued into several buffers.
func (s *socket) recvQueuedTo(w *scatterWriter) (v UDPRecvd, err error, ok bool) {
	d, err, ok := s.takeQueued()
	if !ok || err != nil {
		return v, err, ok
	}
	n, _ := w.Write(d.data)
	return UDPRecvd{N: n, From: d.from, Truncated: n < len(d.data)}, nil, true
}

// takeQueued takes s's oldest queued datagram, or its kept error; ok is
// false if there is neither.
func (s *socket) takeQueued() (d datagram, err error, ok bool) {
	q := s.dgrams
	switch {
	case q == nil:
		return d, nil, false
	case q.pending != nil:
		err, q.pending = q.pending, nil
		return d, err, true
	case q.err != nil:
		err, q.err = fromTCPIP(q.err), nil
		return d, err, true
	case q.empty():
		return d, nil, false
	}
	return q.pop(), nil, true
}

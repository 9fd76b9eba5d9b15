package core

import (
	"bytes"
	"net/netip"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/waiter"
)

type sockKind uint8

const (
	kindStream sockKind = iota + 1
	kindListener
	kindUDP
	kindRaw
	kindPing
	kindForward // the forwarder (see ForwardOpen): no gVisor endpoint

	numKinds // one past the last kind
)

// socket is one gVisor endpoint and the requests parked on it. Only the
// token holder touches it, except queued, which gVisor's waiter callback
// sets, and waiter, which it reads.
type socket struct {
	h        Handle
	kind     sockKind
	ep       tcpip.Endpoint
	wq       *waiter.Queue
	entry    waiter.Entry
	netProto tcpip.NetworkProtocolNumber
	ns       *Netstack

	queued atomic.Bool // on the stack's ready list
	// waiter is the first request parked on s whose caller waits for its
	// reply (readers first, then writers), or nil: markReady wakes its
	// caller to serve s. Set by the holder whenever the parked lists
	// change; it may be stale by the time markReady reads it, which only
	// costs a spurious wake-up (see token).
	waiter atomic.Pointer[Request]
	// wantWrite and wantRead are set by the holder while requests are
	// parked on writers or readers, and on a stream or listener (and for a
	// UDP socket's receives) while the first request in that direction is
	// tried: see readiness.
	wantWrite, wantRead atomic.Bool

	readers, writers []*Request // parked, in arrival order
	// rbuf and wbuf back readers and writers while one request at most is
	// parked in each: a socket's first park allocates nothing (the
	// socket stays in its size class).
	rbuf, wbuf [1]*Request
	closed     bool
	connecting bool  // a TCPConnect is parked on writers
	connFailed bool  // the connect failed: free the socket
	rawProto   uint8 // raw sockets: the transport protocol

	// bytesWritten and bytesRead count what TCPSend and TCPRecv moved
	// (TCPInfo.BytesWritten, BytesRead).
	bytesWritten, bytesRead uint64

	sw tcpip.SliceWriter // reused for reads: never keeps the caller's buffer
	rd bytes.Reader      // reused for writes

	dgrams *udpQueue // UDP and ping: datagrams taken from gVisor (see udpQueue)

	flow *flowState // a forwarded flow's (see ForwardConfig), else nil
}

const allEvents = waiter.ReadableEvents | waiter.WritableEvents | waiter.EventErr | waiter.EventHUp

// newSocket wraps ep, registers for its readiness and adds it to the table.
// On failure ep is closed.
func (ns *Netstack) newSocket(kind sockKind, ep tcpip.Endpoint, wq *waiter.Queue, proto tcpip.NetworkProtocolNumber) (*socket, error) {
	return ns.addSocket(new(socket), kind, ep, wq, proto)
}

// addSocket is newSocket with the socket's memory given.
func (ns *Netstack) addSocket(s *socket, kind sockKind, ep tcpip.Endpoint, wq *waiter.Queue, proto tcpip.NetworkProtocolNumber) (*socket, error) {
	*s = socket{kind: kind, ep: ep, wq: wq, netProto: proto, ns: ns}
	s.readers, s.writers = s.rbuf[:0], s.wbuf[:0]
	if _, err := ns.tab.add(s); err != nil {
		ep.Abort()
		return nil, err
	}
	s.entry.Init(s, allEvents) // s is its own listener: no closure to allocate
	wq.EventRegister(&s.entry)
	return s, nil
}

// NotifyEvent is gVisor's readiness callback for s (waiter.EventListener):
// it runs on any goroutine, maybe with gVisor locks held, and only queues
// s (see markReady).
func (s *socket) NotifyEvent(m waiter.EventMask) { s.ns.onReady(s, s.readiness(m)) }

// readyAction is what a readiness event of a socket asks for.
type readyAction uint8

const (
	readyIgnore readyAction = iota // nothing waits for it
	readyQueue                     // the ready list, waking nobody (queueReady)
	readyMark                      // the ready list, waking a server (markReady)
)

// readiness decides what event m of s asks for. A request that is tried
// or parked sets its direction's want flag before its try (see
// socket.tryFirst), so an event this reads no flag for happened before
// any try that could miss it: the try sees what the event reports.
func (s *socket) readiness(m waiter.EventMask) readyAction {
	switch {
	case s.writableOnly(m) && !s.wantWrite.Load():
		return readyIgnore
	case s.readableOnly(m) && !s.wantRead.Load():
		return readyQueue
	case s.isTCP() && !s.wantRead.Load() && !s.wantWrite.Load():
		return readyQueue // nothing tried or parked: see isTCP
	}
	return readyMark
}

// isTCP reports whether s is a stream or a listener. Their readiness with
// no request tried or parked (data or a FIN before the Read, a handshake
// before the Accept, the peer's close after ours began) needs nobody
// woken: the next request tries gVisor itself. The socket still goes on
// the ready list for the next holder's pass. Without this the engine
// goroutine woke for about a quarter of the connections of a
// dial-accept-close cycle (TestConnCycleRequests) and for every segment
// that came before its Read.
func (s *socket) isTCP() bool { return s.kind == kindStream || s.kind == kindListener }

// wantFor returns the want flag a request on q sets before its first try,
// or nil where a park alone sets it: a datagram socket's sends (park asks
// for a ready pass instead, see writableOnly) and raw and forwarder
// sockets.
func (s *socket) wantFor(q *[]*Request) *atomic.Bool {
	switch {
	case s.isTCP() && q == &s.writers:
		return &s.wantWrite
	case s.isTCP() || (s.kind == kindUDP && q == &s.readers):
		return &s.wantRead
	}
	return nil
}

// updateWaiter sets s.waiter after a parked list changed.
func (s *socket) updateWaiter() {
	var w *Request
	switch {
	case len(s.readers) > 0 && !s.readers[0].noReply:
		w = s.readers[0]
	case len(s.writers) > 0 && !s.writers[0].noReply:
		w = s.writers[0]
	}
	if s.waiter.Load() != w {
		s.waiter.Store(w)
	}
	if want := len(s.writers) > 0; s.wantWrite.Load() != want {
		s.wantWrite.Store(want)
	}
	if want := len(s.readers) > 0; s.wantRead.Load() != want {
		s.wantRead.Store(want)
	}
}

// writableOnly reports whether m is a datagram socket's "send space freed"
// alone, which needs no pass over the ready list unless a send is parked.
// gVisor signals it each time a sent packet is released, so without this
// every WriteTo cost its holder a second turn (a ready pass for a socket
// with nothing to do). A send that parks sets wantWrite and then looks
// again (see park), so a signal between its try and the flag is not lost.
func (s *socket) writableOnly(m waiter.EventMask) bool {
	return m&^waiter.WritableEvents == 0 && s.isDgram()
}

// readableOnly reports whether m is a UDP socket's "datagrams arrived"
// alone (gVisor signals it when its queue was empty). With no receive
// tried or parked, nothing waits for it: the socket goes on the ready list
// for the next holder's pass (which moves what gVisor holds past
// keptInGVisor into the socket's queue) without waking the engine
// goroutine. Nobody waits long for that pass: a receive sets wantRead
// before it tries gVisor (see blocking), so a datagram that arrives after
// its try wakes it as before, and the inbound gate's barrier asks for a
// pass at its budget, which bounds what gVisor holds (see udpQueue).
// ping sockets keep nothing in gVisor, so they take no part.
func (s *socket) readableOnly(m waiter.EventMask) bool {
	return m&^waiter.ReadableEvents == 0 && s.kind == kindUDP
}

// isDgram reports whether s is a UDP or ping socket.
func (s *socket) isDgram() bool { return s.kind == kindUDP || s.kind == kindPing }

// accepts reports whether the parking command cmd applies to s's kind.
// Buffer commands come by pointer alone (see Request.setCmd).
func (s *socket) accepts(cmd Command) bool {
	switch cmd.(type) {
	case *TCPSend, *TCPRecv:
		return s.kind == kindStream
	case *TCPAccept:
		return s.kind == kindListener
	case *UDPSend, *UDPRecv, UDPSendBatch, *UDPSendBatch, UDPRecvBatch, *UDPRecvBatch:
		return s.kind == kindUDP || s.kind == kindPing
	case *RawSend, *RawRecv:
		return s.kind == kindRaw
	case ForwardAccept:
		return s.kind == kindForward
	}
	return false
}

// queueFor returns the parking queue for cmd: writers for sends and
// connects, readers for the rest.
func (s *socket) queueFor(cmd Command) *[]*Request {
	switch cmd.(type) {
	case *TCPSend, *UDPSend, *RawSend, *TCPConnect, UDPSendBatch, *UDPSendBatch:
		return &s.writers
	}
	return &s.readers
}

// try runs a parking command once. wait reports that it must park.
// Buffer commands come by pointer alone (see Request.setCmd).
func (s *socket) try(r *Request) (resp Response, err error, wait bool) {
	switch c := r.cmd.(type) {
	case *TCPRecv:
		return s.tcpRecv(c.Buf)
	case *TCPSend:
		return s.tcpSend(r, c.Buf)
	case *TCPAccept:
		return s.tcpAccept(r, c.KeepAlive)
	case *TCPConnect:
		return s.connectDone(r)
	case *UDPRecv:
		return s.udpRecv(c)
	case *UDPSend:
		return s.udpSend(c)
	case *RawRecv:
		return s.rawRecv(c.Buf)
	case *RawSend:
		return s.rawSend(c.Packet)
	case UDPSendBatch, *UDPSendBatch, UDPRecvBatch, *UDPRecvBatch:
		return s.tryBatch(r)
	case ForwardAccept:
		return s.ns.fwd.accept()
	}
	return nil, ErrUnknownCommand, false
}

// partial is the answer to a cancelled request: what it did so far.
func (s *socket) partial(r *Request) Response {
	switch r.cmd.(type) {
	case *TCPSend:
		return TCPSent{N: r.progress}
	case UDPSendBatch, *UDPSendBatch:
		_, result, _, _ := batchCmd(r.cmd)
		return batchDone(result, r.progress)
	}
	return nil
}

func (s *socket) addrs() Addrs {
	var a Addrs
	if la, err := s.ep.GetLocalAddress(); err == nil {
		a.Local = s.fromFull(la)
	}
	if ra, err := s.ep.GetRemoteAddress(); err == nil {
		a.Remote = s.fromFull(ra)
	}
	return a
}

// fromFull converts a gVisor address of this socket, showing an
// unspecified local address as 0.0.0.0 or :: and v4-mapped ones as IPv4.
func (s *socket) fromFull(fa tcpip.FullAddress) netip.AddrPort {
	if fa.Addr.BitLen() == 0 {
		if s.netProto == header.IPv6ProtocolNumber {
			return netip.AddrPortFrom(netip.IPv6Unspecified(), fa.Port)
		}
		return netip.AddrPortFrom(netip.IPv4Unspecified(), fa.Port)
	}
	return fromFull(fa)
}

// toFull converts ap for this socket: IPv4 on an IPv6 socket becomes
// v4-mapped; IPv6 on an IPv4 socket is ErrAddrFamily.
func (s *socket) toFull(ap netip.AddrPort) (tcpip.FullAddress, error) {
	a := ap.Addr()
	if !a.IsValid() {
		return tcpip.FullAddress{}, ErrInvalidAddr
	}
	switch {
	case s.netProto == header.IPv6ProtocolNumber && a.Is4():
		a = netip.AddrFrom16(a.As16())
	case s.netProto == header.IPv4ProtocolNumber && a.Is4In6():
		a = a.Unmap()
	case s.netProto == header.IPv4ProtocolNumber && a.Is6():
		return tcpip.FullAddress{}, ErrAddrFamily
	}
	return tcpip.FullAddress{Addr: tcpAddr(a), Port: ap.Port()}, nil
}

// tcpAddr converts a; the unspecified address becomes gVisor's empty one
// (any address).
func tcpAddr(a netip.Addr) tcpip.Address {
	if a.IsUnspecified() {
		return tcpip.Address{}
	}
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4())
	}
	return tcpip.AddrFrom16(a.As16())
}

func fromFull(fa tcpip.FullAddress) netip.AddrPort {
	var a netip.Addr
	switch fa.Addr.Len() {
	case 4:
		a = netip.AddrFrom4(fa.Addr.As4())
	case 16:
		a = netip.AddrFrom16(fa.Addr.As16()).Unmap()
	}
	return netip.AddrPortFrom(a, fa.Port)
}

// netProto is the network protocol for a, by its family (IPv4-mapped
// addresses count as IPv4).
func netProto(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() || a.Is4In6() {
		return header.IPv4ProtocolNumber
	}
	return header.IPv6ProtocolNumber
}

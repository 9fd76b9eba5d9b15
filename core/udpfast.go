package core

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/waiter"
)

// gVisor's inbound path costs about half the CPU of a received datagram
// (IPv4 HandlePacket with its two address checks, the transport demuxer,
// UDP HandlePacket with three Network() calls, a receive record and a
// packet clone; five allocations), far more than the few checks a plain
// unicast datagram needs. So the link hands a datagram that needs nothing
// more than those checks straight to its socket (the fast path): an IPv4
// packet with no options and no fragmentation, a valid header checksum,
// UDP with a valid length and checksum, to a unicast address of the stack
// (not loopback, not a subnet broadcast), from a source that is not one of
// the stack's, for a port exactly one netcore UDP socket has bound (an
// IPv4 one; a connected socket only from its peer). Its payload goes
// into the socket's inbox (fastInbox), charged its size plus
// datagramOverhead within Config.UDPRecvBuffer as the socket's queue
// charges it (past it the datagram is dropped and counted in
// Stats.UDPQueueDrops); the socket is notified as gVisor's endpoint
// notifies it, and receives take from the inbox without gVisor.
//
// Everything else goes to gVisor as before: other families, fragments,
// IP options, broadcast and multicast, loopback, martian sources, bad
// checksums (gVisor counts them), ports no socket or several sockets hold
// (gVisor picks, or answers ICMP port unreachable), datagrams from
// another source than a connected socket's peer, and every datagram of a
// stack with a packet capture, Ethernet framing, forwarding, raw sockets
// or SendLocalToDevice. ICMP errors are gVisor's as before.
//
// Order: a receive takes the inbox's oldest datagram unless gVisor holds
// (or the socket's queue holds, see udpQueue) one that arrived before it:
// each inbox datagram records how many datagrams gVisor had accepted for
// the socket when it came (the counters heldInGVisor reads).
//
// The deliverer (the inbound pump, a peer's delivery, PollDeviceIO) runs
// outside the token: the table of sockets is an immutable snapshot the
// token holder replaces on bind, connect and close, and each inbox has
// its own mutex. A fast datagram is not in gVisor, so it is not charged
// to the inbound gate (which bounds what gVisor holds): its inbox bounds it.

// udpFast is a stack's fast path for inbound datagrams; nil on a stack
// that cannot use it.
type udpFast struct {
	tab atomic.Pointer[fastTable]
	// ports counts the stack's UDP sockets (both families) by local
	// port; only the token holder touches it.
	ports map[uint16]int
	raws  *atomic.Int64 // the table's count of raw sockets

	udpIn, ipIn, ipValid, ipDelivered *tcpip.StatCounter
}

// fastTable is a snapshot of which sockets take fast datagrams. It is
// never changed once published. Its sockets are kept in pages of 256
// ports, so that a bind or a close copies one page and the page table,
// 4 KiB, however many sockets the stack holds.
type fastTable struct {
	pages [256]*fastPage // by the port's high byte; nil: no socket there
	// own are the stack's IPv4 addresses other than loopback.
	own []tcpip.AddressWithPrefix
}

// fastPage holds the entries of 256 ports, by the port's low byte.
type fastPage [256]*fastSock

// sock returns port's entry, or nil.
func (t *fastTable) sock(port uint16) *fastSock {
	if p := t.pages[port>>8]; p != nil {
		return p[port&0xff]
	}
	return nil
}

// fastSock is one socket's entry in a fastTable.
type fastSock struct {
	s         *socket
	in        *fastInbox
	st        *tcpip.TransportEndpointStats // the endpoint's counters (the order stamp)
	local     tcpip.Address                 // the bound address; empty: any
	peer      tcpip.FullAddress             // the connected peer
	connected bool
}

// newUDPFast makes ns's fast path, or nil where cfg rules it out.
func newUDPFast(ns *Netstack) *udpFast {
	cfg := ns.cfg
	if cfg.PCAP != nil || cfg.Medium == MediumEthernet || cfg.Forward != nil || cfg.SendLocalToDevice {
		return nil
	}
	st := ns.s.Stats()
	f := &udpFast{
		ports: make(map[uint16]int), raws: &ns.tab.byKind[kindRaw],
		udpIn: st.UDP.PacketsReceived,
		ipIn:  st.IP.PacketsReceived, ipValid: st.IP.ValidPacketsReceived, ipDelivered: st.IP.PacketsDelivered,
	}
	f.tab.Store(&fastTable{})
	return f
}

// setOwn records the stack's addresses (setAddrs).
func (f *udpFast) setOwn(prefixes []netip.Prefix) {
	if f == nil {
		return
	}
	t := f.tab.Load()
	nt := &fastTable{pages: t.pages}
	for _, p := range prefixes {
		if a := p.Addr(); a.Is4() && !a.IsLoopback() {
			nt.own = append(nt.own, tcpip.AddressWithPrefix{Address: tcpAddr(a), PrefixLen: p.Bits()})
		}
	}
	f.tab.Store(nt)
}

// publish stores the table with port's entry set to e (nil: removed).
func (f *udpFast) publish(port uint16, e *fastSock) {
	t := f.tab.Load()
	nt := &fastTable{pages: t.pages, own: t.own}
	var pg fastPage
	if old := t.pages[port>>8]; old != nil {
		pg = *old
	}
	pg[port&0xff] = e
	nt.pages[port>>8] = &pg
	if pg == (fastPage{}) {
		nt.pages[port>>8] = nil
	}
	f.tab.Store(nt)
}

// fastRegister gives s (a UDP socket that was bound or connected) its
// entry in the fast table, or takes the port's entry away when more than
// one socket holds the port. The token holder calls it.
func (s *socket) fastRegister() {
	f := s.ns.udpFast
	q := s.dgrams
	if f == nil || s.kind != kindUDP || q == nil || s.closed || s.ns.gvisorRecvs {
		return
	}
	local, terr := s.ep.GetLocalAddress()
	if terr != nil || local.Port == 0 {
		return
	}
	if q.fastPort == 0 {
		q.fastPort = local.Port
		f.ports[local.Port]++
	}
	if f.ports[local.Port] != 1 || s.netProto != header.IPv4ProtocolNumber {
		f.publish(local.Port, nil)
		return
	}
	st, ok := s.ep.Stats().(*tcpip.TransportEndpointStats)
	if !ok {
		return
	}
	if q.fast == nil {
		q.fast = new(fastInbox)
	}
	e := &fastSock{s: s, in: q.fast, st: st, peer: q.peer, connected: q.connected}
	if !local.Addr.Unspecified() {
		e.local = local.Addr
	}
	f.publish(local.Port, e)
}

// fastUnregister takes s out of the fast table for good and lets go of
// what its inbox holds: s is closed. The token holder calls it.
func (s *socket) fastUnregister() {
	f, q := s.ns.udpFast, s.dgrams
	if f == nil || q == nil || q.fastPort == 0 {
		return
	}
	port := q.fastPort
	q.fastPort = 0
	if f.ports[port]--; f.ports[port] <= 0 {
		delete(f.ports, port)
	}
	if e := f.tab.Load().sock(port); e != nil && e.s == s {
		f.publish(port, nil)
	}
	if q.fast != nil {
		q.fast.close()
	}
}

// deliverBytes hands b, one inbound IPv4 packet, to its socket's inbox
// if it takes the fast path; false: gVisor is to have it.
func (f *udpFast) deliverBytes(b []byte) bool {
	if len(b) < header.IPv4MinimumSize+header.UDPMinimumSize || f.raws.Load() > 0 {
		return false
	}
	ip := header.IPv4(b[:header.IPv4MinimumSize])
	u := header.UDP(b[header.IPv4MinimumSize : header.IPv4MinimumSize+header.UDPMinimumSize])
	payload := b[header.IPv4MinimumSize+header.UDPMinimumSize:]
	e, ok := f.match(ip, u, len(b), len(payload), func() uint16 { return checksum.Checksum(payload, 0) })
	if !ok {
		return false
	}
	f.push(e, ip, u, buffer.MakeWithData(payload))
	return true
}

// deliverPacket is deliverBytes for a packet a joined peer sent (its
// link has the same medium: no link header); its payload is shared, as
// peerCopy shares it. The packet's headers are copied out, never read
// through PacketHeader.Slice: that pulls the header up, which may replace
// a shared chunk in the packet's buffer, and other holders of the packet
// (a SYN-ACK kept for a replay) may read that buffer meanwhile.
func (f *udpFast) deliverPacket(pkt *stack.PacketBuffer) bool {
	if pkt.NetworkProtocolNumber != header.IPv4ProtocolNumber || pkt.TransportProtocolNumber != header.UDPProtocolNumber ||
		f.raws.Load() > 0 {
		return false
	}
	var hdr [header.IPv4MinimumSize + header.UDPMinimumSize]byte
	if !readFront(pkt, hdr[:]) {
		return false
	}
	ip, u := header.IPv4(hdr[:header.IPv4MinimumSize]), header.UDP(hdr[header.IPv4MinimumSize:])
	size := pkt.Size()
	if ip.HeaderLength() != header.IPv4MinimumSize || size < len(hdr) {
		return false
	}
	buf := pkt.ToBuffer() // shares the packet's chunks
	buf.TrimFront(int64(len(hdr)))
	e, ok := f.match(ip, u, size, int(buf.Size()), func() uint16 { return buf.Checksum(0) })
	if !ok {
		buf.Release()
		return false
	}
	f.push(e, ip, u, buf)
	return true
}

// readFront copies the first len(dst) bytes of pkt (from its outermost
// header on) into dst without changing pkt; false if pkt is shorter.
func readFront(pkt *stack.PacketBuffer, dst []byte) bool {
	vl, off := pkt.AsViewList()
	n := 0
	for v := vl.Front(); v != nil && n < len(dst); v = v.Next() {
		b := v.AsSlice()
		if off >= len(b) {
			off -= len(b)
			continue
		}
		n += copy(dst[n:], b[off:])
		off = 0
	}
	return n == len(dst)
}

// match checks an IPv4 packet of size bytes whose headers are ip and u
// (payload bytes after them, sum their checksum) as gVisor would, and
// returns the socket that takes it on the fast path.
func (f *udpFast) match(ip header.IPv4, u header.UDP, size, payload int, sum func() uint16) (*fastSock, bool) {
	if ip.HeaderLength() != header.IPv4MinimumSize || ip.TransportProtocol() != header.UDPProtocolNumber ||
		int(ip.TotalLength()) != size || !ip.IsValid(size) || ip.More() || ip.FragmentOffset() != 0 {
		return nil, false
	}
	t := f.tab.Load()
	e := t.sock(u.DestinationPort())
	if e == nil {
		return nil, false
	}
	src, dst := ip.SourceAddress(), ip.DestinationAddress()
	if e.local.BitLen() != 0 && dst != e.local || e.connected && (src != e.peer.Addr || u.SourcePort() != e.peer.Port) {
		return nil, false
	}
	if !t.ownUnicast(dst) || !t.foreignSource(src) || !ip.IsChecksumValid() {
		return nil, false
	}
	lengthOK, sumOK := header.UDPValid(u, sum, uint16(payload+header.UDPMinimumSize), header.IPv4ProtocolNumber, src, dst, false)
	if !lengthOK || !sumOK || int(u.Length()) != payload+header.UDPMinimumSize {
		return nil, false // gVisor counts it
	}
	return e, true
}

// ownUnicast reports whether a is one of the stack's own addresses (as
// gVisor's destination check finds it, and not a subnet broadcast).
func (t *fastTable) ownUnicast(a tcpip.Address) bool {
	for _, p := range t.own {
		if p.Address == a {
			return true
		}
	}
	return false
}

// foreignSource reports whether gVisor would take a as a datagram's source:
// not one of the stack's addresses nor a broadcast of their subnets, not
// multicast, limited broadcast, unspecified or loopback.
func (t *fastTable) foreignSource(a tcpip.Address) bool {
	if a == header.IPv4Broadcast || a.Unspecified() || header.IsV4MulticastAddress(a) || header.IsV4LoopbackAddress(a) {
		return false
	}
	for _, p := range t.own {
		if sub := p.Subnet(); p.Address == a || sub.IsBroadcast(a) {
			return false
		}
	}
	return true
}

// push queues a fast datagram for e's socket and notifies it as gVisor's
// endpoint would.
func (f *udpFast) push(e *fastSock, ip header.IPv4, u header.UDP, data buffer.Buffer) {
	f.ipIn.Increment()
	f.ipValid.Increment()
	f.ipDelivered.Increment()
	st := e.st
	d := fastDgram{
		from:   netip.AddrPortFrom(netip.AddrFrom4(ip.SourceAddress().As4()), u.SourcePort()),
		data:   data,
		before: st.PacketsReceived.Value() - st.ReceiveErrors.ClosedReceiver.Value() - st.ReceiveErrors.ReceiveBufferOverflow.Value(),
	}
	f.udpIn.Increment() // as gVisor counts it, before the buffer's check
	ok, wasEmpty := e.in.push(d, e.s.ns.cfg.UDPRecvBuffer)
	if !ok {
		data.Release()
		e.s.ns.udpQueueDrops.Add(1)
		return
	}
	if wasEmpty {
		e.s.NotifyEvent(waiter.ReadableEvents)
	}
}

// fastDgram is one datagram in an inbox.
type fastDgram struct {
	from netip.AddrPort
	data buffer.Buffer
	// before is how many datagrams gVisor had accepted for the socket
	// when this one came.
	before uint64
}

// fastInbox is a socket's queue of fast datagrams: deliverers push, the
// token holder takes.
type fastInbox struct {
	n  atomic.Int64 // datagrams queued: a receive looks without the lock
	mu sync.Mutex
	// ring holds the datagrams from head on, n of them.
	ring   []fastDgram // +checklocks:mu
	head   int         // +checklocks:mu
	cost   int         // +checklocks:mu
	closed bool        // +checklocks:mu
}

// keptRing is how many slots an emptied inbox keeps for reuse.
const keptRing = 1024

// push queues d within limit; wasEmpty reports that the inbox was empty.
func (in *fastInbox) push(d fastDgram, limit int) (ok, wasEmpty bool) {
	c := int(d.data.Size()) + datagramOverhead
	in.mu.Lock()
	defer in.mu.Unlock()
	n := int(in.n.Load())
	if in.closed || in.cost+c > limit {
		return false, false
	}
	if n == len(in.ring) {
		grown := make([]fastDgram, max(16, 2*n))
		for i := range n {
			grown[i] = in.ring[(in.head+i)%len(in.ring)]
		}
		in.ring, in.head = grown, 0
	}
	in.ring[(in.head+n)%len(in.ring)] = d
	in.cost += c
	in.n.Store(int64(n + 1))
	return true, n == 0
}

// take pops the oldest datagram, if any, and if force or older reports
// it may go (older gets its stamp).
func (in *fastInbox) take(force bool, older func(before uint64) bool) (d fastDgram, ok bool) {
	if in == nil || in.n.Load() == 0 {
		return d, false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	n := int(in.n.Load())
	if n == 0 {
		return d, false
	}
	slot := &in.ring[in.head]
	if !force && older(slot.before) {
		return d, false
	}
	d, *slot = *slot, fastDgram{}
	in.head = (in.head + 1) % len(in.ring)
	in.cost -= int(d.data.Size()) + datagramOverhead
	in.n.Store(int64(n - 1))
	if n == 1 {
		in.head = 0
		if len(in.ring) > keptRing {
			in.ring = nil
		}
	}
	return d, true
}

// close refuses further datagrams and releases those queued.
func (in *fastInbox) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	for i := range in.ring {
		in.ring[i].data.Release()
		in.ring[i] = fastDgram{}
	}
	in.ring, in.head, in.cost = nil, 0, 0
	in.n.Store(0)
}

// takeFast takes s's oldest fast datagram unless a datagram that came
// before it waits in s's queue or in gVisor; with force, whenever there
// is one.
func (s *socket) takeFast(force bool) (fastDgram, bool) {
	q := s.dgrams
	return q.fast.take(force, func(before uint64) bool {
		// gVisor's datagrams that were read or are in q: taken; read out
		// of q: taken less what q holds.
		read := q.taken - uint64(len(q.q)-q.head)
		return before > read && (!q.empty() || s.heldInGVisor() > 0)
	})
}

// takeFastRecv is takeFast for a receive, which takes nothing from the
// inbox while s has a receive pending or an error to report first.
func (s *socket) takeFastRecv(force bool) (fastDgram, bool) {
	if s.dgrams.fast == nil || s.dgrams.pending != nil || s.dgrams.err != nil {
		return fastDgram{}, false
	}
	return s.takeFast(force)
}

// recvFast answers a receive into buf from s's inbox (see takeFast).
func (s *socket) recvFast(buf []byte, force bool) (UDPRecvd, bool) {
	d, ok := s.takeFastRecv(force)
	if !ok {
		return UDPRecvd{}, false
	}
	size := int(d.data.Size())
	n, _ := d.data.ReadAt(buf, 0)
	d.data.Release()
	return UDPRecvd{N: n, From: d.from, Truncated: n < size}, true
}

// recvFastTo is recvFast into several buffers.
func (s *socket) recvFastTo(w *scatterWriter, force bool) (UDPRecvd, bool) {
	d, ok := s.takeFastRecv(force)
	if !ok {
		return UDPRecvd{}, false
	}
	size := int(d.data.Size())
	n := 0
	vl := d.data.AsViewList()
	for v := vl.Front(); v != nil; v = v.Next() {
		c, _ := w.Write(v.AsSlice())
		if n += c; c < v.Size() {
			break
		}
	}
	d.data.Release()
	return UDPRecvd{N: n, From: d.from, Truncated: n < size}, true
}

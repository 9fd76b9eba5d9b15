package core

import (
	"bytes"
	"io"
	"math"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// gVisor's UDP endpoint looks up a route (stack.FindRoute, which allocates
// one) for every send on an unconnected socket, the largest single cost of
// a datagram sent that way (quic-go's sockets are unconnected). So an
// unconnected UDP socket keeps the routes of its last few unicast
// destinations (routeCache) and sends to them itself: it builds the UDP
// header and checksum as gVisor's endpoint does and hands the packet to the
// cached route's WritePacket, the same network-layer call gVisor's makes.
//
// What stays gVisor's: the socket's port and bound address (the source),
// the network layer (fragmentation, DF, MTU errors, loopback, neighbour
// resolution), the inbound demux (replies and ICMP errors reach the
// socket as before). A connected socket's sends take the route to its
// peer the same way (gVisor's endpoint made a packet-release closure and a
// payload reader for each), after the check for an ICMP error gVisor's
// Write reports first. What the cache does not serve goes through gVisor's
// endpoint as before: broadcast, multicast, link-local
// and v4-mapped destinations, a forwarding stack, and any route that is no
// longer valid (its address removed: WritePacket refuses it, the entry is
// dropped and the datagram is sent the old way). Routes are taken with the
// socket's options as they are when the entry is filled (TTL, TOS, DF,
// mark, checksum): netcore sets none of them on UDP sockets; an option
// that changes them must clear the cache. A change of the stack's
// addresses (SetAddrs) clears every cache (Netstack.routeGen).
//
// Send buffer: gVisor charges a sent packet to the endpoint until the
// packet is released; these sends are charged the same to the cache's own
// count, against the same limit (the socket's send buffer), and a release
// that frees room notifies the socket's waiter queue as gVisor does, so a
// parked send resumes the same way.

// routeSlots is how many destinations a socket's routeCache keeps.
const routeSlots = 4

// routeCache is a UDP socket's routes of its last
// destinations. Only the token holder touches it, except what the
// charge's mutex guards.
type routeCache struct {
	slot [routeSlots]cachedRoute
	next int    // the slot the next miss replaces
	gen  uint64 // Netstack.routeGen when the slots were filled
	// port is the socket's local port, read on the first fill.
	port uint16
	// sent and sendErrs are the stack's UDP counters gVisor's endpoint
	// counts its sends in, epSent the endpoint's own.
	sent, sendErrs, epSent *tcpip.StatCounter

	charge sendCharge
	// lr is the reader the payload is copied through into gVisor's buffer
	// (WriteFromReader would make one per datagram).
	lr io.LimitedReader
}

// cachedRoute is one destination's route and the header fields of its
// packets.
type cachedRoute struct {
	to      tcpip.Address
	r       *stack.Route // nil: an empty slot
	params  stack.NetworkHeaderParams
	reserve int  // header bytes to reserve
	sum     bool // compute the UDP checksum
	mark    uint32
}

// sendCached sends p to fa through a cached route; ok is false when the
// cache does not serve fa and the caller must send through gVisor.
func (s *socket) sendCached(fa *tcpip.FullAddress, p tcpip.Payloader) (n int, err error, wait, ok bool) {
	c := s.routes()
	if c == nil {
		return 0, nil, false, false
	}
	e := c.lookup(s, fa.Addr)
	if e == nil {
		return 0, nil, false, false
	}
	if !c.charge.hasRoom(s) {
		return 0, nil, true, true
	}
	size := p.Len()
	terr := c.write(s, e, fa.Port, p)
	if _, full := terr.(*tcpip.ErrNoBufferSpace); full && !recvErr(s.ep.SocketOptions(), e.r.NetProto()) {
		terr = nil // dropped by a full queue: Linux reports ENOBUFS only with IP_RECVERR, as gVisor
	}
	switch terr.(type) {
	case nil:
		c.sent.Increment()
		c.epSent.Increment()
		return size, nil, false, true
	case *tcpip.ErrInvalidEndpointState:
		c.drop(e) // the route went stale: gVisor finds a new one
		return 0, nil, false, false
	}
	c.sendErrs.Increment()
	return 0, fromTCPIP(terr), false, true
}

// recvErr reports whether the socket asked for IP_RECVERR (IPV6_RECVERR).
func recvErr(o *tcpip.SocketOptions, proto tcpip.NetworkProtocolNumber) bool {
	if proto == header.IPv6ProtocolNumber {
		return o.GetIPv6RecvError()
	}
	return o.GetIPv4RecvError()
}

// routes returns s's route cache, made on first use, or nil when s may not
// use one. A cache filled before the stack's addresses changed is emptied.
func (s *socket) routes() *routeCache {
	q := s.dgrams
	if s.kind != kindUDP || s.ns.fwd != nil || q == nil || q.noRoutes || s.ns.gvisorSends {
		return nil
	}
	c := q.routes
	if c == nil {
		c = newRouteCache(s)
		q.routes = c
	}
	if c.gen != s.ns.routeGen {
		c.clear()
		c.gen = s.ns.routeGen
	}
	return c
}

// newRouteCache makes s's (empty) route cache.
func newRouteCache(s *socket) *routeCache {
	st := s.ns.s.Stats().UDP
	c := &routeCache{gen: s.ns.routeGen, sent: st.PacketsSent, sendErrs: st.PacketSendErrors}
	c.epSent = new(tcpip.StatCounter)
	if es, ok := s.ep.Stats().(*tcpip.TransportEndpointStats); ok {
		c.epSent = &es.PacketsSent
	}
	c.charge.wq = s.wq
	return c
}

// lookup returns the slot for to, filling one on a miss; nil when to is
// not served from the cache.
func (c *routeCache) lookup(s *socket, to tcpip.Address) *cachedRoute {
	for i := range c.slot {
		if e := &c.slot[i]; e.r != nil && e.to == to {
			return e
		}
	}
	if !cacheable(s.netProto, to) {
		return nil
	}
	e := &c.slot[c.next]
	if !c.fill(s, e, to) {
		return nil
	}
	c.next = (c.next + 1) % routeSlots
	return e
}

// cacheable reports whether sends to to may take a cached route: unicast
// destinations of the socket's own family, not link-local (those may need
// a zone or a NIC gVisor's endpoint picks).
func cacheable(proto tcpip.NetworkProtocolNumber, to tcpip.Address) bool {
	switch proto {
	case header.IPv4ProtocolNumber:
		return to.Len() == header.IPv4AddressSize && to != header.IPv4Broadcast &&
			!header.IsV4MulticastAddress(to) && !header.IsV4LinkLocalUnicastAddress(to) && !to.Unspecified()
	case header.IPv6ProtocolNumber:
		return to.Len() == header.IPv6AddressSize && !header.IsV6MulticastAddress(to) &&
			!header.IsV6LinkLocalUnicastAddress(to) && !to.Unspecified() && !isV4Mapped(to)
	}
	return false
}

// isV4Mapped reports whether a (16 bytes) is an IPv4-mapped IPv6 address:
// gVisor's endpoint sends those as IPv4.
func isV4Mapped(a tcpip.Address) bool {
	b := a.As16()
	for _, x := range b[:10] {
		if x != 0 {
			return false
		}
	}
	return b[10] == 0xff && b[11] == 0xff
}

// fill looks up the route to to from s's bound address into e, replacing
// what e held, with the header fields gVisor's endpoint would use; false
// when the route is not one the cache serves (broadcast) or none is found
// (gVisor's endpoint then reports the error).
func (c *routeCache) fill(s *socket, e *cachedRoute, to tcpip.Address) bool {
	local, terr := s.ep.GetLocalAddress()
	if terr != nil || local.Port == 0 {
		return false
	}
	if !local.Addr.Unspecified() && !cacheable(s.netProto, local.Addr) && !isLoopback(local.Addr) {
		return false
	}
	r, terr := s.ns.s.FindRoute(0, local.Addr, to, s.netProto, true)
	if terr != nil {
		return false
	}
	if r.IsOutboundBroadcast() || !cacheable(s.netProto, r.RemoteAddress()) && !isLoopback(r.RemoteAddress()) {
		r.Release()
		return false
	}
	params, ok := headerParams(s.ep, r)
	if !ok {
		r.Release()
		return false
	}
	c.drop(e)
	c.port = local.Port
	o := s.ep.SocketOptions()
	*e = cachedRoute{
		to: to, r: r, params: params,
		reserve: header.UDPMinimumSize + int(r.MaxHeaderLength()),
		sum:     r.RequiresTXTransportChecksum() && (!o.GetNoChecksum() || r.NetProto() == header.IPv6ProtocolNumber),
		mark:    o.GetMark(),
	}
	return true
}

// isLoopback reports whether a is a loopback address.
func isLoopback(a tcpip.Address) bool {
	if a.Len() == header.IPv4AddressSize {
		return a.As4()[0] == 127
	}
	return a == header.IPv6Loopback
}

// headerParams returns the network header fields gVisor's endpoint would
// give a packet on r: its TTL or hop limit (the route's default unless
// set), TOS or traffic class, and DF from the PMTU discovery option.
func headerParams(ep tcpip.Endpoint, r *stack.Route) (stack.NetworkHeaderParams, bool) {
	p := stack.NetworkHeaderParams{Protocol: udp.ProtocolNumber}
	ttlOpt, tosOpt, unset := tcpip.IPv4TTLOption, tcpip.IPv4TOSOption, tcpip.UseDefaultIPv4TTL
	if r.NetProto() == header.IPv6ProtocolNumber {
		ttlOpt, tosOpt, unset = tcpip.IPv6HopLimitOption, tcpip.IPv6TrafficClassOption, tcpip.UseDefaultIPv6HopLimit
	}
	ttl, e1 := ep.GetSockOptInt(ttlOpt)
	tos, e2 := ep.GetSockOptInt(tosOpt)
	pmtud, e3 := ep.GetSockOptInt(tcpip.MTUDiscoverOption)
	if e1 != nil || e2 != nil || e3 != nil {
		return p, false
	}
	p.TTL = uint8(ttl)
	if ttl == unset {
		p.TTL = r.DefaultTTL()
	}
	p.TOS = uint8(tos)
	switch tcpip.PMTUDStrategy(pmtud) {
	case tcpip.PMTUDiscoveryWant, tcpip.PMTUDiscoveryDo, tcpip.PMTUDiscoveryProbe:
		p.DF = true
	}
	return p, true
}

// write builds the UDP packet of p to port through e's route and sends it.
func (c *routeCache) write(s *socket, e *cachedRoute, port uint16, p tcpip.Payloader) tcpip.Error {
	data, err := c.payload(p)
	if err != nil {
		return &tcpip.ErrBadBuffer{}
	}
	t := c.charge.take(int64(e.reserve) + data.Size())
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: e.reserve,
		Payload:            data,
		Mark:               e.mark,
		OnRelease:          t.release,
	})
	defer pkt.DecRef()
	u := header.UDP(pkt.TransportHeader().Push(header.UDPMinimumSize))
	pkt.TransportProtocolNumber = udp.ProtocolNumber
	length := uint16(pkt.Size())
	u.Encode(&header.UDPFields{SrcPort: c.port, DstPort: port, Length: length})
	if e.sum {
		x := u.CalculateChecksum(checksum.Combine(
			header.PseudoHeaderChecksum(udp.ProtocolNumber, e.r.LocalAddress(), e.r.RemoteAddress(), length),
			pkt.Data().Checksum(),
		))
		if x != math.MaxUint16 { // an all-zero checksum means none (RFC 768)
			x = ^x
		}
		u.SetChecksum(x)
	}
	return e.r.WritePacket(e.params, pkt)
}

// payload copies what p holds into a gVisor buffer: a send from one
// buffer straight into one chunk, any other through c.lr (WriteFromReader
// would make a reader per datagram, and the copy through it costs more
// than the copy).
func (c *routeCache) payload(p tcpip.Payloader) (buffer.Buffer, error) {
	if f, ok := p.(*flatPayload); ok && len(f.b) <= buffer.MaxChunkSize {
		return buffer.MakeWithView(buffer.NewViewWithData(f.b)), nil
	}
	var data buffer.Buffer
	_, err := data.WriteFromReaderAndLimitedReader(p, int64(p.Len()), &c.lr)
	c.lr.R = nil
	if err != nil {
		data.Release()
	}
	return data, err
}

// flatPayload is the payload of a send from one buffer: a
// tcpip.Payloader for gVisor's endpoint, whose bytes the route cache
// copies directly.
type flatPayload struct {
	b []byte
	r bytes.Reader
}

func (f *flatPayload) reset(b []byte) { f.b = b; f.r.Reset(b) }

// Len implements tcpip.Payloader.
func (f *flatPayload) Len() int { return f.r.Len() }

// Read implements io.Reader.
func (f *flatPayload) Read(p []byte) (int, error) { return f.r.Read(p) }

// drop empties e, releasing its route.
func (c *routeCache) drop(e *cachedRoute) {
	if e.r != nil {
		e.r.Release()
	}
	*e = cachedRoute{}
}

// clear empties every slot.
func (c *routeCache) clear() {
	for i := range c.slot {
		c.drop(&c.slot[i])
	}
}

// sendCharge counts the bytes of a cache's sent packets not yet released,
// as gVisor's endpoint counts its own against the socket's send buffer.
// Its tickets (one per packet in flight) are reused: a release costs no
// allocation.
type sendCharge struct {
	wq *waiter.Queue

	mu    sync.Mutex
	inUse int64 // +checklocks:mu
	limit int64 // +checklocks:mu
	// full is set when a send found no room: the release that makes
	// room tells the writers.
	full bool          // +checklocks:mu
	free []*sendTicket // +checklocks:mu
}

// sendTicket is one packet's charge; release (its OnRelease) gives it back.
type sendTicket struct {
	c       *sendCharge
	size    int64
	release func()
}

// hasRoom reports whether s's send buffer has room, as gVisor's endpoint
// does: any at all lets a whole datagram go.
func (c *sendCharge) hasRoom(s *socket) bool {
	limit := s.ep.SocketOptions().GetSendBufferSize()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = limit
	if c.inUse >= limit {
		c.full = true
		return false
	}
	return true
}

// take charges size bytes and returns the packet's ticket.
func (c *sendCharge) take(size int64) *sendTicket {
	c.mu.Lock()
	var t *sendTicket
	if n := len(c.free); n > 0 {
		t = c.free[n-1]
		c.free[n-1] = nil
		c.free = c.free[:n-1]
	}
	c.inUse += size
	c.mu.Unlock()
	if t == nil {
		t = &sendTicket{c: c}
		t.release = t.done
	}
	t.size = size
	return t
}

// done releases t's charge; if that frees room, writers are told, as
// gVisor's endpoint tells them.
func (t *sendTicket) done() {
	c := t.c
	c.mu.Lock()
	c.inUse -= t.size
	signal := c.full && c.inUse < c.limit
	if signal {
		c.full = false
	}
	if len(c.free) < maxFreeTickets {
		c.free = append(c.free, t)
	}
	c.mu.Unlock()
	if signal {
		c.wq.Notify(waiter.WritableEvents)
	}
}

// maxFreeTickets bounds the tickets a cache keeps for reuse.
const maxFreeTickets = 1024

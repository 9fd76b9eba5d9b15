package core

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// forwarder is a stack's forwarding mode (Config.Forward). gVisor hands it
// new flows on gVisor's goroutines: a TCP SYN on a goroutine of gVisor's
// TCP forwarder, which may wait (for the verdict, then for the handshake),
// a UDP flow's first datagram on the goroutine delivering it, which may
// not. Those goroutines put what they made (a SYN waiting for a verdict,
// an endpoint) in the inbox and touch it no more; the engine takes the
// inbox (invariant 1: the mutex is the hand-over), makes sockets of the
// endpoints and offers the flows to the open forwarder socket's
// ForwardAccept.
type forwarder struct {
	ns  *Netstack
	cfg ForwardConfig
	tcp *tcp.Forwarder

	mu    sync.Mutex
	inbox []fwdItem // +checklocks:mu
	// open: a forwarder socket is open; closing: the stack is shutting
	// down; echo: the open forwarder takes echo requests.
	open    bool // +checklocks:mu
	closing bool // +checklocks:mu
	echo    bool // +checklocks:mu
	// acceptAll: the open forwarder accepts every TCP flow
	// (ForwardOpen.AcceptTCP), so handleTCP completes the handshake at
	// once, without a verdict from the engine.
	acceptAll bool // +checklocks:mu
	// handoff is the open forwarder's ForwardOpen.HandleTCP (with
	// acceptAll), or nil.
	handoff func(Flow)    // +checklocks:mu
	nextID  atomic.Uint64 // the last flow ID given out
	// handlers counts gVisor's goroutines inside handleTCP; Add only
	// under mu while !closing.
	handlers sync.WaitGroup
	due      atomic.Bool // the inbox has items, or a sweep is due
	sweepDue atomic.Bool // the expiry sweep's timer fired

	synMu sync.Mutex
	// syns keeps each pending SYN's headers for an ICMP refusal, bounded
	// by 2*MaxPendingTCP.
	syns map[stack.TransportEndpointID][]byte // +checklocks:synMu

	own atomic.Pointer[[]netip.Addr] // the stack's own addresses

	hsMu sync.Mutex
	// handshakes are the queues of the handshakes in progress: shutdown
	// wakes them, since gVisor's Close does not end a forwarder's
	// handshake.
	handshakes map[*waiter.Queue]struct{} // +checklocks:hsMu

	pending, tcpFlows, udpFlows atomic.Int64
	echoes                      atomic.Int64 // echo requests pushed, not yet taken
	st                          fwdCounters

	eng fwdEngine // engine-only
}

// fwdCounters are the forwarder's event counters (see ForwardStats).
type fwdCounters struct {
	tcpOffered, udpOffered, tcpRefused, udpRefused, tcpFailed       atomic.Uint64
	pendingDrops, tcpLimit, udpLimit, unserved, udpExpired, outside atomic.Uint64
	echoDropped, handedOff                                          atomic.Uint64
}

// fwdItem is one thing a gVisor goroutine hands the engine.
type fwdItem struct {
	syn           *pendingTCP    // a SYN waiting for its verdict, or
	ep            tcpip.Endpoint // an established TCP flow or a new UDP flow
	wq            *waiter.Queue
	proto         FlowProto
	local, remote netip.AddrPort
	hdr           []byte // UDP: the first datagram's headers
	id            uint64 // TCP established: its SYN's flow ID
	// direct, for a TCP flow for ForwardOpen.HandleTCP, gets the flow
	// once the engine made its socket (a zero Flow if it did not), instead
	// of ForwardAccept; room for one.
	direct chan Flow
}

// pendingTCP is a SYN waiting for its verdict. The engine sets id when it
// takes it and sends the verdict; the gVisor goroutine reads id after the
// verdict came (or sets it itself, when the forwarder accepts all).
type pendingTCP struct {
	id            uint64
	local, remote netip.AddrPort
	verdict       chan Verdict // room for the one verdict
}

// flowState is what a forwarded flow's socket carries (socket.flow).
type flowState struct {
	id    uint64
	proto FlowProto
	hdr   []byte // UDP: the first datagram's headers, for an ICMP refusal
	idle  idleState
}

// newForwarder makes ns's forwarder for cfg; startForward starts it.
func newForwarder(ns *Netstack, cfg ForwardConfig) *forwarder {
	f := &forwarder{ns: ns, cfg: cfg.withDefaults(), syns: make(map[stack.TransportEndpointID][]byte), handshakes: make(map[*waiter.Queue]struct{})}
	f.eng.init()
	f.own.Store(new([]netip.Addr))
	return f
}

// setOwn notes the stack's own addresses (any goroutine).
func (f *forwarder) setOwn(prefixes []netip.Prefix) {
	own := make([]netip.Addr, len(prefixes))
	for i, p := range prefixes {
		own[i] = p.Addr()
	}
	f.own.Store(&own)
}

// isOwn reports whether a is one of the stack's own addresses.
func (f *forwarder) isOwn(a netip.Addr) bool {
	a = a.Unmap()
	for _, o := range *f.own.Load() {
		if o == a {
			return true
		}
	}
	return false
}

// outside decides a packet for a destination outside the prefixes: the
// stack's own addresses get gVisor's usual answer (handled false), others
// are dropped.
func (f *forwarder) outside(a netip.Addr) (handled bool) {
	if f.isOwn(a) {
		return false
	}
	f.st.outside.Add(1)
	return true
}

// tcpPacket is gVisor's handler for TCP segments no endpoint took: SYNs
// in the prefixes go to gVisor's forwarder, which calls handleTCP.
func (f *forwarder) tcpPacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
	if !f.cfg.forwards(addrPort(id.LocalAddress, id.LocalPort).Addr()) {
		return f.outside(addrPort(id.LocalAddress, id.LocalPort).Addr())
	}
	saved := f.saveSYN(id, pkt)
	handled := f.tcp.HandlePacket(id, pkt)
	if !handled && saved {
		f.takeSYN(id)
	}
	return handled
}

// saveSYN keeps a SYN's headers until its handler takes them.
func (f *forwarder) saveSYN(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
	th := header.TCP(pkt.TransportHeader().Slice())
	if len(th) < header.TCPMinimumSize || th.Flags()&(header.TCPFlagSyn|header.TCPFlagAck) != header.TCPFlagSyn {
		return false
	}
	f.synMu.Lock()
	defer f.synMu.Unlock()
	if _, ok := f.syns[id]; ok || len(f.syns) >= 2*f.cfg.MaxPendingTCP {
		return false
	}
	f.syns[id] = packetHeaders(pkt)
	return true
}

// takeSYN returns and forgets the headers saved for id (nil if none).
func (f *forwarder) takeSYN(id stack.TransportEndpointID) []byte {
	f.synMu.Lock()
	defer f.synMu.Unlock()
	h := f.syns[id]
	delete(f.syns, id)
	return h
}

// enter registers a handler goroutine; false once the stack is closing.
func (f *forwarder) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return false
	}
	f.handlers.Add(1)
	return true
}

// handleTCP runs on a goroutine of gVisor's TCP forwarder, one per SYN
// (at most MaxPendingTCP): it offers the flow, waits for the verdict and,
// on Accept, completes the handshake and hands the endpoint to the engine;
// with ForwardOpen.HandleTCP it then serves the flow, calling HandleTCP,
// once it no longer counts as a handshake (see establish).
func (f *forwarder) handleTCP(r *tcp.ForwarderRequest) {
	fl, handle := f.handshake(r)
	if handle != nil {
		f.st.handedOff.Add(1)
		handle(fl)
	}
}

// handshake is handleTCP up to the flow's hand-off: it returns the
// established flow and the HandleTCP to call with it, if there is one.
func (f *forwarder) handshake(r *tcp.ForwarderRequest) (Flow, func(Flow)) {
	hdr := f.takeSYN(r.ID())
	if !f.enter() {
		r.Complete(false)
		return Flow{}, nil
	}
	defer f.handlers.Done()
	f.pending.Add(1)
	defer f.pending.Add(-1)
	if !reserve(&f.tcpFlows, f.cfg.MaxTCPFlows) {
		f.st.tcpLimit.Add(1)
		r.Complete(true)
		return Flow{}, nil
	}
	p := &pendingTCP{local: addrPort(r.ID().LocalAddress, r.ID().LocalPort), remote: addrPort(r.ID().RemoteAddress, r.ID().RemotePort), verdict: make(chan Verdict, 1)}
	if ok, handoff := f.acceptsAll(); ok {
		p.id = f.newID()
		f.st.tcpOffered.Add(1)
		return f.establish(r, p, handoff)
	}
	if !f.pushAndServe(fwdItem{syn: p, proto: FlowTCP, local: p.local, remote: p.remote}) {
		f.tcpFlows.Add(-1)
		f.st.unserved.Add(1)
		r.Complete(true)
		return Flow{}, nil
	}
	var v Verdict
	select {
	case v = <-p.verdict:
	case <-f.ns.stopping:
		v = Drop
	}
	if v == Accept {
		return f.establish(r, p, nil)
	}
	f.tcpFlows.Add(-1)
	f.refuse(r, v, hdr, p)
	return Flow{}, nil
}

// acceptsAll reports whether the open forwarder accepts every TCP flow,
// and its ForwardOpen.HandleTCP.
func (f *forwarder) acceptsAll() (bool, func(Flow)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open && f.acceptAll, f.handoff
}

// newID gives out a flow ID (any goroutine).
func (f *forwarder) newID() uint64 { return f.nextID.Add(1) }

// establish completes an accepted flow's handshake and hands its endpoint
// to the engine. With handoff (ForwardOpen.HandleTCP) it waits for the
// engine to make the flow's socket, which it mostly makes itself at once
// (pushAndServe), and returns the flow and handoff, for its caller to
// call once it no longer counts as a handshake.
func (f *forwarder) establish(r *tcp.ForwarderRequest, p *pendingTCP, handoff func(Flow)) (Flow, func(Flow)) {
	wq := new(waiter.Queue)
	f.hsMu.Lock()
	f.handshakes[wq] = struct{}{}
	f.hsMu.Unlock()
	ep, terr := r.CreateEndpoint(wq)
	f.hsMu.Lock()
	delete(f.handshakes, wq)
	f.hsMu.Unlock()
	r.Complete(false)
	if terr != nil {
		f.tcpFlows.Add(-1)
		f.st.tcpFailed.Add(1)
		return Flow{}, nil
	}
	it := fwdItem{ep: ep, wq: wq, proto: FlowTCP, local: p.local, remote: p.remote, id: p.id}
	if handoff != nil {
		it.direct = make(chan Flow, 1)
	}
	if !f.pushAndServe(it) {
		ep.Abort()
		f.tcpFlows.Add(-1)
		return Flow{}, nil
	}
	if handoff == nil {
		return Flow{}, nil
	}
	select {
	case fl := <-it.direct:
		if fl.Handle.IsValid() {
			return fl, handoff
		}
	case <-f.ns.stopping: // the stack's Close drops the item (or its socket)
	}
	return Flow{}, nil
}

// refuse ends a refused SYN as v says.
func (f *forwarder) refuse(r *tcp.ForwarderRequest, v Verdict, hdr []byte, p *pendingTCP) {
	if v == Unreachable && hdr != nil {
		f.sendUnreachable(hdr, p.local, p.remote)
		r.Complete(false)
		return
	}
	r.Complete(v == Reset || v == Unreachable)
}

// udpPacket is gVisor's handler for UDP datagrams no endpoint took: it
// runs on the goroutine delivering the datagram, which must not wait. A
// datagram in the prefixes starts a flow: a UDP endpoint bound to the
// destination and connected to the source, which gets the datagram, handed
// to the engine.
func (f *forwarder) udpPacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
	local, remote := addrPort(id.LocalAddress, id.LocalPort), addrPort(id.RemoteAddress, id.RemotePort)
	if !f.cfg.forwards(local.Addr()) {
		return f.outside(local.Addr())
	}
	if !f.serving() {
		f.st.unserved.Add(1)
		return false // gVisor answers port unreachable
	}
	if !reserve(&f.udpFlows, f.cfg.MaxUDPFlows) {
		f.st.udpLimit.Add(1)
		return false
	}
	hdr := packetHeaders(pkt)
	wq := new(waiter.Queue)
	ep, terr := udp.NewForwarderRequest(f.ns.s, id, pkt).CreateEndpoint(wq)
	if terr != nil {
		f.udpFlows.Add(-1)
		return true // another datagram of this flow made it first
	}
	if !f.push(fwdItem{ep: ep, wq: wq, proto: FlowUDP, local: local, remote: remote, hdr: hdr}) {
		ep.Close()
		f.udpFlows.Add(-1)
		f.st.unserved.Add(1)
	}
	return true
}

// serving reports whether a forwarder socket is open.
func (f *forwarder) serving() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open && !f.closing
}

// push hands it to the engine; false if no forwarder socket is open.
func (f *forwarder) push(it fwdItem) bool {
	if !f.queue(it) {
		return false
	}
	signal(f.ns.wake)
	return true
}

// pushAndServe is push for a TCP handshake's goroutine (handleTCP, which
// gVisor starts per SYN and which holds none of gVisor's locks): while Run
// drives the stack, it takes the owner token itself if it is free and
// serves what it queued (the inbox, and with it a parked ForwardAccept),
// as a caller of Request does, instead of waking the engine goroutine for
// it: one goroutine hand-off fewer per connection. If another goroutine
// holds the token, that one serves the inbox once it lets go (see
// Netstack.pending).
func (f *forwarder) pushAndServe(it fwdItem) bool {
	if !f.queue(it) {
		return false
	}
	if !f.ns.tok.inline.Load() {
		signal(f.ns.wake)
		return true
	}
	f.ns.serveAsCaller()
	return true
}

// queue adds it to the inbox and marks the forwarder due; false if no
// forwarder socket is open.
func (f *forwarder) queue(it fwdItem) bool {
	f.mu.Lock()
	if !f.open || f.closing {
		f.mu.Unlock()
		return false
	}
	f.inbox = append(f.inbox, it)
	f.mu.Unlock()
	f.due.Store(true)
	return true
}

// reserve takes one of n's max slots, or reports false.
func reserve(n *atomic.Int64, max int) bool {
	if n.Add(1) > int64(max) {
		n.Add(-1)
		return false
	}
	return true
}

// shutdown stops taking flows and waits for gVisor's handler goroutines,
// once gVisor's endpoints are closed (their handshakes end). The stack's
// shutdown calls it after closing gVisor.
func (f *forwarder) shutdown() {
	f.stopTimer()
	f.mu.Lock()
	f.closing = true
	inbox := f.inbox
	f.inbox = nil
	f.mu.Unlock()
	f.waitHandlers()
	dropItems(f, inbox)
	f.mu.Lock()
	inbox = f.inbox
	f.inbox = nil
	f.mu.Unlock()
	dropItems(f, inbox)
}

// waitHandlers waits for gVisor's handler goroutines, waking the
// handshakes still in progress (again and again: one may not be waiting
// yet) so that they fail and end.
func (f *forwarder) waitHandlers() {
	done := make(chan struct{})
	go func() { f.handlers.Wait(); close(done) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		f.hsMu.Lock()
		wqs := make([]*waiter.Queue, 0, len(f.handshakes))
		for wq := range f.handshakes {
			wqs = append(wqs, wq)
		}
		f.hsMu.Unlock()
		for _, wq := range wqs {
			wq.Notify(waiter.WritableEvents) // outside hsMu: Notify runs callbacks
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

// dropItems refuses items the engine will never take.
func dropItems(f *forwarder, items []fwdItem) {
	for _, it := range items {
		switch {
		case it.syn != nil:
			it.syn.verdict <- Reset
		case it.proto == FlowEcho:
			f.echoes.Add(-1)
		case it.proto == FlowTCP:
			it.ep.Abort()
			f.tcpFlows.Add(-1)
			if it.direct != nil {
				it.direct <- Flow{} // room for one; nothing else sends
			}
		default:
			it.ep.Close()
			f.udpFlows.Add(-1)
		}
	}
}

// stats fills st.Forward.
func (f *forwarder) stats(st *ForwardStats) {
	f.mu.Lock()
	if f.open {
		st.Open = 1
	}
	f.mu.Unlock()
	st.TCPPending, st.TCPFlows, st.UDPFlows = int(f.pending.Load()), int(f.tcpFlows.Load()), int(f.udpFlows.Load())
	c := &f.st
	st.TCPOffered, st.UDPOffered = c.tcpOffered.Load(), c.udpOffered.Load()
	st.TCPRefused, st.UDPRefused = c.tcpRefused.Load(), c.udpRefused.Load()
	st.TCPHandshakeFailed, st.TCPHandedOff = c.tcpFailed.Load(), c.handedOff.Load()
	st.TCPPendingDrops = f.ns.s.Stats().TCP.ForwardMaxInFlightDrop.Value()
	st.TCPLimitRefused, st.UDPLimitRefused, st.Unserved = c.tcpLimit.Load(), c.udpLimit.Load(), c.unserved.Load()
	st.UDPExpired = c.udpExpired.Load()
	st.OutsidePrefixes, st.EchoDropped = c.outside.Load(), c.echoDropped.Load()
	st.ACKsHeld, st.ACKsCovered = f.ns.link.ackHoldStats()
}

// addrPort converts a gVisor address and port.
func addrPort(a tcpip.Address, port uint16) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return netip.AddrPortFrom(ip.Unmap(), port)
}

// initForward makes the forwarder for Config.Forward (it starts with
// startForward, once the NIC exists).
func (ns *Netstack) initForward() {
	if ns.cfg.Forward != nil {
		ns.fwd = newForwarder(ns, *ns.cfg.Forward)
		ns.link.acks.holdFor = max(ns.fwd.cfg.ACKHold, 0)
	}
}

// startForward sets the NIC up for forwarding mode: it takes and sends
// packets of any address, and gVisor's forwarders hand new flows to ns.fwd.
func (ns *Netstack) startForward() error {
	f := ns.fwd
	if f == nil {
		return nil
	}
	if err := ns.s.SetPromiscuousMode(nicID, true); err != nil {
		return fromTCPIP(err)
	}
	if err := ns.s.SetSpoofing(nicID, true); err != nil {
		return fromTCPIP(err)
	}
	f.tcp = tcp.NewForwarder(ns.s, f.cfg.FlowBuffer, f.cfg.MaxPendingTCP, f.handleTCP)
	ns.s.SetTransportProtocolHandler(tcp.ProtocolNumber, f.tcpPacket)
	ns.s.SetTransportProtocolHandler(udp.ProtocolNumber, f.udpPacket)
	ns.s.SetTransportProtocolHandler(icmp.ProtocolNumber4, f.echoPacket)
	ns.s.SetTransportProtocolHandler(icmp.ProtocolNumber6, f.echoPacket)
	return nil
}

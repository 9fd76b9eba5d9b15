package core

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// linkEP is the stack's NIC: gVisor writes outbound packets into a bounded
// queue that device pumps (or PollDeviceIO) drain in batches; inbound
// packets are handed straight to gVisor's dispatcher by whoever read them.
//
// A stack joined to another by JoinPipe has a peer: its outbound packets
// are handed straight to the peer's gVisor (one copy, no pipe and no
// inbound pump in between), by the token holder at the end of its turn
// (release, after hold), inline by gVisor's goroutine that wrote them
// (flushOrWake), or, when neither may, by the outbound pump.
//
// Lock order: flushMu before mu; mu guards only the queue; no call into
// gVisor or a device is made with mu held. inMu (read side) is held while
// a packet is delivered into this stack's gVisor from another stack, so that
// close can wait for those deliveries to end.
type linkEP struct {
	mtu atomic.Uint32
	// offload is set while the attached device carries TCP super-segments
	// and packets without transport checksums to a peer that needs neither
	// (another netcore stack on a pipe): host GSO out, checksums trusted in.
	offload atomic.Bool
	// off is the state of an attached device that wants GSO (see
	// GSODevice and offload_pump.go).
	off offloadState

	dispMu     sync.RWMutex
	dispatcher stack.NetworkDispatcher // +checklocks:dispMu

	mu sync.Mutex
	// +checklocks:mu
	q      []*stack.PacketBuffer // ring buffer
	head   int                   // +checklocks:mu
	n      int                   // +checklocks:mu
	closed bool                  // +checklocks:mu
	ready  chan struct{}         // signalled (cap 1) when the queue turns non-empty
	// sendClosed refuses new packets while the queue drains (closeSend);
	// drained is closed once it is set and the queue is empty.
	sendClosed bool // +checklocks:mu
	drained    chan struct{}

	// peer, when set, is the joined stack's link: packets go straight to
	// it. flushMu serialises whoever delivers them (pump or engine), which
	// keeps them in order; batch is their scratch space, under flushMu.
	peer    atomic.Pointer[linkEP]
	flushMu sync.Mutex
	batch   [64]*stack.PacketBuffer // +checklocks:flushMu
	// holding is set while the token holder works through a turn:
	// enqueues then skip delivering or waking the outbound pump, and the
	// holder flushes at the end.
	holding atomic.Bool
	// inline, when set, writes the packets a token holder's turn queued
	// to an InlineWriter device at the end of the turn (see release).
	inline atomic.Pointer[gsoWriter]

	// room holds the UDP sockets whose send batches wait for the outbound
	// queue to drain (see udpbatch.go).
	room roomWaiters

	inMu sync.RWMutex
	// +checklocks:inMu
	inClosed bool // set by close, under inMu
	// in bounds what is delivered into gVisor and not yet consumed (see
	// inboundBudget).
	in inGate

	packetsOut, drops, packetsIn, invalidIn atomic.Uint64

	// udp, when set (before any packet moves), takes plain inbound
	// datagrams past gVisor (see udpFast).
	udp *udpFast

	// eth is the Ethernet side on MediumEthernet (see ethernet.go).
	eth ethState

	// repeatACKs makes WritePackets queue every pure ACK twice, unless
	// the link has a peer (JoinPipe: nothing is lost in between).
	repeatACKs   atomic.Bool
	acksRepeated atomic.Uint64

	// dsack fixes up TCP segments gVisor gets wrong after loss (see
	// dsack.go), unless the link has a peer.
	dsack dsacker
	// reorder puts inbound TCP segments back in order (see reorder.go).
	reorder reorderer
	// syn retries handshakes early (see syn.go), unless the link has a
	// peer.
	syn synRetrier
	// acks holds back a request's pure ACK for its reply to carry (see
	// ackhold.go), unless the link has a peer; guarded by mu.
	acks ackHolder
}

var (
	_ stack.LinkEndpoint = (*linkEP)(nil)
	_ stack.GSOEndpoint  = (*linkEP)(nil)
)

func newLinkEP(mtu, queueLen int) *linkEP {
	l := &linkEP{q: make([]*stack.PacketBuffer, queueLen), ready: make(chan struct{}, 1), drained: make(chan struct{})}
	l.mtu.Store(uint32(mtu))
	l.dsack.send = l.sendProbe
	l.dsack.ctl.send = l.sendProbe
	l.reorder.deliver = l.deliverReleased
	l.syn.send = l.sendProbe
	return l
}

// sendProbe sends a recovery probe (see dsack_probe.go) as the stack
// sends its packets; the caller keeps its reference.
func (l *linkEP) sendProbe(pkt *stack.PacketBuffer) {
	var pkts stack.PacketBufferList
	pkts.PushBack(pkt)
	l.WritePackets(pkts)
}

// WritePackets implements stack.LinkWriter. It never blocks: packets past
// the queue's bound are dropped and counted. Packets written outside a
// holder's turn (by gVisor's TCP processors and timers) go to a joined
// peer at once, inline, as gVisor's link/pipe delivers them, when no one
// else is delivering and the peer's inbound gate has room; else the
// outbound pump takes them.
func (l *linkEP) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	return l.writePkts(pkts.AsSlice())
}

// writePkts is WritePackets on a plain slice, which the NIC's queueing
// discipline (see qdisc.go) passes without allocating a list per packet.
func (l *linkEP) writePkts(pkts []*stack.PacketBuffer) (int, tcpip.Error) {
	l.mu.Lock()
	if l.sendClosed {
		l.mu.Unlock()
		return 0, &tcpip.ErrClosedForSend{}
	}
	wasEmpty := l.n == 0
	taken := 0
	repeat := l.repeatACKs.Load() && l.peer.Load() == nil
	dsack := l.peer.Load() == nil
	for _, pkt := range pkts {
		if l.n == len(l.q) {
			break
		}
		out := pkt
		var fixed *stack.PacketBuffer
		if dsack {
			if l.syn.on() {
				l.syn.outbound(pkt)
			}
			var held bool
			if fixed, held = l.dsack.outbound(pkt); held {
				taken++ // sent later, or superseded (see dsack_hold.go)
				continue
			}
		}
		if fixed != nil {
			out = fixed // see dsack.go
		}
		if dsack && l.holdACKLocked(out) {
			taken++ // sent later, or covered (see ackhold.go)
			if fixed != nil {
				fixed.DecRef()
			}
			continue
		}
		if l.n == len(l.q) {
			break // a held ACK sent before out took the room
		}
		l.enqueueLocked(out)
		taken++
		if repeat && l.n < len(l.q) && isPureACK(out) {
			l.enqueueLocked(out)
			l.acksRepeated.Add(1)
		}
		if fixed != nil {
			fixed.DecRef()
		}
	}
	l.mu.Unlock()
	l.packetsOut.Add(uint64(taken))
	if dropped := len(pkts) - taken; dropped > 0 {
		l.drops.Add(uint64(dropped))
	}
	if wasEmpty && taken > 0 && !l.holding.Load() {
		l.flushOrWake()
	}
	if taken == 0 {
		return 0, &tcpip.ErrNoBufferSpace{}
	}
	return taken, nil
}

// enqueueLocked queues a reference to pkt. l.mu is held and the queue has
// room.
//
// +checklocks:l.mu
func (l *linkEP) enqueueLocked(pkt *stack.PacketBuffer) {
	l.putLocked(pkt.IncRef())
}

// putLocked queues pkt, whose reference the queue takes. l.mu is held and
// the queue has room.
//
// +checklocks:l.mu
func (l *linkEP) putLocked(pkt *stack.PacketBuffer) {
	l.q[(l.head+l.n)%len(l.q)] = pkt
	l.n++
}

// isPureACK reports whether pkt is a TCP segment with the ACK flag alone
// and no payload: the receiver's acknowledgement of data, which the link
// repeats (see Config.SingleACKs).
func isPureACK(pkt *stack.PacketBuffer) bool {
	if pkt.TransportProtocolNumber != header.TCPProtocolNumber || pkt.GSOOptions.Type != stack.GSONone {
		return false
	}
	tcp := header.TCP(pkt.TransportHeader().Slice())
	return len(tcp) >= header.TCPMinimumSize && tcp.Flags() == header.TCPFlagAck && pkt.Data().Size() == 0
}

// dequeue moves up to len(out) queued packets into out; the caller owns
// their references.
func (l *linkEP) dequeue(out []*stack.PacketBuffer) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := 0
	for k < len(out) && l.n > 0 {
		out[k] = l.q[l.head]
		l.q[l.head] = nil
		l.head = (l.head + 1) % len(l.q)
		l.n--
		k++
	}
	if l.n > 0 {
		signal(l.ready)
	}
	l.checkDrainedLocked()
	l.room.drainedTo(l.n, len(l.q))
	return k
}

// closeSend refuses new outbound packets and lets the device side drain
// the queued ones: drained is closed once they are all taken.
func (l *linkEP) closeSend() {
	l.mu.Lock()
	l.sendClosed = true
	l.checkDrainedLocked()
	l.mu.Unlock()
	signal(l.ready)
}

// checkDrainedLocked closes drained once sends are closed and the queue is
// empty. l.mu is held.
//
// +checklocks:l.mu
func (l *linkEP) checkDrainedLocked() {
	if l.sendClosed && l.n == 0 {
		select {
		case <-l.drained:
		default:
			close(l.drained)
		}
	}
}

// deliver hands one inbound IP packet (an Ethernet frame on
// MediumEthernet) to gVisor. The packet's bytes are copied into gVisor's
// buffer, so b may be reused when it returns. Packets that are empty or of
// an unknown IP version, and frames the Ethernet filter refuses, are
// counted and dropped (see inboundProto). It charges the inbound gate and
// never waits on it: callers that may wait call l.in.wait before a batch.
func (l *linkEP) deliver(b []byte) {
	proto, ok := l.inboundProto(b)
	if !ok {
		return
	}
	l.dispMu.RLock()
	d := l.dispatcher
	l.dispMu.RUnlock()
	if d == nil {
		return
	}
	l.packetsIn.Add(1)
	if l.syn.on() {
		l.synInbound(b)
	}
	if b = l.dsack.inbound(b, l.linkHeaderLen()); b == nil {
		return
	}
	if l.reorder.on() && l.reorderInbound(d, proto, b) {
		return
	}
	l.deliverTo(d, proto, b)
}

// deliverTo hands b, one inbound packet of proto, to d, gVisor's
// dispatcher, copying it.
func (l *linkEP) deliverTo(d stack.NetworkDispatcher, proto tcpip.NetworkProtocolNumber, b []byte) {
	if l.udp != nil && proto == header.IPv4ProtocolNumber && l.udp.deliverBytes(b) {
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	l.off.rxMu.RLock()
	d.DeliverNetworkPacket(proto, pkt)
	l.off.rxMu.RUnlock()
	pkt.DecRef()
	l.in.charge(cost(len(b)))
}

// deliverPacket hands a packet another stack sent to this stack's gVisor,
// copying it once. It reports false once the link is closed. Without wait
// it also reports false while close is taking the link: a deliverer inline
// (maybe with gVisor locks held) never waits for a closing stack.
//
// checklocks has no model of TryRLock, hence the escape.
//
// +checklocksignore
func (l *linkEP) deliverPacket(pkt *stack.PacketBuffer, wait bool) bool {
	if wait {
		l.inMu.RLock()
	} else if !l.inMu.TryRLock() {
		return false
	}
	defer l.inMu.RUnlock()
	if l.inClosed {
		return false
	}
	l.dispMu.RLock()
	d := l.dispatcher
	l.dispMu.RUnlock()
	if d == nil || !l.acceptPeer(pkt) {
		return true
	}
	if l.udp != nil && l.udp.deliverPacket(pkt) {
		l.packetsIn.Add(1)
		return true
	}
	in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: peerCopy(pkt)})
	l.packetsIn.Add(1)
	d.DeliverNetworkPacket(pkt.NetworkProtocolNumber, in)
	in.DecRef()
	l.in.charge(cost(pkt.Size()))
	return true
}

// peerCopy makes the bytes a peer stack receives for pkt: the headers are
// copied, because gVisor writes IP and TCP headers in place as raw slices,
// and the payload is shared, because gVisor's buffer views are reference
// counted and copy on write (as gVisor's own link/pipe shares them).
func peerCopy(pkt *stack.PacketBuffer) buffer.Buffer {
	buf := pkt.ToBuffer()
	hs := pkt.HeaderSize()
	if hs <= 0 || int64(hs) > buf.Size() {
		out := buf.DeepClone()
		buf.Release()
		return out
	}
	hdr := buffer.NewViewSize(hs)
	buf.ReadAt(hdr.AsSlice(), 0)
	buf.TrimFront(int64(hs))
	out := buffer.MakeWithView(hdr)
	out.Merge(&buf)
	return out
}

// flushToPeer delivers every queued packet to peer, in order, waiting
// for room in peer's inbound gate. It fails with ErrClosed once peer is
// closed or stopping (the packets are dropped).
func (l *linkEP) flushToPeer(peer *linkEP) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	return l.flushToPeerLocked(peer, true)
}

// flushToPeerLocked is flushToPeer; without wait it stops with
// errInboundBusy when peer's inbound gate has no room, leaving the rest
// queued.
//
// +checklocks:l.flushMu
func (l *linkEP) flushToPeerLocked(peer *linkEP, wait bool) error {
	for {
		if err := peer.in.enter(wait); err != nil {
			return err
		}
		n := l.dequeue(l.batch[:])
		ok := true
		for _, p := range l.batch[:n] {
			if ok = ok && peer.deliverPacket(p, wait); !ok {
				l.drops.Add(1)
			}
			p.DecRef()
		}
		peer.in.leave()
		clear(l.batch[:n])
		switch {
		case !ok:
			return ErrClosed
		case n == 0:
			return nil
		}
	}
}

// drainTo hands every queued packet to send, in order and in batches of
// up to len(batch); send owns their references. It stops at send's first
// error and returns it.
func (l *linkEP) drainTo(batch []*stack.PacketBuffer, send func([]*stack.PacketBuffer) error) error {
	for {
		n := l.dequeue(batch)
		if n == 0 {
			return nil
		}
		err := send(batch[:n])
		clear(batch[:n])
		if err != nil {
			return err
		}
	}
}

// hold makes enqueues skip waking the outbound pump until release: the
// engine calls it before a batch of work.
func (l *linkEP) hold() { l.holding.Store(true) }

// endHold ends hold. The token holder, before it lets go of the token,
// writes what its turn queued to an InlineWriter device itself (see
// gsoWriter.tryDrain) and reports whether that took everything; what is
// left (all of it, with a peer) it delivers after letting go
// (flushOrWake, deliverAsCaller). A later holder's hold may come before
// that delivery: the delivery takes the later turn's packets too, in
// order.
func (l *linkEP) endHold() (drained bool) {
	l.holding.Store(false)
	w := l.inline.Load()
	return w != nil && w.tryDrain(l)
}

// release ends hold and delivers what waits, as a holder does around
// letting go of the token (see Netstack.release).
//
// checklocks cannot see that flushOrWake lets go of what it takes, hence
// the escape.
//
// +checklocksignore
func (l *linkEP) release() {
	if l.endHold() {
		return
	}
	l.flushOrWake()
}

// deliverAsCaller is flushOrWake for a caller of Request that no longer
// holds the token: when packets wait for a joined peer it delivers them,
// waiting for the goroutine delivering now and for room in the peer's
// inbound gate, so that senders are held back by the peer (backpressure)
// instead of filling the outbound queue past its bound. Only callers
// wait: the engine goroutine never does (a peer's barrier may need it to
// make the pass it waits for).
func (l *linkEP) deliverAsCaller() {
	peer := l.peer.Load()
	if peer == nil || !l.waiting() {
		l.flushOrWake()
		return
	}
	l.flushMu.Lock()
	err := l.flushToPeerLocked(peer, true)
	l.flushMu.Unlock()
	if err != nil && l.waiting() {
		signal(l.ready)
	}
}

// waiting reports whether packets are queued.
func (l *linkEP) waiting() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n > 0
}

// flushOrWake delivers the queued packets to the peer inline, in order,
// unless another goroutine is delivering (it takes ours too: deliverers
// loop until the queue is empty) or the peer's inbound gate is full;
// otherwise it wakes the outbound pump if packets wait. Inline delivery
// is safe with gVisor's locks held, as in link/pipe: the peer's gVisor
// queues inbound TCP segments to its processors, and what it delivers
// synchronously (UDP, ICMP) only queues a socket on its ready list.
//
// checklocks has no model of TryLock, hence the escape.
//
// +checklocksignore
func (l *linkEP) flushOrWake() {
	if peer := l.peer.Load(); peer != nil && l.flushMu.TryLock() {
		err := l.flushToPeerLocked(peer, false)
		l.flushMu.Unlock()
		if err != errInboundBusy {
			return
		}
	}
	l.mu.Lock()
	waiting := l.n > 0
	l.mu.Unlock()
	if waiting {
		signal(l.ready)
	}
}

// close drops every queued packet and refuses new ones, and waits for
// deliveries from a peer to end.
func (l *linkEP) close() {
	defer l.stopACKHold()
	defer l.dsack.stop()
	defer l.reorder.stop()
	defer l.syn.stop()
	l.inMu.Lock()
	l.inClosed = true
	l.inMu.Unlock()
	l.mu.Lock()
	l.closed, l.sendClosed = true, true
	var drop []*stack.PacketBuffer
	for l.n > 0 {
		drop = append(drop, l.q[l.head])
		l.q[l.head] = nil
		l.head = (l.head + 1) % len(l.q)
		l.n--
	}
	l.checkDrainedLocked()
	l.mu.Unlock()
	for _, p := range drop {
		p.DecRef()
	}
	signal(l.ready)
}

// MTU implements stack.NetworkLinkEndpoint.
func (l *linkEP) MTU() uint32 { return l.mtu.Load() }

// SetMTU implements stack.NetworkLinkEndpoint.
func (l *linkEP) SetMTU(mtu uint32) { l.mtu.Store(mtu) }

// MaxHeaderLength implements stack.NetworkLinkEndpoint: no link header.
func (*linkEP) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.NetworkLinkEndpoint: the stack's MAC on
// MediumEthernet, none on MediumIP.
func (l *linkEP) LinkAddress() tcpip.LinkAddress {
	if l.eth.on {
		return l.eth.addr
	}
	return ""
}

// SetLinkAddress implements stack.NetworkLinkEndpoint.
func (*linkEP) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.NetworkLinkEndpoint: checksum offload both
// ways while an offloading device is attached.
func (l *linkEP) Capabilities() stack.LinkEndpointCapabilities {
	if l.offload.Load() {
		return stack.CapabilityTXChecksumOffload | stack.CapabilityRXChecksumOffload
	}
	return l.off.rxCaps()
}

// gsoMaxSize leaves room for the largest IPv4 and TCP headers within an IP
// packet's 64 KiB.
const gsoMaxSize = 65000

// GSOMaxSize implements stack.GSOEndpoint.
func (*linkEP) GSOMaxSize() uint32 { return gsoMaxSize }

// SupportedGSO implements stack.GSOEndpoint: host GSO (whole super-segments
// handed to the device) while an offloading device is attached.
func (l *linkEP) SupportedGSO() stack.SupportedGSO {
	if l.offload.Load() || l.off.gso.Load() {
		return stack.HostGSOSupported
	}
	return stack.GSONotSupported
}

// Attach implements stack.NetworkLinkEndpoint.
func (l *linkEP) Attach(d stack.NetworkDispatcher) {
	l.dispMu.Lock()
	l.dispatcher = d
	l.dispMu.Unlock()
}

// IsAttached implements stack.NetworkLinkEndpoint.
func (l *linkEP) IsAttached() bool {
	l.dispMu.RLock()
	defer l.dispMu.RUnlock()
	return l.dispatcher != nil
}

// Wait implements stack.NetworkLinkEndpoint.
func (*linkEP) Wait() {}

// ARPHardwareType implements stack.NetworkLinkEndpoint.
func (*linkEP) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.NetworkLinkEndpoint.
func (*linkEP) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.NetworkLinkEndpoint.
func (*linkEP) ParseHeader(*stack.PacketBuffer) bool { return true }

// Close implements stack.NetworkLinkEndpoint.
func (l *linkEP) Close() { l.close() }

// SetOnCloseAction implements stack.NetworkLinkEndpoint.
func (*linkEP) SetOnCloseAction(func()) {}

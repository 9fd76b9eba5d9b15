package core

import (
	"sync"
	"sync/atomic"

	"github.com/netcore-go/netcore/core/gso"
	"github.com/netcore-go/netcore/core/internal/gro"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// offloadState is the link's side of an attached device that wants TCP
// super-segments (see GSODevice).
//
// gVisor's NIC marks every inbound packet checksum-validated or not from
// the link's CapabilityRXChecksumOffload, read per packet. Coalesced
// segments (see gro.Coalescer) carry the first segment's TCP checksum, so they
// must be delivered as validated; anything not checked must not be. So the
// link reports the capability only while trusted is set, and trusted is
// only set by a coalescing delivery holding rxMu's write side, for packets
// it validated itself, or by deliverValidated, under the same, for a
// packet its device vouched for (see ValidatedReader); every other
// delivery into the NIC holds the read side.
type offloadState struct {
	gso     atomic.Bool // the attached device wants TCP super-segments (and GRO)
	trusted atomic.Bool // the packets being delivered now are validated
	rxMu    sync.RWMutex
}

// rxCaps is the link's receive capability now.
func (o *offloadState) rxCaps() stack.LinkEndpointCapabilities {
	if o.trusted.Load() {
		return stack.CapabilityRXChecksumOffload
	}
	return 0
}

// An InlineWriter is an OffloadDevice whose writes never wait long: it
// hands packets to a kernel that takes or drops them at once, as a TUN
// does. The token holder then writes the packets its turn queued (a
// socket's data, a reply) to the device itself when the turn ends, if no
// other write is under way, instead of waking the outbound pump: a reply
// crosses no goroutine hand-off on its way out. Writes stay serialised and
// in order. Packets gVisor's own goroutines write outside a turn (a TCP
// processor's ACK, a handshake reply, a retransmission) still go through
// the pump: those goroutines hold the endpoint's lock while they write, and
// gVisor's processors spin on a lock held across a system call.
type InlineWriter interface {
	OffloadDevice
	// WritesInline reports whether the stack may write to the device
	// inline. AttachDevice asks once.
	WritesInline() bool
}

// gsoWriter writes a queue's packets to an OffloadDevice, whole, with
// their GSO metadata, from the outbound pump or, for an InlineWriter,
// from a token holder at the end of its turn (see linkEP.release),
// whoever gets mu first.
type gsoWriter struct {
	dev OffloadDevice
	vec VectoredWriter // dev, if it writes super-segments from their views
	mu  sync.Mutex
	// +checklocks:mu
	batch []*stack.PacketBuffer
	// +checklocks:mu
	pkts [][]byte
	// +checklocks:mu
	gsos []gso.Options
	// +checklocks:mu
	parts [][]byte // a super-segment's views, for vec
	// +checklocks:mu
	err error // the device's first write failure; nothing is written after it
}

func newGSOWriter(dev OffloadDevice) *gsoWriter {
	n := max(1, dev.BatchSize())
	w := &gsoWriter{dev: dev, batch: make([]*stack.PacketBuffer, n), pkts: make([][]byte, n), gsos: make([]gso.Options, n)}
	w.vec, _ = dev.(VectoredWriter)
	return w
}

// inlineRounds and inlineBatches bound the writing a goroutine does
// inline (see tryDrain): a token holder serves a bounded batch.
const (
	inlineRounds  = 4
	inlineBatches = 2
)

// drain writes every queued packet, waiting for another writer to finish.
// It returns the device's write error, this call's or an earlier one's.
func (w *gsoWriter) drain(l *linkEP) error {
	for {
		w.mu.Lock()
		_, err := w.writeLocked(l, -1)
		w.mu.Unlock()
		if err != nil || !l.queued() {
			return err
		}
	}
}

// tryDrain writes the queued packets unless another writer is at it, in
// which case that one takes them: every writer looks at the queue again
// after it lets go of mu. It reports false, for its caller to wake the
// pump, if it leaves packets queued (past its bound of inlineRounds
// rounds of inlineBatches batches) or after a write error, which the
// pump then sees.
//
// checklocks has no model of TryLock, hence the escape.
//
// +checklocksignore
func (w *gsoWriter) tryDrain(l *linkEP) bool {
	for range inlineRounds {
		if !w.mu.TryLock() {
			return true
		}
		more, err := w.writeLocked(l, inlineBatches)
		w.mu.Unlock()
		if err != nil {
			return false
		}
		if !more && !l.queued() {
			return true
		}
	}
	return false
}

// writeLocked writes up to batches batches of queued packets (all, if
// batches < 0) and reports whether more may be queued.
//
// +checklocks:w.mu
func (w *gsoWriter) writeLocked(l *linkEP, batches int) (bool, error) {
	for i := 0; w.err == nil && i != batches; i++ {
		n := l.dequeue(w.batch)
		if n == 0 {
			return false, nil
		}
		w.err = w.send(w.batch[:n])
		clear(w.batch[:n])
	}
	return w.err == nil, w.err
}

// queued reports whether outbound packets wait.
func (l *linkEP) queued() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n > 0
}

// send writes batch out and lets go of it, in order: a TCP super-segment
// a VectoredWriter takes goes out from gVisor's own views, after the
// packets before it; the others are copied and written in batches.
//
// +checklocks:w.mu
func (w *gsoWriter) send(batch []*stack.PacketBuffer) error {
	n := 0
	var err error
	for i, p := range batch {
		o := gsoOf(p)
		if w.vec != nil && o.Segments(p.Size()) > 1 {
			if err = w.flush(n); err != nil {
				releasePackets(batch[i:])
				return err
			}
			n = 0
			var took bool
			took, err = w.vec.WritePacketVectored(w.views(p), o)
			clear(w.parts)
			if took {
				p.DecRef()
				if err != nil {
					releasePackets(batch[i+1:])
					return err
				}
				continue
			}
		}
		w.pkts[n], w.gsos[n] = packetBytes(p), o
		p.DecRef()
		n++
	}
	return w.flush(n)
}

// flush writes the first n packets copied into w.pkts and recycles them.
//
// +checklocks:w.mu
func (w *gsoWriter) flush(n int) error {
	if n == 0 {
		return nil
	}
	_, err := w.dev.WritePacketsGSO(w.pkts[:n], w.gsos[:n])
	for i := range w.pkts[:n] {
		recyclePacket(w.pkts[i])
		w.pkts[i] = nil
	}
	return err
}

// views returns p's bytes as the views gVisor holds them in, in w.parts
// (no copy, no allocation once w.parts has grown).
//
// +checklocks:w.mu
func (w *gsoWriter) views(p *stack.PacketBuffer) [][]byte {
	vl, skip := p.AsViewList()
	parts := w.parts[:0]
	for v := vl.Front(); v != nil; v = v.Next() {
		b := v.AsSlice()
		if skip >= len(b) {
			skip -= len(b)
			continue
		}
		parts = append(parts, b[skip:])
		skip = 0
	}
	w.parts = parts
	return parts
}

// releasePackets lets go of packets that will not be written.
func releasePackets(batch []*stack.PacketBuffer) {
	for _, p := range batch {
		p.DecRef()
	}
}

// pumpOutGSO is pumpOut for an OffloadDevice: packets go out whole, with
// their GSO metadata. For an InlineWriter it writes only what the
// goroutines that queued packets left to it.
func (ns *Netstack) pumpOutGSO(dev OffloadDevice) {
	w := newGSOWriter(dev)
	if iw, ok := dev.(InlineWriter); ok && iw.WritesInline() {
		ns.link.inline.Store(w)
		defer ns.link.inline.Store(nil)
	}
	for ns.waitOut() {
		if w.drain(ns.link) != nil {
			return
		}
	}
}

// pumpInGRO is pumpIn for a device that wants GSO: the TCP segments of each batch
// read are validated and coalesced (a gro.Coalescer is the stack's GRO).
func (ns *Netstack) pumpInGRO(dev Device) {
	bufs, sizes := makeBufs(max(1, dev.BatchSize()), max(ns.cfg.MTU, 1<<16))
	read := readFunc(dev)
	valid := make([]bool, len(bufs))
	vr, _ := dev.(ValidatedReader)
	if vr != nil {
		read = func(bufs [][]byte, sizes []int) (int, error) {
			return vr.ReadPacketsValidated(bufs, sizes, valid)
		}
	}
	pkts := make([][]byte, len(bufs))
	var g groPath
	var in inView
	if vr != nil {
		in.fill(bufs)
		defer in.release()
	}
	for ns.link.in.wait() {
		n, err := read(bufs, sizes)
		for i := range n {
			pkts[i] = bufs[i][:sizes[i]]
		}
		if ns.link.in.enter(true) != nil {
			return
		}
		switch {
		case vr != nil && n == 1 && valid[0] && ns.link.deliverValidatedView(in.v, sizes[0]):
			in.fill(bufs) // gVisor has the view now
		case vr != nil:
			ns.link.deliverGROValidated(&g, pkts[:n], valid[:n])
		default:
			ns.link.deliverGRO(&g, pkts[:n])
		}
		ns.link.in.leave()
		if err != nil {
			return
		}
	}
}

// inView is the first read buffer of a ValidatedReader's pump: the
// slice of a 64 KiB gVisor view, so that a super-segment read whole into
// it goes to gVisor as it is (see deliverValidatedView), without the copy
// into a view of gVisor's that any other read packet takes.
type inView struct{ v *buffer.View }

// fill puts a new view in bufs[0].
func (in *inView) fill(bufs [][]byte) {
	in.v = buffer.NewViewSize(len(bufs[0]))
	bufs[0] = in.v.AsSlice()
}

// release lets go of the view the pump holds.
func (in *inView) release() {
	if in.v != nil {
		in.v.Release()
		in.v = nil
	}
}

// groPath is one inbound path's GRO: a coalescer and the sink it empties
// into.
type groPath struct {
	c    gro.Coalescer
	sink groSink
}

// groSink is the gro.Sink of a batch: it hands the coalescer's packets to
// gVisor's dispatcher d, the link trusting their checksums while it hands
// on a validated one (see offloadState).
type groSink struct {
	d       stack.NetworkDispatcher
	trusted *atomic.Bool
}

// DeliverNetworkPacket implements gro.Sink.
func (s *groSink) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	s.trusted.Store(pkt.RXChecksumValidated)
	s.d.DeliverNetworkPacket(proto, pkt)
}

// deliverGRO hands a batch of inbound packets to gVisor: TCP segments whose
// IP and TCP checksums are valid through g (coalesced, and delivered as
// validated), all others as deliver does (gVisor checks them). On
// MediumEthernet the frames pass the Ethernet filter first, and the
// coalescer compares and keeps their link headers.
func (l *linkEP) deliverGRO(g *groPath, pkts [][]byte) {
	l.dispMu.RLock()
	d := l.dispatcher
	l.dispMu.RUnlock()
	if d == nil || len(pkts) == 0 {
		return
	}
	if l.syn.on() {
		for _, p := range pkts {
			l.synInbound(p) // as deliver does: a handshake's end, a resent SYN
		}
	}
	g.sink = groSink{d: d, trusted: &l.off.trusted}
	l.off.rxMu.Lock()
	defer l.off.rxMu.Unlock()
	var spent int64
	for _, p := range pkts {
		spent += cost(len(p))
	}
	if l.eth.on {
		pkts = l.sortFrames(g, pkts)
	}
	for i, p := range pkts {
		pkts[i] = l.dsack.inbound(p, l.linkHeaderLen()) // see dsack.go
	}
	taken, invalid := g.c.Add(pkts, &g.sink)
	l.packetsIn.Add(uint64(taken))
	l.invalidIn.Add(uint64(invalid))
	l.off.trusted.Store(false)
	l.in.charge(spent)
}

// deliverGROValidated is deliverGRO for a batch of which the packets with
// valid[i] set need no checksum check (see ValidatedReader): each of those
// is delivered whole, as validated, after the packets before it, and the
// runs between them go through deliverGRO. On MediumEthernet valid is
// ignored (the frames must pass the Ethernet filter).
func (l *linkEP) deliverGROValidated(g *groPath, pkts [][]byte, valid []bool) {
	if l.eth.on {
		l.deliverGRO(g, pkts)
		return
	}
	start := 0
	for i, p := range pkts {
		if !valid[i] {
			continue
		}
		l.deliverGRO(g, pkts[start:i])
		l.deliverValidated(p)
		start = i + 1
	}
	l.deliverGRO(g, pkts[start:])
}

// deliverValidated hands gVisor one IP packet whose checksums it must
// trust (see offloadState).
func (l *linkEP) deliverValidated(p []byte) {
	proto, ok := l.inboundProto(p)
	l.dispMu.RLock()
	d := l.dispatcher
	l.dispMu.RUnlock()
	if d == nil || !ok {
		return
	}
	l.dsack.inboundTrusted(p)
	l.deliverTrusted(d, proto, splitHeaders(p), len(p))
}

// deliverValidatedView is deliverValidated for the TCP packet that is the
// first size bytes of v, handed to gVisor without a copy: its headers are
// copied into a view of their own (see splitHeaders), and v, trimmed to
// the payload, becomes gVisor's. It reports false, having taken nothing,
// for a packet that is not TCP, a link on MediumEthernet, or no
// dispatcher: the caller then delivers it as it does others.
func (l *linkEP) deliverValidatedView(v *buffer.View, size int) bool {
	p := v.AsSlice()[:size]
	n := tcpHeadersLen(p)
	if l.eth.on || n <= 0 || n >= size {
		return false
	}
	proto, ok := l.inboundProto(p)
	l.dispMu.RLock()
	d := l.dispatcher
	l.dispMu.RUnlock()
	if d == nil || !ok {
		return false
	}
	l.dsack.inboundTrusted(p)
	v.CapLength(size)
	v.TrimFront(n)
	// Headers first, then v appended: a Prepend would write them back
	// into the room in front of v's payload, one chunk again (see
	// splitHeaders).
	b := buffer.MakeWithView(buffer.NewViewWithData(p[:n]))
	b.Append(v)
	l.deliverTrusted(d, proto, b, size)
	return true
}

// deliverTrusted hands d packet b, of size bytes on the wire, as
// checksum-validated.
func (l *linkEP) deliverTrusted(d stack.NetworkDispatcher, proto tcpip.NetworkProtocolNumber, b buffer.Buffer, size int) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: b})
	pkt.RXChecksumValidated = true
	l.off.rxMu.Lock()
	l.off.trusted.Store(true)
	d.DeliverNetworkPacket(proto, pkt)
	l.off.trusted.Store(false)
	l.off.rxMu.Unlock()
	pkt.DecRef()
	l.packetsIn.Add(1)
	l.in.charge(cost(size))
}

// splitHeaders copies IP packet p into a buffer of two views: its IP and
// TCP headers, then its payload. Apart they cost less: gVisor's IP layer
// holds a reference to the headers' chunk while it reads them again, which
// copies a shared chunk whole (copy on write), cheap for 64 bytes, not for
// a 64 KiB super-segment. A packet that is not TCP is one view.
func splitHeaders(p []byte) buffer.Buffer {
	n := tcpHeadersLen(p)
	if n <= 0 || n >= len(p) {
		return buffer.MakeWithData(p)
	}
	b := buffer.MakeWithView(buffer.NewViewWithData(p[n:]))
	b.Prepend(buffer.NewViewWithData(p[:n]))
	return b
}

// tcpHeadersLen is the length of the IP and TCP headers of TCP packet p
// (IPv4, or IPv6 without extension headers), or 0 if p is not one.
func tcpHeadersLen(p []byte) int {
	var l3 int
	switch header.IPVersion(p) {
	case header.IPv4Version:
		if len(p) < header.IPv4MinimumSize || header.IPv4(p).Protocol() != uint8(header.TCPProtocolNumber) {
			return 0
		}
		l3 = int(header.IPv4(p).HeaderLength())
	case header.IPv6Version:
		if len(p) < header.IPv6MinimumSize || header.IPv6(p).NextHeader() != uint8(header.TCPProtocolNumber) {
			return 0
		}
		l3 = header.IPv6MinimumSize
	default:
		return 0
	}
	if len(p) < l3+header.TCPMinimumSize {
		return 0
	}
	return l3 + int(header.TCP(p[l3:]).DataOffset())
}

// sortFrames runs a batch of Ethernet frames through the link's filter
// (see ethState.check): it drops and counts the refused ones, delivers
// the ARP ones at once (unvalidated: gVisor parses them), and returns the
// IP ones, compacted in pkts, for the coalescer.
func (l *linkEP) sortFrames(g *groPath, pkts [][]byte) [][]byte {
	g.c.LinkLen = EthernetHeaderLen
	max := l.maxFrame()
	ip := pkts[:0]
	for _, b := range pkts {
		proto, ok := l.eth.accept(b, max)
		switch {
		case !ok:
		case proto == header.ARPProtocolNumber:
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
			g.sink.DeliverNetworkPacket(proto, pkt)
			pkt.DecRef()
			l.packetsIn.Add(1)
		default:
			ip = append(ip, b)
		}
	}
	return ip
}

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
// Lock order: linkEP.mu guards only the queue; no call into gVisor or a
// device is made with it held.
type linkEP struct {
	mtu atomic.Uint32
	// offload is set while the attached device carries TCP super-segments
	// and packets without transport checksums to a peer that needs neither
	// (another netcore stack on a pipe): host GSO out, checksums trusted in.
	offload atomic.Bool

	dispMu     sync.RWMutex
	dispatcher stack.NetworkDispatcher

	mu     sync.Mutex
	q      []*stack.PacketBuffer // ring buffer
	head   int
	n      int
	closed bool
	ready  chan struct{} // signalled (cap 1) when the queue turns non-empty

	packetsOut, drops, packetsIn, invalidIn atomic.Uint64
}

var (
	_ stack.LinkEndpoint = (*linkEP)(nil)
	_ stack.GSOEndpoint  = (*linkEP)(nil)
)

func newLinkEP(mtu, queueLen int) *linkEP {
	l := &linkEP{q: make([]*stack.PacketBuffer, queueLen), ready: make(chan struct{}, 1)}
	l.mtu.Store(uint32(mtu))
	return l
}

// WritePackets implements stack.LinkWriter. It never blocks: packets past
// the queue's bound are dropped and counted.
func (l *linkEP) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, &tcpip.ErrClosedForSend{}
	}
	wasEmpty := l.n == 0
	taken := 0
	for _, pkt := range pkts.AsSlice() {
		if l.n == len(l.q) {
			break
		}
		l.q[(l.head+l.n)%len(l.q)] = pkt.IncRef()
		l.n++
		taken++
	}
	l.mu.Unlock()
	l.packetsOut.Add(uint64(taken))
	if dropped := pkts.Len() - taken; dropped > 0 {
		l.drops.Add(uint64(dropped))
	}
	if wasEmpty && taken > 0 {
		signal(l.ready)
	}
	if taken == 0 {
		return 0, &tcpip.ErrNoBufferSpace{}
	}
	return taken, nil
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
	return k
}

// deliver hands one inbound IP packet to gVisor. The packet's bytes are
// copied into gVisor's buffer, so b may be reused when it returns. Packets
// that are empty or of an unknown IP version are counted and dropped.
func (l *linkEP) deliver(b []byte) {
	var proto tcpip.NetworkProtocolNumber
	switch header.IPVersion(b) {
	case header.IPv4Version:
		proto = header.IPv4ProtocolNumber
	case header.IPv6Version:
		proto = header.IPv6ProtocolNumber
	default:
		l.invalidIn.Add(1)
		return
	}
	l.dispMu.RLock()
	d := l.dispatcher
	l.dispMu.RUnlock()
	if d == nil {
		return
	}
	l.packetsIn.Add(1)
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	d.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
}

// close drops every queued packet and refuses new ones.
func (l *linkEP) close() {
	l.mu.Lock()
	l.closed = true
	var drop []*stack.PacketBuffer
	for l.n > 0 {
		drop = append(drop, l.q[l.head])
		l.q[l.head] = nil
		l.head = (l.head + 1) % len(l.q)
		l.n--
	}
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

// LinkAddress implements stack.NetworkLinkEndpoint: none for an IP medium.
func (*linkEP) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.NetworkLinkEndpoint.
func (*linkEP) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.NetworkLinkEndpoint: checksum offload both
// ways while an offloading device is attached.
func (l *linkEP) Capabilities() stack.LinkEndpointCapabilities {
	if l.offload.Load() {
		return stack.CapabilityTXChecksumOffload | stack.CapabilityRXChecksumOffload
	}
	return 0
}

// gsoMaxSize leaves room for the largest IPv4 and TCP headers within an IP
// packet's 64 KiB.
const gsoMaxSize = 65000

// GSOMaxSize implements stack.GSOEndpoint.
func (*linkEP) GSOMaxSize() uint32 { return gsoMaxSize }

// SupportedGSO implements stack.GSOEndpoint: host GSO (whole super-segments
// handed to the device) while an offloading device is attached.
func (l *linkEP) SupportedGSO() stack.SupportedGSO {
	if l.offload.Load() {
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

package core

import (
	"encoding/binary"
	"slices"
	"sync"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// flowPacket is an outbound UDP packet to port dst carrying payload, with
// its headers pushed as gVisor's UDP endpoint pushes them.
func flowPacket(dst uint16, payload byte) *stack.PacketBuffer {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: header.IPv4MinimumSize + header.UDPMinimumSize,
		Payload:            buffer.MakeWithData([]byte{payload}),
	})
	udp := header.UDP(pkt.TransportHeader().Push(header.UDPMinimumSize))
	udp.Encode(&header.UDPFields{SrcPort: 2000, DstPort: dst, Length: header.UDPMinimumSize + 1})
	pkt.TransportProtocolNumber = header.UDPProtocolNumber
	ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(pkt.Size()), TTL: 64, Protocol: uint8(header.UDPProtocolNumber),
		SrcAddr: tcpip.AddrFrom4([4]byte{192, 0, 2, 1}), DstAddr: tcpip.AddrFrom4([4]byte{192, 0, 2, 2}),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	return pkt
}

// stallDispatcher records the (port, payload) of every UDP packet it is
// handed, and holds up the first one to stallPort until released.
type stallDispatcher struct {
	stack.NetworkDispatcher
	stallPort uint16
	blocked   chan struct{} // closed when the stalled packet arrives
	released  chan struct{}

	mu   sync.Mutex
	seen []uint32 // port<<8 | payload, in delivery order
	once bool
}

func (d *stallDispatcher) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	b := pkt.Data().AsRange().ToSlice()
	port := binary.BigEndian.Uint16(b[header.IPv4MinimumSize+2:])
	d.mu.Lock()
	d.seen = append(d.seen, uint32(port)<<8|uint32(b[len(b)-1]))
	stall := port == d.stallPort && !d.once
	d.once = d.once || stall
	d.mu.Unlock()
	if stall {
		close(d.blocked)
		<-d.released
	}
	d.NetworkDispatcher.DeliverNetworkPacket(proto, pkt)
}

func (d *stallDispatcher) delivered() []uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.seen)
}

// write queues pkt on l as gVisor's goroutine does (delivering it inline
// if it may) and lets go of it.
func write(t *testing.T, l *linkEP, pkt *stack.PacketBuffer) {
	t.Helper()
	var pkts stack.PacketBufferList
	pkts.PushBack(pkt)
	if n, err := l.WritePackets(pkts); n != 1 || err != nil {
		t.Errorf("WritePackets = %d, %v", n, err)
	}
	pkts.DecRef()
}

// While one flow's delivery is held up inside the peer, another flow's
// packet reaches the peer at once (two deliverers work side by side: a
// flow's lane, not the whole link, is taken while delivering), and the
// held flow's next packet waits for it: it arrives after, in order.
// Before, the first deliverer kept the link's flushMu across the delivery
// and every other packet waited behind it.
func TestLanesDeliverFlowsBeside(t *testing.T) {
	a := newIdleStack(t, "192.0.2.1/24")
	b := newIdleStack(t, "192.0.2.2/24")
	l := a.link
	l.peer.Store(b.link)
	const x = 1000
	y := uint16(1001)
	for laneOf(flowPacket(y, 0)) == laneOf(flowPacket(x, 0)) {
		y++
	}
	d := &stallDispatcher{stallPort: x, blocked: make(chan struct{}), released: make(chan struct{})}
	b.link.dispMu.Lock()
	d.NetworkDispatcher = b.link.dispatcher
	b.link.dispatcher = d
	b.link.dispMu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { write(t, l, flowPacket(x, 1)) }) // delivered inline, stalls in the peer
	<-d.blocked
	write(t, l, flowPacket(y, 1))
	if got, want := d.delivered(), []uint32{x<<8 | 1, uint32(y)<<8 | 1}; !slices.Equal(got, want) {
		t.Errorf("delivered %x while flow %d is held up; want %x (flow %d beside it)", got, x, want, y)
	}
	write(t, l, flowPacket(x, 2)) // its lane is held: left for the holder
	if got := len(d.delivered()); got != 2 {
		t.Errorf("%d packets delivered; want flow %d's second to wait for its first", got, x)
	}
	close(d.released)
	wg.Wait()
	want := []uint32{x<<8 | 1, uint32(y)<<8 | 1, x<<8 | 2}
	if got := d.delivered(); !slices.Equal(got, want) {
		t.Errorf("delivered %x, want %x", got, want)
	}
}

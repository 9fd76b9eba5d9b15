package core

import (
	"bytes"
	"testing"

	"github.com/netcore-go/netcore/core/internal/pcap"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The NIC writes straight to the link (no list per packet) on both media,
// and through gVisor's default discipline where a packet capture sits in
// between (so the capture still sees every packet it wrote).
func TestNICQDiscChoice(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		direct bool
	}{
		{"ip", Config{}, true},
		{"ethernet", Config{Medium: MediumEthernet}, true},
		{"ip+pcap", Config{PCAP: &bytes.Buffer{}}, false},
		{"ethernet+pcap", Config{Medium: MediumEthernet, PCAP: &bytes.Buffer{}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, err := New(tc.cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { ns.Close() })
			nicEP := stack.LinkEndpoint(ns.link)
			if ns.capture != nil {
				nicEP = pcap.NewEndpoint(ns.link, ns.capture)
			}
			q := ns.nicQDisc(wrapEthernet(tc.cfg.Medium, nicEP))
			lq, ok := q.(*linkQDisc)
			if ok != tc.direct || (ok && lq.l != ns.link) {
				t.Fatalf("nicQDisc = %#v; want direct to the stack's link: %v", q, tc.direct)
			}
		})
	}
}

// linkQDisc keeps the link's order and bound: packets queue in the order
// written, and one past a full queue is refused with ErrNoBufferSpace and
// counted as a drop, as through WritePackets.
func TestLinkQDiscOrderAndBound(t *testing.T) {
	const queueLen = 4
	l := newLinkEP(1500, queueLen)
	t.Cleanup(l.close)
	q := &linkQDisc{l: l}
	for i := range queueLen {
		pkt := qdiscPacket(byte(i))
		if err := q.WritePacket(pkt); err != nil {
			t.Fatalf("WritePacket %d: %v", i, err)
		}
		pkt.DecRef()
	}
	pkt := qdiscPacket(queueLen)
	err := q.WritePacket(pkt)
	pkt.DecRef()
	if _, ok := err.(*tcpip.ErrNoBufferSpace); !ok {
		t.Fatalf("WritePacket on a full queue = %v; want ErrNoBufferSpace", err)
	}
	if got := l.drops.Load(); got != 1 {
		t.Fatalf("%d drops counted; want 1", got)
	}
	out := make([]*stack.PacketBuffer, queueLen+1)
	n := l.dequeue(out)
	if n != queueLen {
		t.Fatalf("dequeued %d packets; want %d", n, queueLen)
	}
	for i, p := range out[:n] {
		if got := p.ToView().AsSlice()[header.IPv4MinimumSize]; got != byte(i) {
			t.Errorf("packet %d carries %d; want %d (in order)", i, got, i)
		}
		p.DecRef()
	}
}

// qdiscPacket is an outbound UDP packet whose first payload byte is tag.
func qdiscPacket(tag byte) *stack.PacketBuffer {
	b := make([]byte, header.IPv4MinimumSize+header.UDPMinimumSize+1)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.UDPProtocolNumber),
		SrcAddr: tcpip.AddrFrom4([4]byte{192, 0, 2, 1}), DstAddr: tcpip.AddrFrom4([4]byte{192, 0, 2, 2})})
	b[header.IPv4MinimumSize] = tag
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	pkt.NetworkProtocolNumber, pkt.TransportProtocolNumber = header.IPv4ProtocolNumber, header.UDPProtocolNumber
	return pkt
}

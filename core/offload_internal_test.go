package core

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core/gso"
	"github.com/netcore-go/netcore/internal/xsum"
	"go.uber.org/goleak"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// injectDev is a Device that reads what the test injects and discards
// what the stack writes, counting the batches.
type injectDev struct {
	in        chan []byte
	closed    chan struct{}
	closeOnce sync.Once
	writes    atomic.Int64 // WritePackets calls
}

func newInjectDev(capacity int) injectDev {
	return injectDev{in: make(chan []byte, capacity), closed: make(chan struct{})}
}

func (d *injectDev) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	select {
	case p := <-d.in:
		sizes[0] = copy(bufs[0], p)
		return 1, nil
	case <-d.closed:
		return 0, net.ErrClosed
	}
}

func (d *injectDev) WritePackets(pkts [][]byte) (int, error) {
	d.writes.Add(1)
	return len(pkts), nil
}

func (d *injectDev) BatchSize() int { return 8 }

func (d *injectDev) Close() error {
	d.closeOnce.Do(func() { close(d.closed) })
	return nil
}

// offloadTestDev is an injectDev that is an OffloadDevice.
type offloadTestDev struct {
	injectDev
	gsoWrites atomic.Int64 // WritePacketsGSO calls
}

func (d *offloadTestDev) WritePacketsGSO(pkts [][]byte, _ []gso.Options) (int, error) {
	d.gsoWrites.Add(1)
	return len(pkts), nil
}

var (
	peerAddr = tcpip.AddrFrom4([4]byte{192, 0, 2, 2})
	selfAddr = tcpip.AddrFrom4([4]byte{192, 0, 2, 1})
)

// inboundPacket builds a valid IPv4 packet from peerAddr to selfAddr
// carrying transport header l4 (checksum field at csumAt) and payload.
func inboundPacket(proto tcpip.TransportProtocolNumber, l4 []byte, csumAt int, payload []byte) []byte {
	pkt := make([]byte, header.IPv4MinimumSize+len(l4)+len(payload))
	ip := header.IPv4(pkt)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(pkt)), TTL: 64, Protocol: uint8(proto), SrcAddr: peerAddr, DstAddr: selfAddr,
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	copy(pkt[header.IPv4MinimumSize:], l4)
	copy(pkt[header.IPv4MinimumSize+len(l4):], payload)
	xsum.SetTransportChecksum(pkt, header.IPv4MinimumSize, csumAt, proto, peerAddr, selfAddr)
	return pkt
}

func udpPacket(payload string) []byte {
	l4 := make([]byte, header.UDPMinimumSize)
	header.UDP(l4).Encode(&header.UDPFields{SrcPort: 2000, DstPort: 1000, Length: uint16(len(l4) + len(payload))})
	return inboundPacket(header.UDPProtocolNumber, l4, xsum.UDPChecksumOffset, []byte(payload))
}

func tcpSyn() []byte {
	l4 := make([]byte, header.TCPMinimumSize)
	header.TCP(l4).Encode(&header.TCPFields{
		SrcPort: 3000, DstPort: 80, SeqNum: 1, DataOffset: header.TCPMinimumSize,
		Flags: header.TCPFlagSyn, WindowSize: 65535,
	})
	return inboundPacket(header.TCPProtocolNumber, l4, header.TCPChecksumOffset, nil)
}

// runWithUDP runs ns and binds a UDP socket on 192.0.2.1:1000. Cancel the
// context (or close ns) to stop it.
func runWithUDP(t *testing.T, ns *Netstack) (context.Context, context.CancelFunc, Channel, Handle) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	go ns.Run(ctx)
	ch := ns.CommandChannel()
	resp, err := ch.Request(ctx, NoHandle, UDPBind{Local: netip.MustParseAddrPort("192.0.2.1:1000")})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return ctx, cancel, ch, resp.(UDPBound).Handle
}

// eventually waits (without a timing assertion: up to a generous bound)
// for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// TestOffloadDeviceDropsCorruptedPackets injects packets with one byte
// flipped, and truncated ones, through an OffloadDevice (whose inbound path validates and
// coalesces with GRO): they must be dropped and counted, and good packets
// around them delivered.
func TestOffloadDeviceDropsCorruptedPackets(t *testing.T) {
	defer goleak.VerifyNone(t)
	ns, err := New(Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	dev := &offloadTestDev{injectDev: newInjectDev(16)}
	if err := ns.AttachDevice(dev); err != nil {
		t.Fatal(err)
	}
	if ns.link.SupportedGSO() != stack.HostGSOSupported {
		t.Fatal("an OffloadDevice should make the link advertise host GSO")
	}
	ctx, cancel, ch, h := runWithUDP(t, ns)
	defer cancel()
	if _, err := ch.Request(ctx, NoHandle, TCPListen{Local: netip.MustParseAddrPort("192.0.2.1:80")}); err != nil {
		t.Fatal(err)
	}
	stats := ns.s.Stats()

	bad := udpPacket("corrupted")
	bad[len(bad)-1] ^= 0x40
	dev.in <- bad
	dev.in <- []byte{0x45}             // too short to say what it carries
	dev.in <- []byte{0x60, 0, 0, 0, 0} // the same for IPv6
	dev.in <- udpPacket("good")
	buf := make([]byte, 64)
	resp, err := ch.Request(ctx, h, UDPRecv{Buf: buf})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:resp.(UDPRecvd).N]); got != "good" {
		t.Fatalf("received %q, want the good datagram only", got)
	}
	eventually(t, "UDP checksum error counted", func() bool { return stats.UDP.ChecksumErrors.Value() == 1 })

	syn := tcpSyn()
	syn[header.IPv4MinimumSize+14] ^= 0x01 // window
	dev.in <- syn
	eventually(t, "TCP checksum error counted", func() bool { return stats.TCP.ChecksumErrors.Value() == 1 })
	syn = tcpSyn()
	syn[8] ^= 0x01 // TTL: the IPv4 header checksum fails
	malformed := stats.IP.MalformedPacketsReceived.Value()
	dev.in <- syn
	eventually(t, "bad IPv4 header counted", func() bool { return stats.IP.MalformedPacketsReceived.Value() > malformed })
	if n := stats.TCP.PassiveConnectionOpenings.Value(); n != 0 {
		t.Fatalf("%d connections opened by corrupted SYNs", n)
	}
	dev.in <- tcpSyn()
	eventually(t, "good SYN answered", func() bool { return stats.TCP.ValidSegmentsReceived.Value() >= 1 })
	// The SYN is counted while the pump still delivers it, trusted: the
	// link must stop trusting once that delivery is over.
	eventually(t, "link stops trusting inbound checksums", func() bool { return !ns.link.off.trusted.Load() })
}

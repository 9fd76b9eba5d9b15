package listener_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

var fullScan = flag.Bool("listener.fullscan", false, "TestForwardFloodBounded: 100,000 flood SYNs and scans of all 65,535 ports (default 20,000 and 5,000)")

// rawPacket builds an IPv4 packet from src to dst carrying a TCP SYN
// (proto 6) or an empty UDP datagram (17), checksums set.
func rawPacket(src, dst netip.AddrPort, proto uint8) []byte {
	tl := header.TCPMinimumSize
	if proto == 17 {
		tl = header.UDPMinimumSize
	}
	b := make([]byte, header.IPv4MinimumSize+tl)
	s, d := tcpip.AddrFrom4(src.Addr().As4()), tcpip.AddrFrom4(dst.Addr().As4())
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: proto, SrcAddr: s, DstAddr: d})
	ip.SetChecksum(^ip.CalculateChecksum())
	t := b[header.IPv4MinimumSize:]
	sum := header.PseudoHeaderChecksum(tcpip.TransportProtocolNumber(proto), s, d, uint16(tl))
	if proto == 17 {
		u := header.UDP(t)
		u.Encode(&header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port(), Length: uint16(tl)})
		u.SetChecksum(^checksum.Checksum(t, sum))
		return b
	}
	tcp := header.TCP(t)
	tcp.Encode(&header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), SeqNum: rand.Uint32(), DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagSyn, WindowSize: 65535})
	tcp.SetChecksum(^checksum.Checksum(t, sum))
	return b
}

// heapNow returns the live heap after a GC.
func heapNow() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestForwardFloodBounded sends a SYN flood from random sources to random
// destinations, a SYN scan and a UDP scan of every port of one host into
// a forwarding stack, and checks that its heap stays bounded by the
// limits, that past them flows are dropped and counted, and that a flow
// established before keeps moving data.
func TestForwardFloodBounded(t *testing.T) {
	flood, ports := 20_000, 5000
	if *fullScan {
		flood, ports = 100_000, 65535
	}
	fc := core.ForwardConfig{MaxPendingTCP: 256, MaxUDPFlows: 256, UDPTimeout: time.Hour} // no flow expires during the scan
	fw := &listener.Forwarder{
		HandleTCP: func(_ context.Context, c *netconn.TCPConn) { io.Copy(c, c) },
		HandleUDP: func(_ context.Context, c *listener.UDPFlow) { io.Copy(io.Discard, c) },
	}
	p := forwardPair(t, fc, fw)
	legit := dial(t, p, netip.AddrPortFrom(far4, 80))
	echoOnce(t, legit, "before")
	raw := must(t, p.A.CommandChannel(), core.RawOpen{Version: 4, Protocol: 6}).(core.RawOpened).Handle
	base := heapNow()

	send := func(pkt []byte) {
		for {
			_, err := p.A.CommandChannel().Request(context.Background(), raw, &core.RawSend{Packet: pkt})
			if !errors.Is(err, core.ErrNoBufs) {
				if err != nil {
					t.Fatalf("raw send: %v", err)
				}
				return
			}
			time.Sleep(time.Millisecond) // A's outbound queue is full: B is behind
		}
	}
	peak := int64(0)
	for i := range flood {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%60000))
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(1 + rand.IntN(200)), byte(rand.IntN(256)), byte(rand.IntN(256)), 1}), uint16(1+rand.IntN(65535)))
		send(rawPacket(src, dst, 6))
		if i%5000 == 0 {
			echoOnce(t, legit, "during the flood") // the engine keeps answering
			peak = max(peak, heapNow()-base)
		}
	}
	me := netip.AddrPortFrom(testnet.AddrA, 40000)
	for port := 1; port <= ports; port++ {
		send(rawPacket(me, netip.AddrPortFrom(far4, uint16(port)), 6))
		send(rawPacket(me, netip.AddrPortFrom(far4, uint16(port)), 17))
		if port%5000 == 0 {
			peak = max(peak, heapNow()-base)
		}
	}
	echoOnce(t, legit, "after")
	peak = max(peak, heapNow()-base)
	st := p.B.Stats().Forward
	t.Logf("heap: +%d KiB at most over %d flood SYNs and a %d-port SYN and UDP scan; %+v", peak>>10, flood, ports, st)
	if st.TCPPending > fc.MaxPendingTCP || st.UDPFlows > fc.MaxUDPFlows {
		t.Fatalf("pending %d, UDP flows %d: past the limits %d, %d", st.TCPPending, st.UDPFlows, fc.MaxPendingTCP, fc.MaxUDPFlows)
	}
	if st.TCPPendingDrops == 0 || st.UDPLimitRefused == 0 {
		t.Fatalf("no SYN dropped or UDP flow refused past the limits: %+v", st)
	}
	// The bound: the limits' worth of state (a pending handshake and a UDP
	// flow each cost a few KiB) with a wide margin, far below what a
	// hundred thousand flows would hold.
	if limit := int64(32 << 20); peak > limit {
		t.Fatalf("heap grew by %d MiB, want under %d MiB", peak>>20, limit>>20)
	}
}

// echoOnce writes msg to an echoing flow and reads it back.
func echoOnce(t *testing.T, c *netconn.TCPConn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write %s: %v", msg, err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo %s: %q, %v", msg, buf, err)
	}
}

func must(t *testing.T, ch core.Channel, cmd core.Command) core.Response {
	t.Helper()
	resp, err := ch.Request(context.Background(), core.NoHandle, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

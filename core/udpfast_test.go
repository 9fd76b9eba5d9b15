package core

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"go.uber.org/goleak"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// fastWire is a running stack at 10.0.0.1/24 whose device is a pipe: the
// test writes inbound packets into it by hand.
type fastWire struct {
	ns *Netstack
	ch Channel
	p  Pipe
}

func newFastWire(t *testing.T, viaGVisor bool) *fastWire {
	t.Helper()
	ns, err := New(Config{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	ns.gvisorRecvs = viaGVisor
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ns.Run(ctx) }()
	p := NewPipe(0)
	if err := ns.AttachDevice(&PipeDev{End: p.A, Medium: MediumIP, MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	go func() { // drain what the stack sends (ICMP errors)
		for {
			if _, err := p.B.Recv(ctx); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { ns.Close(); cancel(); <-done })
	return &fastWire{ns: ns, ch: ns.CommandChannel(), p: p}
}

func (w *fastWire) inject(t *testing.T, pkts ...[]byte) {
	t.Helper()
	for _, pkt := range pkts {
		if err := w.p.B.Send(pkt); err != nil {
			t.Fatal(err)
		}
	}
}

// recv reads one datagram from h: its payload and source.
func (w *fastWire) recv(t *testing.T, h Handle) (string, netip.AddrPort) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout) // a hang guard, not a timing
	defer cancel()
	buf := make([]byte, 2048)
	resp, err := w.ch.Request(ctx, h, &UDPRecv{Buf: buf})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	r := resp.(UDPRecvd)
	return string(buf[:r.N]), r.From
}

var (
	fastLocal    = netip.MustParseAddrPort("10.0.0.1:5000")
	fastConnLoc  = netip.MustParseAddrPort("10.0.0.1:5001")
	fastPeer     = netip.MustParseAddrPort("10.0.0.2:7000")
	fastStranger = netip.MustParseAddrPort("10.0.0.3:7000")
)

// fastMutation is an inbound packet a test makes from a plain datagram.
type fastMutation struct {
	name string
	make func() [][]byte
}

func fastMutations() []fastMutation {
	plain := func(from, to netip.AddrPort, payload string) []byte {
		return udpDatagram(from, to, []byte(payload))
	}
	return []fastMutation{
		{"plain", func() [][]byte { return [][]byte{plain(fastPeer, fastLocal, "plain")} }},
		{"no UDP checksum", func() [][]byte {
			b := plain(fastPeer, fastLocal, "nosum")
			header.UDP(b[header.IPv4MinimumSize:]).SetChecksum(0)
			return [][]byte{b}
		}},
		{"bad UDP checksum", func() [][]byte {
			b := plain(fastPeer, fastLocal, "badsum")
			u := header.UDP(b[header.IPv4MinimumSize:])
			u.SetChecksum(u.Checksum() + 1)
			return [][]byte{b}
		}},
		{"bad IPv4 checksum", func() [][]byte {
			b := plain(fastPeer, fastLocal, "badip")
			ip := header.IPv4(b)
			ip.SetChecksum(ip.Checksum() + 1)
			return [][]byte{b}
		}},
		{"UDP length too long", func() [][]byte {
			b := plain(fastPeer, fastLocal, "longlen")
			u := header.UDP(b[header.IPv4MinimumSize:])
			u.SetLength(u.Length() + 4)
			return [][]byte{b}
		}},
		{"UDP length too short", func() [][]byte {
			b := plain(fastPeer, fastLocal, "shortlen")
			u := header.UDP(b[header.IPv4MinimumSize:])
			u.SetLength(u.Length() - 2)
			u.SetChecksum(0)
			return [][]byte{b}
		}},
		{"IPv4 options", func() [][]byte { return [][]byte{withIPOptions(plain(fastPeer, fastLocal, "options"))} }},
		{"fragments", func() [][]byte {
			return fragments(plain(fastPeer, fastLocal, "fragmented datagram, more than one fragment of eight bytes"))
		}},
		{"own source", func() [][]byte { return [][]byte{plain(netip.MustParseAddrPort("10.0.0.1:7000"), fastLocal, "own")} }},
		{"subnet broadcast source", func() [][]byte {
			return [][]byte{plain(netip.MustParseAddrPort("10.0.0.255:7000"), fastLocal, "bcastsrc")}
		}},
		{"loopback source", func() [][]byte { return [][]byte{plain(netip.MustParseAddrPort("127.0.0.1:7000"), fastLocal, "lo")} }},
		{"multicast source", func() [][]byte { return [][]byte{plain(netip.MustParseAddrPort("224.0.0.1:7000"), fastLocal, "mc")} }},
		{"to subnet broadcast", func() [][]byte {
			return [][]byte{plain(fastPeer, netip.MustParseAddrPort("10.0.0.255:5000"), "tobcast")}
		}},
		{"to another address", func() [][]byte { return [][]byte{plain(fastPeer, netip.MustParseAddrPort("10.0.0.9:5000"), "other")} }},
		{"unbound port", func() [][]byte { return [][]byte{plain(fastPeer, netip.MustParseAddrPort("10.0.0.1:5999"), "noport")} }},
		{"connected, from its peer", func() [][]byte { return [][]byte{plain(fastPeer, fastConnLoc, "frompeer")} }},
		{"connected, from a stranger", func() [][]byte { return [][]byte{plain(fastStranger, fastConnLoc, "stranger")} }},
	}
}

// withIPOptions returns b with four bytes of IPv4 options (NOPs and an
// end of list) in its header.
func withIPOptions(b []byte) []byte {
	out := make([]byte, len(b)+4)
	copy(out, b[:header.IPv4MinimumSize])
	copy(out[header.IPv4MinimumSize:], []byte{1, 1, 1, 0})
	copy(out[header.IPv4MinimumSize+4:], b[header.IPv4MinimumSize:])
	ip := header.IPv4(out)
	ip.SetHeaderLength(header.IPv4MinimumSize + 4)
	ip.SetTotalLength(uint16(len(out)))
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	return out
}

// fragments splits the IPv4 packet b into two fragments.
func fragments(b []byte) [][]byte {
	l4 := b[header.IPv4MinimumSize:]
	first := 16 // bytes of l4 in the first fragment, a multiple of 8
	src, dst := header.IPv4(b).SourceAddress(), header.IPv4(b).DestinationAddress()
	frag := func(part []byte, offset uint16, more bool) []byte {
		out := make([]byte, header.IPv4MinimumSize+len(part))
		var flags uint8
		if more {
			flags = header.IPv4FlagMoreFragments
		}
		ip := header.IPv4(out)
		ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(out)), ID: 77, Flags: flags, FragmentOffset: offset,
			TTL: 64, Protocol: uint8(header.UDPProtocolNumber), SrcAddr: src, DstAddr: dst})
		ip.SetChecksum(^ip.CalculateChecksum())
		copy(out[header.IPv4MinimumSize:], part)
		return out
	}
	return [][]byte{frag(l4[:first], 0, true), frag(l4[first:], uint16(first), false)}
}

// Every inbound datagram is received, or dropped and counted, exactly as
// gVisor's own receive path does, whichever path the link gives it: the
// same packets injected into a stack with the fast path and one without
// (ReceiveThroughGVisor) give the same datagrams, from the same sources,
// in the same order, and the same counters. After each packet a plain
// datagram follows, so a packet that was dropped shows as that datagram
// coming first, and the order of the two paths' datagrams is checked too.
func TestUDPFastPathAsGVisor(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	type outcome struct {
		got   []string
		stats Stats
	}
	run := func(viaGVisor bool) map[string]outcome {
		w := newFastWire(t, viaGVisor)
		h := do(t, w.ch, UDPBind{Local: fastLocal}).(UDPBound).Handle
		hc := do(t, w.ch, UDPBind{Local: fastConnLoc}).(UDPBound).Handle
		if _, err := w.ch.Request(context.Background(), hc, UDPConnect{Remote: fastPeer}); err != nil {
			t.Fatal(err)
		}
		out := make(map[string]outcome)
		for i, m := range fastMutations() {
			before := w.ns.Stats()
			w.inject(t, m.make()...)
			end := fmt.Sprintf("end %d", i)
			w.inject(t, udpDatagram(fastPeer, fastLocal, []byte(end)), udpDatagram(fastPeer, fastConnLoc, []byte(end)))
			var o outcome
			for _, hh := range []Handle{h, hc} {
				for {
					got, from := w.recv(t, hh)
					if got == end {
						break
					}
					o.got = append(o.got, fmt.Sprintf("%s from %v", got, from))
				}
			}
			after := w.ns.Stats()
			o.stats = Stats{
				IPMalformedIn:          after.IPMalformedIn - before.IPMalformedIn,
				IPInvalidSourceIn:      after.IPInvalidSourceIn - before.IPInvalidSourceIn,
				IPInvalidDestinationIn: after.IPInvalidDestinationIn - before.IPInvalidDestinationIn,
				UDPPacketsIn:           after.UDPPacketsIn - before.UDPPacketsIn,
				UDPRecvErrors:          after.UDPRecvErrors - before.UDPRecvErrors,
				UDPUnknownPortIn:       after.UDPUnknownPortIn - before.UDPUnknownPortIn,
				UDPChecksumErrors:      after.UDPChecksumErrors - before.UDPChecksumErrors,
				UDPQueueDrops:          after.UDPQueueDrops - before.UDPQueueDrops,
			}
			out[m.name] = o
		}
		return out
	}
	fast, ref := run(false), run(true)
	for _, m := range fastMutations() {
		f, r := fast[m.name], ref[m.name]
		if fmt.Sprint(f.got) != fmt.Sprint(r.got) {
			t.Errorf("%s: received %q, gVisor's path %q", m.name, f.got, r.got)
		}
		if f.stats != r.stats {
			t.Errorf("%s: counters %+v, gVisor's path %+v", m.name, f.stats, r.stats)
		}
	}
	if got := fast["plain"].got; len(got) != 1 || got[0] != "plain from "+fastPeer.String() {
		t.Errorf("plain datagram: received %q", got)
	}
}

// A plain datagram takes the fast path (gVisor's endpoint never holds it)
// and one gVisor must see (a fragmented one) does not, and a socket
// receiving both, however they interleave and however many wait, reads
// them in the order they arrived: also past keptInGVisor datagrams held by
// gVisor, when the engine moves them to the socket's queue.
func TestUDPFastPathKeepsOrder(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	w := newFastWire(t, false)
	h := do(t, w.ch, UDPBind{Local: fastLocal}).(UDPBound).Handle
	const n = 3*keptInGVisor + 30
	var want []string
	for i := range n {
		msg := fmt.Sprintf("datagram %d, long enough to be split in two fragments", i)
		want = append(want, msg)
		pkt := udpDatagram(fastPeer, fastLocal, []byte(msg))
		if i%3 == 1 {
			w.inject(t, fragments(pkt)...)
		} else {
			w.inject(t, pkt)
		}
	}
	for i := range n {
		if got, _ := w.recv(t, h); got != want[i] {
			t.Fatalf("datagram %d: %q, want %q", i, got, want[i])
		}
	}
	// The replies above order this after the engine's last change of
	// the table.
	sock, err := w.ns.tab.get(h)
	if err != nil {
		t.Fatal(err)
	}
	if got := sock.ep.Stats().(*tcpip.TransportEndpointStats).PacketsReceived.Value(); got != (n+1)/3 {
		t.Errorf("gVisor's endpoint received %d datagrams, want the %d fragmented ones only", got, (n+1)/3)
	}
}

package core_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// wireStack is a running stack at 10.0.0.1/24 and fd00::1/64 whose
// packets come out of a pipe (a PipeDev without offloads: whole,
// checksummed packets).
type wireStack struct {
	ns *core.Netstack
	ch core.Channel
	p  core.Pipe
}

func newWireStack(tb testing.TB) *wireStack {
	tb.Helper()
	return wireStackOf(tb, testnet.Start(tb, core.Config{Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64"),
	}}))
}

// newGVisorWireStack is a wireStack whose datagrams all go out through
// gVisor's endpoint (no route cache): the reference packets.
func newGVisorWireStack(tb testing.TB) *wireStack {
	tb.Helper()
	ns := testnet.Start(tb, core.Config{Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64"),
	}})
	core.SendThroughGVisor(ns)
	return wireStackOf(tb, ns)
}

// wireStackOf attaches ns's pipe.
func wireStackOf(tb testing.TB, ns *core.Netstack) *wireStack {
	tb.Helper()
	p := core.NewPipe(0)
	if err := ns.AttachDevice(&core.PipeDev{End: p.A, Medium: core.MediumIP, MTU: 1500}); err != nil {
		tb.Fatal(err)
	}
	return &wireStack{ns: ns, ch: ns.CommandChannel(), p: p}
}

// next returns the next packet the stack sent.
func (w *wireStack) next(tb testing.TB) []byte {
	tb.Helper()
	pkt, err := w.p.B.Recv(testCtx(tb))
	if err != nil {
		tb.Fatalf("no packet on the pipe: %v", err)
	}
	return pkt
}

// udpOf returns pkt's addresses and UDP header and payload, checking its
// UDP checksum.
func udpOf(tb testing.TB, pkt []byte) (src, dst tcpip.Address, u header.UDP) {
	tb.Helper()
	var l4 []byte
	if pkt[0]>>4 == 4 {
		ip := header.IPv4(pkt)
		src, dst, l4 = ip.SourceAddress(), ip.DestinationAddress(), ip.Payload()
	} else {
		ip := header.IPv6(pkt)
		src, dst, l4 = ip.SourceAddress(), ip.DestinationAddress(), ip.Payload()
	}
	u = header.UDP(l4)
	if int(u.Length()) != len(l4) {
		tb.Fatalf("UDP length %d, packet has %d", u.Length(), len(l4))
	}
	if !u.IsChecksumValid(src, dst, checksum.Checksum(u.Payload(), 0)) {
		tb.Fatalf("UDP checksum %#04x is wrong (%x)", u.Checksum(), pkt)
	}
	return src, dst, u
}

// sameNetworkHeader fails unless got and want (a packet gVisor's endpoint
// sent) agree in every network header field a sender chooses: version,
// TOS or traffic class, DF, TTL or hop limit, protocol and addresses.
func sameNetworkHeader(tb testing.TB, got, want []byte) {
	tb.Helper()
	if got[0]>>4 == 4 {
		g, w := header.IPv4(got), header.IPv4(want)
		gTOS, _ := g.TOS()
		wTOS, _ := w.TOS()
		if g.HeaderLength() != w.HeaderLength() || gTOS != wTOS || g.Flags() != w.Flags() || g.TTL() != w.TTL() ||
			g.Protocol() != w.Protocol() || g.SourceAddress() != w.SourceAddress() || g.DestinationAddress() != w.DestinationAddress() {
			tb.Fatalf("IPv4 header %x, want the fields of %x", got[:20], want[:20])
		}
		return
	}
	g, w := header.IPv6(got), header.IPv6(want)
	gTC, _ := g.TOS()
	wTC, _ := w.TOS()
	if gTC != wTC || g.HopLimit() != w.HopLimit() || g.NextHeader() != w.NextHeader() ||
		g.SourceAddress() != w.SourceAddress() || g.DestinationAddress() != w.DestinationAddress() {
		tb.Fatalf("IPv6 header %x, want the fields of %x", got[:40], want[:40])
	}
}

// Unconnected and connected sockets' datagrams (sent through their cached
// routes) look on the wire as gVisor's own send makes them, over IPv4 and
// IPv6: the network header fields of a datagram gVisor's endpoint sends to
// the same peer (on a stack that sends through it alone), the socket's port
// as the source, a valid checksum, the bytes sent; the stack counts them as
// sent.
func TestUDPCachedSendsAsGVisor(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct{ local, peer string }{
		{"0.0.0.0:0", "10.0.0.2:9"},
		{"10.0.0.1:0", "10.0.0.2:9"},
		{"[::]:0", "[fd00::2]:9"},
	} {
		t.Run(tc.local, func(t *testing.T) {
			peer, local := netip.MustParseAddrPort(tc.peer), netip.MustParseAddrPort(tc.local)
			g := newGVisorWireStack(t)
			ref := do[core.UDPBound](t, g.ch, core.NoHandle, core.UDPBind{Local: local})
			do[core.Response](t, g.ch, ref.Handle, core.UDPConnect{Remote: peer})
			do[core.UDPSent](t, g.ch, ref.Handle, core.UDPSend{Buf: []byte("gvisor")})
			want := g.next(t)
			_, _, wu := udpOf(t, want)

			w := newWireStack(t)
			un := do[core.UDPBound](t, w.ch, core.NoHandle, core.UDPBind{Local: local})
			conn := do[core.UDPBound](t, w.ch, core.NoHandle, core.UDPBind{Local: local})
			do[core.Response](t, w.ch, conn.Handle, core.UDPConnect{Remote: peer})
			before := do[core.Stats](t, w.ch, core.NoHandle, core.GetStats{}).UDPPacketsOut
			for i := range 6 { // each socket's first fills its cache, the others use it
				msg, sock, to := []byte{'n', 'c', byte(i)}, un, peer
				if i%2 == 1 {
					sock, to = conn, netip.AddrPort{}
				}
				do[core.UDPSent](t, w.ch, sock.Handle, core.UDPSend{To: to, Buf: msg})
				got := w.next(t)
				sameNetworkHeader(t, got, want)
				_, _, u := udpOf(t, got)
				if u.SourcePort() != sock.Local.Port() || u.DestinationPort() != wu.DestinationPort() || !bytes.Equal(u.Payload(), msg) {
					t.Fatalf("datagram %d: ports %d→%d, payload %q; want %d→%d, %q",
						i, u.SourcePort(), u.DestinationPort(), u.Payload(), sock.Local.Port(), wu.DestinationPort(), msg)
				}
			}
			if got := do[core.Stats](t, w.ch, core.NoHandle, core.GetStats{}).UDPPacketsOut - before; got != 6 {
				t.Fatalf("UDPPacketsOut grew by %d, want 6", got)
			}
		})
	}
}

// Sends to destinations the cache does not serve keep gVisor's answers: a
// broadcast is refused (netcore sets no SO_BROADCAST) and nothing goes
// out, a dual-stack socket sends to an IPv4 peer as IPv4 (connected or
// not), and a datagram
// to a cached peer still goes after them.
func TestUDPUnconnectedSendErrors(t *testing.T) {
	leakCheck(t)
	w := newWireStack(t)
	un := do[core.UDPBound](t, w.ch, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("0.0.0.0:0")})
	peer := netip.MustParseAddrPort("10.0.0.2:9")
	do[core.UDPSent](t, w.ch, un.Handle, core.UDPSend{To: peer, Buf: []byte("a")})
	w.next(t)
	for _, to := range []string{"255.255.255.255:9", "10.0.0.255:9"} {
		_, err := try(w.ch, un.Handle, core.UDPSend{To: netip.MustParseAddrPort(to), Buf: []byte("b")})
		if err == nil {
			t.Fatalf("send to %s: no error, want broadcast refused", to)
		}
	}
	// A dual-stack socket's IPv4 peer is sent to as IPv4, by gVisor.
	v6 := do[core.UDPBound](t, w.ch, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("[::]:0")})
	do[core.UDPSent](t, w.ch, v6.Handle, core.UDPSend{To: peer, Buf: []byte("c")})
	if pkt := w.next(t); pkt[0]>>4 != 4 {
		t.Fatalf("a dual-stack socket sent IPv%d to an IPv4 peer", pkt[0]>>4)
	}
	// So does a dual-stack socket connected to one (a v4-mapped peer, which
	// the cache leaves to gVisor).
	v6c := do[core.UDPBound](t, w.ch, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("[::]:0")})
	do[core.Response](t, w.ch, v6c.Handle, core.UDPConnect{Remote: peer})
	do[core.UDPSent](t, w.ch, v6c.Handle, core.UDPSend{Buf: []byte("c2")})
	if pkt := w.next(t); pkt[0]>>4 != 4 {
		t.Fatalf("a connected dual-stack socket sent IPv%d to an IPv4 peer", pkt[0]>>4)
	} else if _, _, u := udpOf(t, pkt); string(u.Payload()) != "c2" || u.SourcePort() != v6c.Local.Port() {
		t.Fatalf("payload %q from port %d, want %q from %d", u.Payload(), u.SourcePort(), "c2", v6c.Local.Port())
	}
	do[core.UDPSent](t, w.ch, un.Handle, core.UDPSend{To: peer, Buf: []byte("d")})
	if _, _, u := udpOf(t, w.next(t)); string(u.Payload()) != "d" {
		t.Fatalf("payload %q, want %q", u.Payload(), "d")
	}
}

// When the stack's addresses change, an unconnected socket bound to any
// address sends from the new one: its cached route (with the old source)
// is not used again.
func TestUDPUnconnectedSendsFollowAddrs(t *testing.T) {
	leakCheck(t)
	w := newWireStack(t)
	un := do[core.UDPBound](t, w.ch, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("0.0.0.0:0")})
	peer := netip.MustParseAddrPort("10.0.0.2:9")
	for _, src := range []string{"10.0.0.1", "10.0.0.7", "10.0.0.1"} {
		if src != "10.0.0.1" || w.ns.Stats().UDPPacketsOut > 0 {
			do[core.Response](t, w.ch, core.NoHandle, core.SetStackAddrs{Addrs: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(src), 24)}})
		}
		for range 2 {
			do[core.UDPSent](t, w.ch, un.Handle, core.UDPSend{To: peer, Buf: []byte(src)})
			got, _, _ := udpOf(t, w.next(t))
			if want := tcpip.AddrFrom4(netip.MustParseAddr(src).As4()); got != want {
				t.Fatalf("sent from %v, want %v", got, want)
			}
		}
	}
}

// testCtx is a context that ends with the test (a hang guard, not a
// timing).
func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	return ctx
}

// A connected socket's sends take its cached route, and gVisor's answers
// stay: an ICMP port unreachable from the peer is reported once, as
// ErrConnRefused, by the next send (as gVisor's own Write does), and the
// send after it goes.
func TestUDPConnectedSendReportsRefused(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a := p.A.CommandChannel()
	conn := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	do[core.Response](t, a, conn.Handle, core.UDPConnect{Remote: netipB(9)}) // nobody listens on B:9
	var err error
	sent := 0
	for ; sent < 1000 && err == nil; sent++ { // the ICMP error comes back after the first
		_, err = try(a, conn.Handle, core.UDPSend{Buf: []byte("anyone?")})
	}
	if !errors.Is(err, core.ErrConnRefused) {
		t.Fatalf("after %d sends: err = %v, want %v", sent, err, core.ErrConnRefused)
	}
	if sent < 2 {
		t.Fatalf("the first send failed (%v): it should go, the refusal comes after it", err)
	}
	if _, err := try(a, conn.Handle, core.UDPSend{Buf: []byte("again")}); err != nil {
		t.Fatalf("the send after the reported error: %v, want none (reported once)", err)
	}
	if n := p.A.Stats().UDPPacketsOut; n != uint64(sent) {
		t.Fatalf("UDPPacketsOut = %d, want %d (every send but the refused one)", n, sent)
	}
}

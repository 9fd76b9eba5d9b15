package core_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Ethertypes and offsets of the frames these tests build and read.
const (
	etherARP  = 0x0806
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
)

var (
	peerMAC   = core.MustParseMAC("02:00:00:00:00:99")
	broadcast = core.MustParseMAC("ff:ff:ff:ff:ff:ff")
)

func etherType(f []byte) uint16 { return binary.BigEndian.Uint16(f[12:14]) }

// frame builds an Ethernet II frame.
func frame(dst, src core.MAC, typ uint16, payload []byte) []byte {
	f := append(append(dst[:len(dst):len(dst)], src[:]...), byte(typ>>8), byte(typ))
	return append(f, payload...)
}

// arpPacket builds an ARP IPv4-over-Ethernet packet.
func arpPacket(op header.ARPOp, sha core.MAC, spa netip.Addr, tha core.MAC, tpa netip.Addr) []byte {
	p := header.ARP(make([]byte, header.ARPSize))
	p.SetIPv4OverEthernet()
	p.SetOp(op)
	copy(p.HardwareAddressSender(), sha[:])
	copy(p.ProtocolAddressSender(), spa.AsSlice())
	copy(p.HardwareAddressTarget(), tha[:])
	copy(p.ProtocolAddressTarget(), tpa.AsSlice())
	return p
}

// pollFor drives ns with PollDeviceIO until the pipe end has a frame that
// keep accepts, and returns it (frames it rejects are skipped). gVisor
// sends what waited for address resolution from a timer goroutine, so the
// frame may need a few polls; the bound is a hang guard, not a timing.
func pollFor(t *testing.T, ns *core.Netstack, dev *core.PipeDev, end *core.PipeEnd, keep func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ns.PollDeviceIO(dev)
		for {
			f, ok := end.TryRecv()
			if !ok {
				break
			}
			if keep(f) {
				return f
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no matching frame on the pipe")
	return nil
}

// TestSeedExampleEthernet is the seed's example with Medium:
// core.MediumEthernet: the first frame out is an ARP request for the
// destination; once the test answers it, the UDP packet follows as an
// Ethernet frame of 14+20+8+5 bytes, to the MAC the answer gave.
func TestSeedExampleEthernet(t *testing.T) {
	leakCheck(t)
	ctx := context.Background()
	stack, err := core.New(core.Config{Medium: core.MediumEthernet})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close()
	channel := stack.CommandChannel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2 {
			cmd, err := stack.WaitForCmd(0)
			if err != nil {
				t.Error(err)
				return
			}
			stack.ProcessOneCmd(cmd)
		}
	}()
	endpoint := netip.MustParseAddrPort("127.0.0.1:1000")
	resp, err := channel.Request(ctx, core.NoHandle, core.UDPBind{Local: endpoint})
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	bound := resp.(core.UDPBound)
	dst := netip.MustParseAddrPort("1.2.3.4:80")
	if err := channel.RequestNonblocking(bound.Handle, core.UDPSend{To: dst, Buf: []byte("hello")}); err != nil {
		t.Fatalf("send: %v", err)
	}
	<-done

	pipe := core.NewPipe(0)
	dev := &core.PipeDev{End: pipe.A, Medium: core.MediumEthernet, MTU: 1500}
	req := pollFor(t, stack, dev, pipe.B, func([]byte) bool { return true })
	if etherType(req) != etherARP || len(req) != 14+header.ARPSize {
		t.Fatalf("first frame %x: want a %d-byte ARP frame", req, 14+header.ARPSize)
	}
	arp := header.ARP(req[14:])
	own := core.MAC(req[6:12])
	if core.MAC(req[:6]) != broadcast || arp.Op() != header.ARPRequest ||
		!bytes.Equal(arp.ProtocolAddressTarget(), dst.Addr().AsSlice()) || core.MAC(arp.HardwareAddressSender()) != own {
		t.Fatalf("ARP frame %x: want a broadcast request for %v from %v", req, dst.Addr(), own)
	}
	if own.IsGroup() || own[0]&2 == 0 {
		t.Errorf("stack MAC %v: want a locally administered unicast address", own)
	}
	sender, _ := netip.AddrFromSlice(arp.ProtocolAddressSender())
	reply := arpPacket(header.ARPReply, peerMAC, dst.Addr(), own, sender)
	if err := pipe.B.Send(frame(own, peerMAC, etherARP, reply)); err != nil {
		t.Fatal(err)
	}
	pkt := pollFor(t, stack, dev, pipe.B, func(f []byte) bool { return etherType(f) != etherARP })
	if got, want := len(pkt), 14+20+8+len("hello"); got != want {
		t.Errorf("len(frame) = %d, want %d", got, want)
	}
	if core.MAC(pkt[:6]) != peerMAC || core.MAC(pkt[6:12]) != own || etherType(pkt) != etherIPv4 {
		t.Errorf("frame header %x: want %v -> %v, IPv4", pkt[:14], own, peerMAC)
	}
	if !bytes.HasSuffix(pkt, []byte("hello")) {
		t.Errorf("frame %x does not end with hello", pkt)
	}
}

// TestEthernetJoinPipe runs two Ethernet stacks on JoinPipe: each learns
// the other's MAC by ARP and NDP, and TCP (SHA-256 checked) and UDP cross
// over IPv4 and IPv6.
func TestEthernetJoinPipe(t *testing.T) {
	leakCheck(t)
	macA, macB := core.MustParseMAC("02:00:00:00:00:0a"), core.MustParseMAC("02:00:00:00:00:0b")
	p := testnet.NewPair(t, testnet.WithEthernet(), func(a, b *core.Config) { a.MAC, b.MAC = macA, macB })
	size := 64 << 20
	if testing.Short() {
		size = 4 << 20
	}
	for _, tc := range []struct {
		name string
		dst  netip.Addr
		size int
	}{{"IPv4", testnet.AddrB, size}, {"IPv6", testnet.Addr6B, size / 4}} {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv := tcpPair(t, p, tc.dst)
			data := randomBytes(tc.size)
			go sendAll(t, p.A.CommandChannel(), cli, data, 1<<20)
			sum, n := recvAll(t, p.B.CommandChannel(), srv)
			if n != tc.size || sum != sha256.Sum256(data) {
				t.Fatalf("received %d bytes sha %x, want %d bytes sha %x", n, sum[:8], tc.size, sha256.Sum256(data))
			}
			udpRoundTrip(t, p, tc.dst)
			if got := neighbor(p.A, tc.dst); got.MAC != macB || got.State != core.NeighborReachable {
				t.Errorf("A's neighbour %v = %v %v, want %v REACHABLE", tc.dst, got.MAC, got.State, macB)
			}
		})
	}
	if st := p.B.Stats(); st.FramesOtherHost+st.FramesRunt+st.FramesOversized+st.FramesUnknownType != 0 {
		t.Errorf("B dropped frames: %+v", st)
	}
}

// neighbor returns ns's neighbour entry for a (zero if none).
func neighbor(ns *core.Netstack, a netip.Addr) core.Neighbor {
	for _, n := range ns.Neighbors() {
		if n.Addr == a {
			return n
		}
	}
	return core.Neighbor{}
}

// udpRoundTrip sends one datagram from A to dst on B and checks it.
func udpRoundTrip(t *testing.T, p testnet.Pair, dst netip.Addr) {
	t.Helper()
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	srv := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(dst, 0)})
	any := netip.IPv4Unspecified()
	if dst.Is6() {
		any = netip.IPv6Unspecified()
	}
	cli := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(any, 0)})
	msg := []byte("over ethernet " + dst.String())
	do[core.UDPSent](t, a, cli.Handle, core.UDPSend{To: srv.Local, Buf: msg})
	buf := make([]byte, 100)
	got := do[core.UDPRecvd](t, b, srv.Handle, core.UDPRecv{Buf: buf})
	if !bytes.Equal(buf[:got.N], msg) {
		t.Fatalf("received %q, want %q", buf[:got.N], msg)
	}
	do[core.OK](t, a, cli.Handle, core.CloseSocket{})
	do[core.OK](t, b, srv.Handle, core.CloseSocket{})
}

// TestEthernetMediumMismatch: a device whose medium is not the stack's is
// refused with ErrMediumMismatch (also ErrInvalid, EINVAL), by AttachDevice
// and JoinPipe, and PollDeviceIO panics with it.
func TestEthernetMediumMismatch(t *testing.T) {
	leakCheck(t)
	eth := testnet.Start(t, core.Config{Medium: core.MediumEthernet})
	ip := testnet.Start(t, core.Config{})
	check := func(what string, err error) {
		t.Helper()
		for _, want := range []error{core.ErrMediumMismatch, core.ErrInvalid, syscall.EINVAL} {
			if !errors.Is(err, want) {
				t.Errorf("%s: %v, want an error matching %v", what, err, want)
			}
		}
	}
	pipe := core.NewPipe(0)
	check("AttachDevice", eth.AttachDevice(&core.PipeDev{End: pipe.A, Medium: core.MediumIP}))
	check("JoinPipe", core.JoinPipe(ip, eth, 0))
	func() {
		defer func() {
			err, _ := recover().(error)
			check("PollDeviceIO", err)
		}()
		eth.PollDeviceIO(&core.PipeDev{End: pipe.A})
	}()
	pipe.A.Close()
	if _, err := core.New(core.Config{Medium: core.MediumEthernet, MAC: core.MustParseMAC("01:00:5e:00:00:01")}); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("New with a multicast MAC: %v, want ErrInvalid", err)
	}
}

// ethStack is an Ethernet stack at 10.0.0.1/24 driven by hand through a
// pipe, with MAC ethOwn.
type ethStack struct {
	ns  *core.Netstack
	ch  core.Channel
	p   core.Pipe
	dev *core.PipeDev
}

var (
	ethOwn  = core.MustParseMAC("02:00:00:00:00:01")
	ethAddr = netip.MustParseAddr("10.0.0.1")
)

func newEthStack(tb testing.TB, cfg core.Config) *ethStack {
	tb.Helper()
	cfg.Medium, cfg.MAC = core.MediumEthernet, ethOwn
	cfg.Addrs = []netip.Prefix{netip.PrefixFrom(ethAddr, 24), netip.MustParsePrefix("fd00::1/64")}
	ns, err := core.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ns.Close() })
	p := core.NewPipe(0)
	return &ethStack{ns: ns, ch: ns.CommandChannel(), p: p, dev: &core.PipeDev{End: p.A, Medium: core.MediumEthernet}}
}

// send hands frames to the stack and polls it once.
func (s *ethStack) send(tb testing.TB, frames ...[]byte) {
	tb.Helper()
	for _, f := range frames {
		if err := s.p.B.Send(f); err != nil {
			tb.Fatal(err)
		}
	}
	s.ns.PollDeviceIO(s.dev)
}

// arpRequestFrom is a broadcast ARP request for the stack's address from
// (mac, ip).
func arpRequestFrom(mac core.MAC, ip netip.Addr) []byte {
	return frame(broadcast, mac, etherARP, arpPacket(header.ARPRequest, mac, ip, core.MAC{}, ethAddr))
}

// TestEthernetBadFrames: frames for another MAC, runt and oversized frames
// and unknown ethertypes are dropped and counted, each under its own
// counter; an ARP request for the stack's address after them is answered,
// unicast, with the stack's MAC.
func TestEthernetBadFrames(t *testing.T) {
	leakCheck(t)
	s := newEthStack(t, core.Config{})
	other := core.MustParseMAC("02:00:00:00:00:77")
	ip := rawPacket(4, 17, []byte{0, 53, 0, 53, 0, 8, 0, 0})
	s.send(t,
		frame(other, peerMAC, etherIPv4, ip), // another host's
		frame(other, peerMAC, etherARP, arpPacket(header.ARPReply, // another host's ARP reply
			peerMAC, netip.MustParseAddr("10.0.0.9"), other, netip.MustParseAddr("10.0.0.8"))),
		ethOwn[:5], // runt: not even a header
		frame(ethOwn, peerMAC, etherIPv4, nil)[:13],           // runt
		frame(ethOwn, peerMAC, etherIPv4, make([]byte, 1501)), // oversized
		frame(ethOwn, peerMAC, 0x88cc, ip),                    // LLDP
		frame(ethOwn, peerMAC, 0x8100, ip),                    // VLAN-tagged
	)
	st := s.ns.Stats()
	if st.FramesOtherHost != 2 || st.FramesRunt != 2 || st.FramesOversized != 1 || st.FramesUnknownType != 2 {
		t.Errorf("other host %d, runt %d, oversized %d, unknown type %d: want 2, 2, 1, 2",
			st.FramesOtherHost, st.FramesRunt, st.FramesOversized, st.FramesUnknownType)
	}
	if st.PacketsIn != 0 {
		t.Errorf("PacketsIn = %d, want 0", st.PacketsIn)
	}
	peerIP := netip.MustParseAddr("10.0.0.2")
	s.send(t, arpRequestFrom(peerMAC, peerIP))
	reply := pollFor(t, s.ns, s.dev, s.p.B, func([]byte) bool { return true })
	arp := header.ARP(reply[14:])
	if core.MAC(reply[:6]) != peerMAC || core.MAC(reply[6:12]) != ethOwn || etherType(reply) != etherARP ||
		arp.Op() != header.ARPReply || core.MAC(arp.HardwareAddressSender()) != ethOwn ||
		!bytes.Equal(arp.ProtocolAddressSender(), ethAddr.AsSlice()) || !bytes.Equal(arp.ProtocolAddressTarget(), peerIP.AsSlice()) {
		t.Fatalf("reply %x: want an ARP reply %v is-at %v, to %v", reply, ethAddr, ethOwn, peerMAC)
	}
}

// TestEthernetForwardKeepsOtherHosts: in forwarding mode the filter lets
// another host's frame through to the stack (it stands for every host of
// its prefixes), where a plain stack drops and counts it.
func TestEthernetForwardKeepsOtherHosts(t *testing.T) {
	leakCheck(t)
	s := newEthStack(t, core.Config{Forward: &core.ForwardConfig{}})
	other := core.MustParseMAC("02:00:00:00:00:77")
	s.send(t, frame(other, peerMAC, etherIPv4, rawPacket(4, 17, []byte{0, 53, 0, 53, 0, 8, 0, 0})))
	if st := s.ns.Stats(); st.FramesOtherHost != 0 || st.PacketsIn != 1 {
		t.Fatalf("forwarding stack: other host %d, PacketsIn %d; want 0 and 1", st.FramesOtherHost, st.PacketsIn)
	}
}

// TestEthernetNeighborFlood: ARP requests from many more addresses than
// the neighbour cache holds are all answered, and the cache stays within
// core.MaxNeighbors.
func TestEthernetNeighborFlood(t *testing.T) {
	leakCheck(t)
	s := newEthStack(t, core.Config{Addrs: nil})
	const flood = 4 * core.MaxNeighbors
	replies := 0
	for i := range flood {
		mac := core.MAC{2, 0, 0, 1, byte(i >> 8), byte(i)}
		src := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if err := s.p.B.Send(arpRequestFrom(mac, src)); err != nil {
			t.Fatal(err)
		}
		if i%32 == 31 {
			s.ns.PollDeviceIO(s.dev)
			replies += drainFrames(s.p.B, etherARP)
		}
	}
	s.ns.PollDeviceIO(s.dev)
	replies += drainFrames(s.p.B, etherARP)
	if replies != flood {
		t.Errorf("%d ARP replies, want %d", replies, flood)
	}
	t.Logf("%d neighbour entries after %d requests", len(s.ns.Neighbors()), flood)
	if n := len(s.ns.Neighbors()); n == 0 || n > core.MaxNeighbors {
		t.Errorf("%d neighbour entries, want 1 to %d", n, core.MaxNeighbors)
	}
}

// drainFrames takes every frame waiting at end and counts those of
// ethertype typ.
func drainFrames(end *core.PipeEnd, typ uint16) int {
	n := 0
	for {
		f, ok := end.TryRecv()
		if !ok {
			return n
		}
		if len(f) >= 14 && etherType(f) == typ {
			n++
		}
	}
}

// TestEthernetStaticNeighbor: a static neighbour (Config.StaticNeighbors)
// is used without ARP, shows as PERMANENT, and bad entries are refused.
func TestEthernetStaticNeighbor(t *testing.T) {
	leakCheck(t)
	peerIP := netip.MustParseAddr("10.0.0.2")
	s := newEthStack(t, core.Config{StaticNeighbors: []core.Neighbor{{Addr: peerIP, MAC: peerMAC}}})
	if got := neighbor(s.ns, peerIP); got.MAC != peerMAC || got.State != core.NeighborStatic || got.State.String() != "PERMANENT" {
		t.Fatalf("neighbour %v = %v %v, want %v PERMANENT", peerIP, got.MAC, got.State, peerMAC)
	}
	go func() {
		r, err := s.ns.WaitForCmd(0)
		if err == nil {
			s.ns.ProcessOneCmd(r)
		}
	}()
	resp, err := s.ch.Request(context.Background(), core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(ethAddr, 0)})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		r, err := s.ns.WaitForCmd(0)
		if err == nil {
			s.ns.ProcessOneCmd(r)
		}
	}()
	if _, err := s.ch.Request(context.Background(), resp.(core.UDPBound).Handle, core.UDPSend{To: netip.AddrPortFrom(peerIP, 9), Buf: []byte("static")}); err != nil {
		t.Fatal(err)
	}
	f := pollFor(t, s.ns, s.dev, s.p.B, func([]byte) bool { return true })
	if etherType(f) != etherIPv4 || core.MAC(f[:6]) != peerMAC || !bytes.HasSuffix(f, []byte("static")) {
		t.Fatalf("first frame %x: want the datagram to %v, no ARP", f, peerMAC)
	}
	for _, bad := range []core.Config{
		{Medium: core.MediumEthernet, StaticNeighbors: []core.Neighbor{{Addr: peerIP}}},
		{Medium: core.MediumEthernet, StaticNeighbors: []core.Neighbor{{MAC: peerMAC}}},
		{StaticNeighbors: []core.Neighbor{{Addr: peerIP, MAC: peerMAC}}},
	} {
		if _, err := core.New(bad); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("New(%+v): %v, want ErrInvalid", bad, err)
		}
	}
}

// FuzzInboundFrame feeds arbitrary bytes to an Ethernet stack as inbound
// frames; the stack must not panic, must count every frame it drops
// before gVisor, and must keep serving.
func FuzzInboundFrame(f *testing.F) {
	ip := rawPacket(4, 17, []byte{0, 53, 0, 53, 0, 8, 0, 0})
	f.Add([]byte{})
	f.Add(ethOwn[:5])
	f.Add(frame(ethOwn, peerMAC, etherIPv4, ip))
	f.Add(frame(core.MustParseMAC("02:00:00:00:00:77"), peerMAC, etherIPv4, ip))
	f.Add(frame(ethOwn, peerMAC, 0x88cc, ip))
	f.Add(frame(ethOwn, peerMAC, 0x8100, ip))
	f.Add(frame(ethOwn, peerMAC, etherIPv4, make([]byte, 1501)))
	f.Add(arpRequestFrom(peerMAC, netip.MustParseAddr("10.0.0.2")))
	f.Add(frame(broadcast, peerMAC, etherARP, []byte{0, 1, 8, 0, 6, 4}))
	f.Add(frame(ethOwn, peerMAC, etherIPv6, rawPacket(6, 58, []byte{135, 0, 0, 0})))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := newEthStack(t, core.Config{})
		s.send(t, b)
		st := s.ns.Stats()
		dropped := st.FramesOtherHost + st.FramesRunt + st.FramesOversized + st.FramesUnknownType
		if dropped+st.PacketsIn != 1 {
			t.Fatalf("frame %x: %d dropped + %d delivered, want 1", b, dropped, st.PacketsIn)
		}
		go func() {
			r, err := s.ns.WaitForCmd(time.Second)
			if err == nil {
				s.ns.ProcessOneCmd(r)
			}
		}()
		if _, err := s.ch.Request(context.Background(), core.NoHandle, core.Nop{}); err != nil {
			t.Fatalf("stack stopped serving: %v", err)
		}
	})
}

// neighborSolicitFrom is an NDP neighbour solicitation for the stack's
// IPv6 address fd00::1 from (mac, ip), with its source link-layer option.
func neighborSolicitFrom(mac core.MAC, ip netip.Addr) []byte {
	target := netip.MustParseAddr("fd00::1")
	icmp := header.ICMPv6(make([]byte, 32))
	icmp.SetType(header.ICMPv6NeighborSolicit)
	copy(icmp[8:24], target.AsSlice())
	icmp[24], icmp[25] = 1, 1 // source link-layer address, 8 bytes
	copy(icmp[26:32], mac[:])
	src, dst := addr(ip), addr(target)
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: icmp, Src: src, Dst: dst}))
	pkt := make([]byte, header.IPv6MinimumSize, header.IPv6MinimumSize+len(icmp))
	header.IPv6(pkt).Encode(&header.IPv6Fields{PayloadLength: uint16(len(icmp)), TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit: header.NDPHopLimit, SrcAddr: src, DstAddr: dst})
	return frame(ethOwn, mac, etherIPv6, append(pkt, icmp...))
}

// TestEthernetNDPFlood: neighbour solicitations from many more IPv6
// addresses than the cache holds are all answered with an advertisement,
// and the IPv6 cache stays within core.MaxNeighbors.
func TestEthernetNDPFlood(t *testing.T) {
	leakCheck(t)
	s := newEthStack(t, core.Config{})
	const flood = 4 * core.MaxNeighbors
	adverts := 0
	count := func() {
		s.ns.PollDeviceIO(s.dev)
		for {
			f, ok := s.p.B.TryRecv()
			if !ok {
				return
			}
			if etherType(f) == etherIPv6 && len(f) > 14+40 && f[14+40] == byte(header.ICMPv6NeighborAdvert) {
				adverts++
			}
		}
	}
	for i := range flood {
		mac := core.MAC{2, 0, 0, 2, byte(i >> 8), byte(i)}
		src := netip.AddrFrom16([16]byte{0xfd, 13: 1, 14: byte(i >> 8), 15: byte(i)})
		if err := s.p.B.Send(neighborSolicitFrom(mac, src)); err != nil {
			t.Fatal(err)
		}
		if i%32 == 31 {
			count()
		}
	}
	count()
	if adverts != flood {
		t.Errorf("%d neighbour advertisements, want %d", adverts, flood)
	}
	v6 := 0
	for _, n := range s.ns.Neighbors() {
		if n.Addr.Is6() {
			v6++
		}
	}
	t.Logf("%d IPv6 neighbour entries after %d solicitations", v6, flood)
	if v6 == 0 || v6 > core.MaxNeighbors {
		t.Errorf("%d IPv6 neighbour entries, want 1 to %d", v6, core.MaxNeighbors)
	}
}

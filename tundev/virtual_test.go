package tundev_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/tundev"
	"github.com/netcore-go/netcore/tundev/tundevtest"
	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

func bufs(n, size int) ([][]byte, []int) {
	b := make([][]byte, n)
	for i := range b {
		b[i] = make([]byte, size)
	}
	return b, make([]int, n)
}

func TestVirtualBothWays(t *testing.T) {
	v := tundev.NewVirtual(tundev.VirtualConfig{BatchSize: 4})
	defer v.Close()
	// stack → tun side, read at offset 16
	if n, err := v.WritePackets([][]byte{{0x45, 1}, {0x45, 2}, {0x45, 3}}); n != 3 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	b, sizes := bufs(4, 32)
	n, err := v.Read(b, sizes, 16)
	if n != 3 || err != nil || b[2][17] != 3 || sizes[2] != 2 {
		t.Fatalf("Read = %d, %v, third % x; want 3 packets", n, err, b[2][16:16+sizes[2]])
	}
	// tun side → stack, written from offset 16
	w := [][]byte{append(make([]byte, 16), 0x60, 7)}
	if n, err := v.Write(w, 16); n != 1 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	n, err = v.ReadPackets(b, sizes)
	if n != 1 || err != nil || sizes[0] != 2 || b[0][1] != 7 {
		t.Fatalf("ReadPackets = %d, %v, % x", n, err, b[0][:sizes[0]])
	}
}

func TestVirtualEventsAndClose(t *testing.T) {
	leakCheck(t)
	v := tundev.NewVirtual(tundev.VirtualConfig{QueueLen: 2, BatchSize: 1})
	if ev := <-v.Events(); ev != tun.EventUp {
		t.Fatalf("first event = %v, want EventUp", ev)
	}
	v.WritePackets([][]byte{{1}, {2}}) // the outbound queue is now full
	errs := make(chan error, 2)
	b, sizes := bufs(1, 10)
	go func() { _, err := v.ReadPackets(b, sizes); errs <- err }()
	go func() { _, err := v.WritePackets([][]byte{{3}}); errs <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := v.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, os.ErrClosed) || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked call after Close: %v, want os.ErrClosed and net.ErrClosed", err)
		}
	}
	if _, err := v.Read(b, sizes, 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close = %v", err)
	}
	if _, err := v.Write([][]byte{{1}}, 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	if err := v.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if _, ok := <-v.Events(); ok {
		t.Fatal("Events open after Close")
	}
}

func TestVirtualOversizedDropped(t *testing.T) {
	v := tundev.NewVirtual(tundev.VirtualConfig{})
	defer v.Close()
	v.WritePackets([][]byte{make([]byte, 100), {0x45}})
	b, sizes := bufs(2, 50)
	if n, err := v.Read(b, sizes, 0); n != 1 || err != nil || sizes[0] != 1 {
		t.Fatalf("Read = %d, %v, size %d; want the small packet only", n, err, sizes[0])
	}
	if s := v.Stats(); s.Oversized != 1 {
		t.Fatalf("Oversized = %d, want 1", s.Oversized)
	}
}

// TestVirtualCloseRace closes a Virtual while writers and readers on both
// sides are busy: under -race nothing may race, panic or stay blocked.
func TestVirtualCloseRace(t *testing.T) {
	leakCheck(t)
	for range 50 {
		v := tundev.NewVirtual(tundev.VirtualConfig{QueueLen: 8, BatchSize: 4})
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(4)
			go func() {
				defer wg.Done()
				loop(func() error { _, err := v.WritePackets([][]byte{{1}, {2}}); return err })
			}()
			go func() { defer wg.Done(); loop(func() error { _, err := v.Write([][]byte{{1}, {2}}, 0); return err }) }()
			go func() {
				defer wg.Done()
				b, s := bufs(4, 8)
				loop(func() error { _, err := v.Read(b, s, 0); return err })
			}()
			go func() {
				defer wg.Done()
				b, s := bufs(4, 8)
				loop(func() error { _, err := v.ReadPackets(b, s); return err })
			}()
		}
		time.Sleep(time.Millisecond)
		v.Close()
		wg.Wait()
	}
}

func loop(f func() error) {
	for f() == nil {
	}
}

// virtualPair is two stacks, each with a Virtual, joined by shuttles.
func virtualPair(tb testing.TB, mtu int) (a, b core.Channel) {
	return virtualPairBatch(tb, mtu, 0)
}

// virtualPairBatch is virtualPair with Virtuals of the given batch size
// (0: the default).
func virtualPairBatch(tb testing.TB, mtu, batch int) (a, b core.Channel) {
	tb.Helper()
	sa := testnet.Start(tb, core.Config{MTU: mtu, Addrs: []netip.Prefix{netip.PrefixFrom(wgAddrA, 24)}})
	sb := testnet.Start(tb, core.Config{MTU: mtu, Addrs: []netip.Prefix{netip.PrefixFrom(wgAddrB, 24)}})
	cfg := tundev.VirtualConfig{MTU: mtu, BatchSize: batch}
	va, vb := tundev.NewVirtual(cfg), tundev.NewVirtual(cfg)
	if err := errors.Join(sa.AttachDevice(va), sb.AttachDevice(vb)); err != nil {
		tb.Fatal(err)
	}
	wait := tundevtest.Join(va, vb)
	tb.Cleanup(func() { va.Close(); wait() }) // the join closes vb
	return sa.CommandChannel(), sb.CommandChannel()
}

func TestVirtualPairTCP(t *testing.T) {
	for _, batch := range []int{0, 3} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) { testVirtualPairTCP(t, batch) })
	}
}

// testVirtualPairTCP moves 8 MiB each way between two stacks on Virtuals
// of the given batch size (3: each 64 KiB super-segment is read out over
// many Reads).
func testVirtualPairTCP(t *testing.T, batch int) {
	leakCheck(t)
	a, b := virtualPairBatch(t, 1500, batch)
	ln := listenStack(t, a, netip.AddrPortFrom(wgAddrA, 80))
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dialStack(ctx, b, netip.AddrPortFrom(wgAddrA, 80))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-acc
	defer s.Close()
	bothWays(t, c, s, 8<<20)
}

// TestVirtualReadPacketsSwap checks core.SwapReader: packets come out in
// order without a copy (the stack gets the queue's slices) and the slices
// the stack handed in are reused for later packets.
func TestVirtualReadPacketsSwap(t *testing.T) {
	v := tundev.NewVirtual(tundev.VirtualConfig{BatchSize: 4, QueueLen: 2})
	defer v.Close()
	w := [][]byte{append(make([]byte, 16), 0x45, 1), append(make([]byte, 16), 0x45, 2, 2)}
	if n, err := v.Write(w, 16); n != 2 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	b, sizes := bufs(4, 64)
	mine := &b[0][0]
	n, err := v.ReadPacketsSwap(b, sizes)
	if n != 2 || err != nil || sizes[0] != 2 || sizes[1] != 3 || b[0][1] != 1 || b[1][2] != 2 {
		t.Fatalf("ReadPacketsSwap = %d, %v, sizes %v", n, err, sizes[:2])
	}
	if &b[0][0] == mine {
		t.Fatal("packet was copied into the caller's slice, not swapped")
	}
	// The next packet lands in the first slot again, now holding the slice
	// the caller gave up.
	if _, err := v.Write([][]byte{append(make([]byte, 16), 0x45, 3)}, 16); err != nil {
		t.Fatal(err)
	}
	c, csizes := bufs(1, 64)
	if n, err := v.ReadPacketsSwap(c, csizes); n != 1 || err != nil || c[0][1] != 3 {
		t.Fatalf("second ReadPacketsSwap = %d, %v", n, err)
	}
	if &c[0][0] != mine {
		t.Error("the queue did not reuse the slice handed to it")
	}
}

// udpTo builds an IPv4 UDP datagram from wgAddrB:2000 to dst carrying
// payload, with valid checksums.
func udpTo(dst netip.AddrPort, payload string) []byte {
	pkt := make([]byte, header.IPv4MinimumSize+header.UDPMinimumSize+len(payload))
	src := tcpip.AddrFrom4(wgAddrB.As4())
	ip := header.IPv4(pkt)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(pkt)), TTL: 64, Protocol: uint8(header.UDPProtocolNumber),
		SrcAddr: src, DstAddr: tcpip.AddrFrom4(dst.Addr().As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	u := header.UDP(pkt[header.IPv4MinimumSize:])
	u.Encode(&header.UDPFields{SrcPort: 2000, DstPort: dst.Port(), Length: uint16(len(u))})
	copy(u.Payload(), payload)
	xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, src, tcpip.AddrFrom4(dst.Addr().As4()), uint16(len(u)))
	u.SetChecksum(^checksum.Checksum(u, xsum))
	return pkt
}

// TestVirtualPushesIntoStack checks Virtual as a core.PushDevice: a
// datagram written before the stack is attached waits in the queue and is
// handed over on attach, later ones go straight in, and once the Virtual or
// the stack is closed Write fails with ErrClosed.
func TestVirtualPushesIntoStack(t *testing.T) {
	leakCheck(t)
	ns := testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(wgAddrA, 24)}})
	dst := netip.AddrPortFrom(wgAddrA, 7000)
	conn := listenUDP(t, ns.CommandChannel(), dst)
	v := tundev.NewVirtual(tundev.VirtualConfig{})
	const offset = 16
	write := func(payload string) error {
		_, err := v.Write([][]byte{append(make([]byte, offset), udpTo(dst, payload)...)}, offset)
		return err
	}
	if err := write("before"); err != nil {
		t.Fatal(err)
	}
	if err := ns.AttachDevice(v); err != nil {
		t.Fatal(err)
	}
	if err := write("after"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for _, want := range []string{"before", "after"} {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("ReadFrom = %q, %v; want %q", buf[:n], err, want)
		}
	}
	if s := v.Stats(); s.Inbound != 0 {
		t.Fatalf("%d packets left queued", s.Inbound)
	}
	conn.Close()
	ns.Close()
	if err := write("late"); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write after the stack closed = %v, want ErrClosed", err)
	}
}

// TestVirtualReadMovesToStack starts a Read before a stack is attached: it
// waits on the Virtual's queue, then moves to the stack once attached and
// returns the stack's first outbound packet.
func TestVirtualReadMovesToStack(t *testing.T) {
	leakCheck(t)
	ns := testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(wgAddrA, 24)}})
	v := tundev.NewVirtual(tundev.VirtualConfig{})
	const offset = 16
	b, sizes := bufs(4, offset+2048)
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	go func() { n, err := v.Read(b, sizes, offset); res <- result{n, err} }()
	time.Sleep(10 * time.Millisecond) // let it wait on the queue
	if err := ns.AttachDevice(v); err != nil {
		t.Fatal(err)
	}
	pc := listenUDP(t, ns.CommandChannel(), netip.AddrPortFrom(wgAddrA, 7000))
	if _, err := pc.WriteTo([]byte("out"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(wgAddrB, 7001))); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || r.n != 1 {
		t.Fatalf("Read = %d, %v; want 1 packet", r.n, r.err)
	}
	if got := header.UDP(header.IPv4(b[0][offset : offset+sizes[0]]).Payload()).Payload(); string(got) != "out" {
		t.Fatalf("read a datagram carrying %q", got)
	}
	ns.Close()
	if _, err := v.Read(b, sizes, offset); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after the stack closed = %v, want ErrClosed", err)
	}
}

// TestVirtualReadErrors checks that Read reports a caller's mistake (no
// buffers, or fewer sizes than buffers) as what it is, an error matching
// core.ErrInvalid (syscall.EINVAL) and not os.ErrClosed, which wireguard-go
// takes for the device going away; and that only a closed device reads as
// closed. Both before a stack is attached (the queue) and after (the
// stack's Source).
func TestVirtualReadErrors(t *testing.T) {
	leakCheck(t)
	for _, attached := range []bool{false, true} {
		t.Run(fmt.Sprintf("attached=%v", attached), func(t *testing.T) {
			v := tundev.NewVirtual(tundev.VirtualConfig{})
			if attached {
				ns := testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(wgAddrA, 24)}})
				if err := ns.AttachDevice(v); err != nil {
					t.Fatal(err)
				}
			} else {
				defer v.Close()
				v.WritePackets([][]byte{{0x45, 1}}) // a packet waits: the mistake must not be a wait
			}
			b, sizes := bufs(4, 64)
			for name, call := range map[string]func() (int, error){
				"no buffers":  func() (int, error) { return v.Read(nil, sizes, 0) },
				"short sizes": func() (int, error) { return v.Read(b, sizes[:2], 0) },
			} {
				n, err := call()
				if n != 0 || !errors.Is(err, core.ErrInvalid) || !errors.Is(err, syscall.EINVAL) {
					t.Errorf("%s: Read = %d, %v; want 0 and an error matching core.ErrInvalid", name, n, err)
				}
				if errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
					t.Errorf("%s: Read = %v, which reads as the device closed", name, err)
				}
			}
			v.Close()
			_, err := v.Read(b, sizes, 0)
			if !errors.Is(err, os.ErrClosed) || !errors.Is(err, net.ErrClosed) || errors.Is(err, core.ErrInvalid) {
				t.Errorf("Read after Close = %v, want os.ErrClosed and net.ErrClosed only", err)
			}
		})
	}
}

// TestVirtualWantsGSO checks how a Virtual asks for TCP super-segments: as
// a core.GSODevice (its Source cuts them), not by posing as a
// core.OffloadDevice whose WritePacketsGSO a PullDevice's stack never
// calls. TestVirtualPairTCP moves TCP through them.
func TestVirtualWantsGSO(t *testing.T) {
	var dev core.Device = tundev.NewVirtual(tundev.VirtualConfig{})
	defer dev.Close()
	if g, ok := dev.(core.GSODevice); !ok || !g.WantsGSO() {
		t.Errorf("Virtual is a GSODevice: %v, wanting GSO; want true, true", ok)
	}
	if _, ok := dev.(core.OffloadDevice); ok {
		t.Error("Virtual is an OffloadDevice; want it to say it wants GSO with WantsGSO alone")
	}
	if _, ok := dev.(core.PullDevice); !ok {
		t.Error("Virtual is not a PullDevice, which a device that wants GSO without WritePacketsGSO must be")
	}
}

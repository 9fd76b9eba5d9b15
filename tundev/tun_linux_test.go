package tundev_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/netns"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/tundev"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/net/nettest"
)

var bulkMiB = flag.Int("tundev.bulk", 256, "MiB sent each way by the bulk tests (16 with -short)")

// Addresses inside the test's own namespace: the kernel's end of the TUN
// and the stack's.
var (
	hostAddr   = netip.MustParseAddr("192.0.2.1")
	stackAddr  = netip.MustParseAddr("192.0.2.2")
	hostAddr6  = netip.MustParseAddr("2001:db8::1")
	stackAddr6 = netip.MustParseAddr("2001:db8::2")
)

// nsEnv is a stack attached to a kernel device (a TUN or a TAP) whose
// host side is in a namespace of the test's own.
type nsEnv struct {
	ns *netns.NS
	ch core.Channel
}

// tunEnv is a stack attached to a kernel TUN in a namespace of its own.
type tunEnv struct {
	nsEnv
	tun *tundev.TUN
}

func newTUNEnv(t *testing.T, offloads bool) *tunEnv {
	t.Helper()
	leakCheck(t)
	return newTUNEnvTB(t, offloads)
}

func newTUNEnvTB(t testing.TB, offloads bool) *tunEnv {
	t.Helper()
	env, _, dev := attachInNS(t, offloads, tundev.Open, core.Config{})
	return &tunEnv{nsEnv: env, tun: dev}
}

// kernelDevice is what attachInNS needs of a TUN or a TAP.
type kernelDevice interface {
	core.Device
	Offloads() bool
}

// attachInNS opens a device with open in a namespace of the test's own,
// its host side at hostAddr and hostAddr6 (MTU 1500, offloads as asked),
// and attaches it to a stack made from cfg with the addresses stackAddr
// and stackAddr6.
func attachInNS[D kernelDevice](t testing.TB, offloads bool, open func(tundev.Config) (D, error), cfg core.Config) (nsEnv, *core.Netstack, D) {
	t.Helper()
	ns := newNetNS(t)
	var dev D
	err := ns.Do(func() (err error) {
		dev, err = open(tundev.Config{
			MTU:             1500,
			DisableOffloads: !offloads,
			Addrs:           []netip.Prefix{netip.PrefixFrom(hostAddr, 24), netip.PrefixFrom(hostAddr6, 64)},
		})
		return err
	})
	if err != nil {
		t.Fatalf("open %T: %v", dev, err)
	}
	if dev.Offloads() != offloads {
		t.Logf("offloads = %v, want %v (kernel without IFF_VNET_HDR?)", dev.Offloads(), offloads)
	}
	cfg.MTU = 1500
	cfg.Addrs = []netip.Prefix{netip.PrefixFrom(stackAddr, 24), netip.PrefixFrom(stackAddr6, 64)}
	st := testnet.Start(t, cfg)
	if err := st.AttachDevice(dev); err != nil {
		dev.Close()
		t.Fatalf("AttachDevice: %v", err)
	}
	return nsEnv{ns: ns, ch: st.CommandChannel()}, st, dev
}

// kernelToStack listens on the stack at addr and dials it from the
// namespace: kc is the kernel's conn, sc the stack's accepted one (closed
// when t ends, as kc is).
func (e *nsEnv) kernelToStack(t testing.TB, addr netip.AddrPort) (kc, sc net.Conn) {
	t.Helper()
	ln := listenStack(t, e.ch, addr)
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	kc = e.kernelDial(t, "tcp", addr)
	if sc = <-acc; sc == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { sc.Close() })
	return kc, sc
}

// kernelDial dials from the namespace.
func (e *nsEnv) kernelDial(t testing.TB, network string, to netip.AddrPort) net.Conn {
	t.Helper()
	var c net.Conn
	err := e.ns.Do(func() (err error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err = d.Dial(network, to.String())
		return err
	})
	if err != nil {
		t.Fatalf("kernel dial %v: %v", to, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// kernelListen listens in the namespace.
func (e *nsEnv) kernelListen(t testing.TB, at netip.AddrPort) net.Listener {
	t.Helper()
	var l net.Listener
	if err := e.ns.Do(func() (err error) { l, err = net.Listen("tcp", at.String()); return err }); err != nil {
		t.Fatalf("kernel listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// acceptEcho accepts one conn from ln and echoes it until EOF; the
// returned channel is closed once the conn is closed. The test closes its
// end first and then waits, so that no echo goroutine outlives it.
func acceptEcho(ln net.Listener) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.Copy(c, c)
	}()
	return done
}

func checkEcho(t *testing.T, c net.Conn) {
	t.Helper()
	msg := []byte("hello across the TUN")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

var families = []struct {
	name        string
	host, stack netip.Addr
}{
	{"IPv4", hostAddr, stackAddr},
	{"IPv6", hostAddr6, stackAddr6},
}

func TestTUNKernelDialsStack(t *testing.T) {
	for _, offloads := range []bool{true, false} {
		for _, fam := range families {
			t.Run(fmt.Sprintf("offloads=%v/%s", offloads, fam.name), func(t *testing.T) {
				e := newTUNEnv(t, offloads)
				ln := listenStack(t, e.ch, netip.AddrPortFrom(fam.stack, 8080))
				done := acceptEcho(ln)
				c := e.kernelDial(t, "tcp", netip.AddrPortFrom(fam.stack, 8080))
				checkEcho(t, c)
				c.Close()
				<-done
			})
		}
	}
}

func TestTUNStackDialsKernel(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newTUNEnv(t, true)
			ln := e.kernelListen(t, netip.AddrPortFrom(fam.host, 0))
			done := acceptEcho(ln)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := dialStack(ctx, e.ch, ln.Addr().(*net.TCPAddr).AddrPort())
			if err != nil {
				t.Fatalf("stack dial: %v", err)
			}
			checkEcho(t, c)
			c.Close()
			<-done
		})
	}
}

func TestTUNUDP(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newTUNEnv(t, true)
			var kc *net.UDPConn
			if err := e.ns.Do(func() (err error) {
				kc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(fam.host, 0)))
				return err
			}); err != nil {
				t.Fatalf("kernel UDP: %v", err)
			}
			defer kc.Close()
			kernel := kc.LocalAddr().(*net.UDPAddr).AddrPort()
			b := must[core.UDPBound](t, e.ch, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(fam.stack, 0)})

			buf := make([]byte, 100)
			// UDP may lose the first datagrams while the link settles: retry.
			var from netip.AddrPort
			retry(t, "stack → kernel", func() bool {
				must[core.UDPSent](t, e.ch, b.Handle, core.UDPSend{To: kernel, Buf: []byte("ping")})
				kc.SetReadDeadline(time.Now().Add(time.Second))
				n, f, err := kc.ReadFromUDPAddrPort(buf)
				from = f
				return err == nil && string(buf[:n]) == "ping" && f == b.Local
			})
			retry(t, "kernel → stack", func() bool {
				kc.WriteToUDPAddrPort([]byte("pong"), from)
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				r, err := request[core.UDPRecvd](ctx, e.ch, b.Handle, &core.UDPRecv{Buf: buf})
				return err == nil && string(buf[:r.N]) == "pong" && r.From == kernel
			})
		})
	}
}

// retry calls try up to 10 times until it reports success.
func retry(t *testing.T, what string, try func() bool) {
	t.Helper()
	for range 10 {
		if try() {
			return
		}
	}
	t.Fatalf("%s: no success in 10 tries", what)
}

func TestTUNKernelPingsStack(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newTUNEnv(t, true)
			network, typ, reply, proto := "ip4:icmp", icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply), 1
			if fam.host.Is6() {
				network, typ, reply, proto = "ip6:ipv6-icmp", ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
			}
			var pc *icmp.PacketConn
			if err := e.ns.Do(func() (err error) { pc, err = icmp.ListenPacket(network, fam.host.String()); return err }); err != nil {
				t.Fatalf("raw ICMP socket: %v", err)
			}
			defer pc.Close()
			for seq := 1; seq <= 3; seq++ {
				retry(t, fmt.Sprintf("ping %d", seq), func() bool {
					return pingOnce(t, pc, fam.stack, typ, reply, proto, seq)
				})
			}
		})
	}
}

// pingOnce sends one echo request and reports whether its reply came.
func pingOnce(t *testing.T, pc *icmp.PacketConn, to netip.Addr, typ, reply icmp.Type, proto, seq int) bool {
	t.Helper()
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: 0x4e43, Seq: seq, Data: []byte("netcore ping")}}
	wb, err := msg.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteTo(wb, &net.IPAddr{IP: to.AsSlice()}); err != nil {
		t.Fatalf("send echo: %v", err)
	}
	pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	rb := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(rb)
		if err != nil {
			return false
		}
		m, err := icmp.ParseMessage(proto, rb[:n])
		if err != nil || m.Type != reply {
			continue // our own request, or router solicitations on IPv6
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.Seq == seq && from.String() == to.String() {
			return true
		}
	}
}

// bulkSize is the bytes each way of the bulk tests.
func bulkSize() int64 {
	if testing.Short() {
		return 16 << 20
	}
	return int64(*bulkMiB) << 20
}

func TestTUNBulk(t *testing.T) {
	for _, offloads := range []bool{true, false} {
		for _, fam := range families {
			t.Run(fmt.Sprintf("offloads=%v/%s", offloads, fam.name), func(t *testing.T) {
				e := newTUNEnv(t, offloads)
				kc, sc := e.kernelToStack(t, netip.AddrPortFrom(fam.stack, 9000))
				size := bulkSize()
				if !offloads || fam.name != "IPv4" {
					// A quarter: without offloads it is twice as slow, CI
					// runs it under -race, and IPv6 takes the same paths.
					size /= 4
				}
				start := time.Now()
				bothWays(t, kc, sc, size)
				el := time.Since(start)
				t.Logf("%d MiB each way in %v: %.2f Gbit/s total", size>>20, el.Round(time.Millisecond),
					float64(2*8*size)/el.Seconds()/1e9)
			})
		}
	}
}

func TestTUNNettest(t *testing.T) {
	for _, offloads := range []bool{true, false} {
		t.Run(fmt.Sprintf("offloads=%v", offloads), func(t *testing.T) {
			e := newTUNEnv(t, offloads)
			ln := e.kernelListen(t, netip.AddrPortFrom(hostAddr, 0))
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				return e.pipe(ln)
			})
		})
	}
}

// pipe returns a netcore conn dialed to a kernel conn accepted from ln.
func (e *tunEnv) pipe(ln net.Listener) (net.Conn, net.Conn, func(), error) {
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := dialStack(ctx, e.ch, ln.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		return nil, nil, nil, err
	}
	kc := <-acc
	if kc == nil {
		sc.Close()
		return nil, nil, nil, errors.New("kernel accept failed")
	}
	return sc, kc, func() { sc.Close(); kc.Close() }, nil
}

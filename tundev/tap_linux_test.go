package tundev_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/tundev"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// tapMAC is the stack's MAC in the TAP tests.
var tapMAC = core.MustParseMAC("02:6e:63:00:00:02")

// tapEnv is an Ethernet stack attached to a kernel TAP whose host side is
// in a namespace of the test's own.
type tapEnv struct {
	nsEnv
	tap *tundev.TAP
	st  *core.Netstack
}

func newTAPEnv(t *testing.T, offloads bool) *tapEnv {
	t.Helper()
	leakCheck(t)
	return newTAPEnvTB(t, offloads)
}

func newTAPEnvTB(t testing.TB, offloads bool) *tapEnv {
	t.Helper()
	env, st, dev := attachInNS(t, offloads, tundev.OpenTAP, core.Config{Medium: core.MediumEthernet, MAC: tapMAC})
	return &tapEnv{nsEnv: env, tap: dev, st: st}
}

// kernelNeighbor returns the kernel's neighbour entry for a on the TAP,
// as "ip neigh show dev <tap>" lists it (the same rtnetlink dump).
func (e *tapEnv) kernelNeighbor(t *testing.T, a netip.Addr) (netlink.Neigh, bool) {
	t.Helper()
	var found netlink.Neigh
	ok := false
	err := e.ns.Do(func() error {
		link, err := netlink.LinkByName(e.tap.Name())
		if err != nil {
			return err
		}
		family := netlink.FAMILY_V4
		if a.Is6() {
			family = netlink.FAMILY_V6
		}
		neighs, err := netlink.NeighList(link.Attrs().Index, family)
		for _, n := range neighs {
			if ip, _ := netip.AddrFromSlice(n.IP); ip.Unmap() == a {
				found, ok = n, true
			}
		}
		return err
	})
	if err != nil {
		t.Fatalf("neighbour list: %v", err)
	}
	return found, ok
}

// TestTAPKernelPingsStack: the kernel, on the host side of a TAP in its
// own namespace, pings the stack over IPv4 (ARP) and IPv6 (NDP); its
// neighbour table then holds the stack's MAC as REACHABLE, and the
// stack's holds the kernel's.
func TestTAPKernelPingsStack(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newTAPEnv(t, true)
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
			n, ok := e.kernelNeighbor(t, fam.stack)
			if !ok || n.HardwareAddr.String() != tapMAC.String() || n.State&unix.NUD_REACHABLE == 0 {
				t.Errorf("kernel neighbour %v: %v %s (found %v), want %v REACHABLE", fam.stack, n.HardwareAddr, neighState(n.State), ok, tapMAC)
			}
			e.checkIPNeigh(t, fam.stack)
			var kernelMAC core.MAC
			if err := e.ns.Do(func() error {
				link, err := netlink.LinkByName(e.tap.Name())
				if err == nil {
					copy(kernelMAC[:], link.Attrs().HardwareAddr)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if got := stackNeighbor(e.st, fam.host); got.MAC != kernelMAC {
				t.Errorf("stack neighbour %v = %v %v, want %v", fam.host, got.MAC, got.State, kernelMAC)
			}
		})
	}
}

// checkIPNeigh runs "ip neigh show <a> dev <tap>" in the namespace (where
// iproute2 is installed) and checks that it lists the stack's MAC as
// REACHABLE; kernelNeighbor reads the same table through rtnetlink.
func (e *tapEnv) checkIPNeigh(t *testing.T, a netip.Addr) {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Logf("no ip command (iproute2): checked through rtnetlink only")
		return
	}
	var out []byte
	if err := e.ns.Do(func() (err error) {
		// The child inherits the namespace of this locked thread.
		out, err = exec.Command(ip, "neigh", "show", a.String(), "dev", e.tap.Name()).CombinedOutput()
		return err
	}); err != nil {
		t.Fatalf("ip neigh: %v: %s", err, out)
	}
	t.Logf("ip neigh: %s", strings.TrimSpace(string(out)))
	if want := "lladdr " + tapMAC.String() + " REACHABLE"; !strings.Contains(string(out), want) {
		t.Errorf("ip neigh show %v: %q, want %q", a, out, want)
	}
}

func neighState(s int) string {
	if s&unix.NUD_REACHABLE != 0 {
		return "REACHABLE"
	}
	return fmt.Sprintf("state %#x", s)
}

func stackNeighbor(ns *core.Netstack, a netip.Addr) core.Neighbor {
	for _, n := range ns.Neighbors() {
		if n.Addr == a {
			return n
		}
	}
	return core.Neighbor{}
}

// TestTAPBulk moves TCP both ways at once between the kernel and the stack
// over a TAP, each way SHA-256 checked, dialed from either side, with and
// without offloads.
func TestTAPBulk(t *testing.T) {
	for _, offloads := range []bool{true, false} {
		for _, fam := range families {
			for _, kernelDials := range []bool{true, false} {
				t.Run(fmt.Sprintf("offloads=%v/%s/kernelDials=%v", offloads, fam.name, kernelDials), func(t *testing.T) {
					e := newTAPEnv(t, offloads)
					kc, sc := e.tcpPair(t, fam.host, fam.stack, kernelDials)
					size := bulkSize() / 4
					if !offloads || fam.name != "IPv4" {
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
}

// tcpPair connects the kernel (at host) and the stack (at stack), dialed
// by the kernel or by the stack; both conns are closed when t ends.
func (e *tapEnv) tcpPair(t *testing.T, host, stack netip.Addr, kernelDials bool) (kc, sc net.Conn) {
	t.Helper()
	if kernelDials {
		return e.kernelToStack(t, netip.AddrPortFrom(stack, 9000))
	}
	ln := e.kernelListen(t, netip.AddrPortFrom(host, 0))
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if sc, err = dialStack(ctx, e.ch, ln.Addr().(*net.TCPAddr).AddrPort()); err != nil {
		t.Fatalf("stack dial: %v", err)
	}
	kc = <-acc
	if kc == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { kc.Close(); sc.Close() })
	return kc, sc
}

// TestTAPRefusedByIPStack: a TAP carries Ethernet frames, so a stack on
// MediumIP refuses it with ErrMediumMismatch; and a closed TAP's calls
// fail with ErrClosed.
func TestTAPRefusedByIPStack(t *testing.T) {
	leakCheck(t)
	ns := newNetNS(t)
	var dev *tundev.TAP
	if err := ns.Do(func() (err error) { dev, err = tundev.OpenTAP(tundev.Config{}); return err }); err != nil {
		t.Fatalf("OpenTAP: %v", err)
	}
	st := testnet.Start(t, core.Config{})
	if err := st.AttachDevice(dev); !errors.Is(err, core.ErrMediumMismatch) {
		t.Errorf("AttachDevice to an IP stack: %v, want ErrMediumMismatch", err)
	}
	if err := dev.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := dev.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if _, err := dev.WritePackets([][]byte{make([]byte, 60)}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WritePackets after Close: %v, want ErrClosed", err)
	}
	bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
	if _, err := dev.ReadPackets(bufs, sizes); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadPackets after Close: %v, want ErrClosed", err)
	}
}

// TestTAPLinkDown: frames written while the TAP's link is down (no
// Config.Up) are dropped and counted, as by a NIC without carrier; the
// stack keeps its device, and traffic flows once the link is up.
func TestTAPLinkDown(t *testing.T) {
	leakCheck(t)
	ns := newNetNS(t)
	var dev *tundev.TAP
	if err := ns.Do(func() (err error) { dev, err = tundev.OpenTAP(tundev.Config{}); return err }); err != nil {
		t.Fatalf("OpenTAP: %v", err)
	}
	st := testnet.Start(t, core.Config{Medium: core.MediumEthernet, Addrs: []netip.Prefix{netip.PrefixFrom(stackAddr, 24)}})
	if err := st.AttachDevice(dev); err != nil {
		dev.Close()
		t.Fatal(err)
	}
	ch := st.CommandChannel()
	u := must[core.UDPBound](t, ch, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(stackAddr, 0)})
	deadline := time.Now().Add(20 * time.Second)
	for dev.Dropped() == 0 && time.Now().Before(deadline) {
		must[core.UDPSent](t, ch, u.Handle, core.UDPSend{To: netip.AddrPortFrom(hostAddr, 9), Buf: []byte("down")})
		time.Sleep(10 * time.Millisecond)
	}
	if dev.Dropped() == 0 {
		t.Fatal("no frame dropped while the link was down")
	}
	if err := ns.Do(func() error {
		link, err := netlink.LinkByName(dev.Name())
		if err == nil {
			err = netlink.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: hostAddr.AsSlice(), Mask: net.CIDRMask(24, 32)}})
		}
		if err == nil {
			err = netlink.LinkSetUp(link)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var pc net.PacketConn
	if err := ns.Do(func() (err error) {
		pc, err = net.ListenPacket("udp", netip.AddrPortFrom(hostAddr, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	to := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, 64)
	retry(t, "datagram after link up", func() bool {
		must[core.UDPSent](t, ch, u.Handle, core.UDPSend{To: to, Buf: []byte("up")})
		pc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		return err == nil && string(buf[:n]) == "up"
	})
}

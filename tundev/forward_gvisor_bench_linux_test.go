package tundev_test

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/link/tun"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// gvisorPath is BenchmarkForward's "gvisor" path, the reference issue 12
// measures against: the forwarded path built the way transparent proxies
// on plain gVisor build it (tun2socks, gvisor-tap-vsock): the client
// namespace's TUN read and written by gVisor's fdbased endpoint, a
// promiscuous, spoofing stack, tcp.NewForwarder and udp.NewForwarder
// handing each flow over as a gonet conn, which the handler splices to
// the same loopback servers as the forwarded path.
func gvisorPath(b *testing.B, client interface{ Do(func() error) error }, ports map[uint16]uint16) {
	var fd int
	err := client.Do(func() (err error) {
		if fd, err = tun.Open("gvtun0"); err != nil {
			return err
		}
		return gvisorHostSetup("gvtun0")
	})
	if err != nil {
		b.Fatalf("gVisor TUN: %v", err)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	ep, err := fdbased.New(&fdbased.Options{FDs: []int{fd}, MTU: 1500, RXChecksumOffload: true})
	if err != nil {
		b.Fatalf("fdbased: %v", err)
	}
	if e := s.CreateNIC(1, ep); e != nil {
		b.Fatalf("CreateNIC: %v", e)
	}
	s.SetPromiscuousMode(1, true)
	s.SetSpoofing(1, true)
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}, {Destination: header.IPv6EmptySubnet, NIC: 1}})
	var wg sync.WaitGroup
	b.Cleanup(func() {
		s.RemoveNIC(1) // stops the endpoint's readers
		ep.Wait()
		s.Close()
		s.Wait()
		unix.Close(fd)
		wg.Wait()
	})
	target := loopbackFor(ports)
	tf := tcp.NewForwarder(s, 0, 1024, func(r *tcp.ForwarderRequest) {
		id := r.ID()
		dst := netip.AddrPortFrom(netip.AddrFrom4(id.LocalAddress.As4()), id.LocalPort)
		var wq waiter.Queue
		tep, e := r.CreateEndpoint(&wq)
		if e != nil {
			r.Complete(true)
			return
		}
		r.Complete(false)
		c := gonet.NewTCPConn(&wq, tep)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			up, err := net.Dial("tcp", target(dst))
			if err != nil {
				return
			}
			defer up.Close()
			gvisorSplice(c, up.(*net.TCPConn))
		}()
	})
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, tf.HandlePacket)
	uf := udp.NewForwarder(s, func(r *udp.ForwarderRequest) bool {
		var wq waiter.Queue
		uep, e := r.CreateEndpoint(&wq)
		if e != nil {
			return false
		}
		c := gonet.NewUDPConn(&wq, uep)
		dst := netip.AddrPortFrom(netip.AddrFrom4(r.ID().LocalAddress.As4()), r.ID().LocalPort)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			up, err := net.Dial("udp", target(dst))
			if err != nil {
				return
			}
			defer up.Close()
			go copyMessages(c, up, 65535)
			copyMessages(up, c, 65535)
		}()
		return true
	})
	s.SetTransportProtocolHandler(udp.ProtocolNumber, uf.HandlePacket)
}

// gvisorSplice copies both ways until both ends have closed their writes.
func gvisorSplice(a *gonet.TCPConn, b *net.TCPConn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(b, a); b.CloseWrite() }()
	go func() { defer wg.Done(); io.Copy(a, b); a.CloseWrite() }()
	wg.Wait()
}

// gvisorHostSetup gives the TUN the client's address and every route.
func gvisorHostSetup(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	addr, _ := netlink.ParseAddr(netip.PrefixFrom(clientAddr, 24).String())
	if err := netlink.AddrAdd(link, addr); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return err
	}
	_, all, _ := net.ParseCIDR("0.0.0.0/0")
	return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: all, Scope: netlink.SCOPE_LINK})
}

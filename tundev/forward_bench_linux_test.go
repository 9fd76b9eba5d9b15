package tundev_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/netns"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
)

// BenchmarkForward compares the forwarded path (a kernel client in a
// namespace → TUN → forwarding netcore stack → the Forwarder's handler,
// which dials with Go's net → a kernel server on the host's loopback) with
// the direct kernel path (client → server in another namespace, over a
// veth), and with "terminated", the forwarding stack's handler serving the
// workloads itself (no second kernel hop: what netcore and the TUN cost),
// and with "gvisor", the forwarded path built on plain gVisor as
// transparent proxies build it (see gvisorPath), the reference to beat,
// on the same workloads: one bulk TCP stream from the client (bulk) and
// one to it (down), sequential connections, 1-byte TCP request-response,
// UDP echo round trips. Compare
// the two in one run (the machine is noisy). Beside the time, each reports
// the process's CPU time (the kernel's, for both namespaces, included) and
// its context switches per operation (cpu-µs/op, ctxsw/op), which load
// from other processes sways less: a goroutine hand-off on the critical
// path that finds its thread asleep is a context switch.
//
//	go test -run '^$' -bench BenchmarkForward -benchtime 2s ./tundev/
func BenchmarkForward(b *testing.B) {
	for _, path := range []string{"forwarded", "gvisor", "terminated", "direct"} {
		b.Run(path, func(b *testing.B) {
			dial, tcpAddr, udpAddr := benchPath(b, path)
			b.Run("bulk", func(b *testing.B) { benchBulk(b, dial, tcpAddr) })
			b.Run("down", func(b *testing.B) { benchDown(b, dial, tcpAddr) })
			b.Run("conns", func(b *testing.B) { benchConns(b, dial, tcpAddr) })
			b.Run("rr", func(b *testing.B) { benchRR(b, dial, tcpAddr) })
			b.Run("udp", func(b *testing.B) { benchUDP(b, dial, udpAddr) })
		})
	}
}

// measureRusage starts counting the process's CPU time and context
// switches; the function it returns reports them per operation.
func measureRusage(b *testing.B) func() {
	start := rusage()
	b.ResetTimer()
	return func() {
		b.StopTimer()
		end := rusage()
		n := float64(b.N)
		b.ReportMetric(float64(end.cpu-start.cpu)/1e3/n, "cpu-µs/op")
		b.ReportMetric(float64(end.csw-start.csw)/n, "ctxsw/op")
	}
}

type usage struct{ cpu, csw int64 } // ns, count

func rusage() usage {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return usage{
		cpu: ru.Utime.Nano() + ru.Stime.Nano(),
		csw: ru.Nvcsw + ru.Nivcsw,
	}
}

type dialFunc func(network, addr string) (net.Conn, error)

// benchPath sets a path up and returns how its client dials and where the
// servers are, as the client addresses them.
func benchPath(b *testing.B, path string) (dialFunc, string, string) {
	client := newNetNS(b)
	dial := func(network, addr string) (c net.Conn, err error) {
		err = client.Do(func() error { c, err = net.Dial(network, addr); return err })
		return c, err
	}
	if path == "direct" {
		server := newNetNS(b)
		veth(b, client, server)
		var tl net.Listener
		var ul net.PacketConn
		server.Do(func() (err error) {
			if tl, err = net.Listen("tcp4", "10.98.0.2:0"); err == nil {
				ul, err = net.ListenPacket("udp4", "10.98.0.2:0")
			}
			return err
		})
		serveBench(b, tl, ul)
		return dial, tl.Addr().String(), ul.LocalAddr().String()
	}
	if path == "terminated" {
		e := &fwdEnv{ns: client, seen: make(map[netip.AddrPort]netip.AddrPort)}
		e.attach(b, 1500, 1500, core.ForwardConfig{}, benchHandlers())
		return dial, netip.AddrPortFrom(farHost, 80).String(), netip.AddrPortFrom(farHost, 53).String()
	}
	tl, _ := net.Listen("tcp4", "127.0.0.1:0")
	ul, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	serveBench(b, tl, ul)
	ports := map[uint16]uint16{80: uint16(tl.Addr().(*net.TCPAddr).Port), 53: uint16(ul.LocalAddr().(*net.UDPAddr).Port)}
	if path == "gvisor" {
		gvisorPath(b, client, ports)
		return dial, netip.AddrPortFrom(farHost, 80).String(), netip.AddrPortFrom(farHost, 53).String()
	}
	e := &fwdEnv{ns: client, seen: make(map[netip.AddrPort]netip.AddrPort)}
	e.attach(b, 1500, 1500, core.ForwardConfig{}, tun2socksFor(e, loopbackFor(ports)))
	return dial, netip.AddrPortFrom(farHost, 80).String(), netip.AddrPortFrom(farHost, 53).String()
}

// veth joins two namespaces: 10.98.0.1 in a, 10.98.0.2 in b.
func veth(tb testing.TB, a, b *netns.NS) {
	var bfd int
	b.Do(func() (err error) {
		bfd, err = unix.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			lo, _ := netlink.LinkByName("lo")
			netlink.LinkSetUp(lo)
		}
		return err
	})
	defer unix.Close(bfd)
	up := func(name, addr string) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		a, _ := netlink.ParseAddr(addr)
		if err := netlink.AddrAdd(l, a); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	}
	err := a.Do(func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "fwa"}, PeerName: "fwb"}); err != nil {
			return err
		}
		peer, err := netlink.LinkByName("fwb")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetNsFd(peer, bfd); err != nil {
			return err
		}
		return up("fwa", "10.98.0.1/24")
	})
	if err == nil {
		err = b.Do(func() error { return up("fwb", "10.98.0.2/24") })
	}
	if err != nil {
		tb.Fatalf("veth: %v", err)
	}
}

// downByte, sent alone, asks a bench server for an endless stream.
const downByte = 2

// serveBench serves the workloads: TCP echo (a bulk stream is read to its
// end, then answered with one byte; downByte alone is answered with a
// stream until the client goes) and UDP echo.
func serveBench(tb testing.TB, tl net.Listener, ul net.PacketConn) {
	tb.Cleanup(func() { tl.Close(); ul.Close() })
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 256<<10)
				for {
					n, err := c.Read(buf)
					if err != nil {
						c.Write([]byte{1}) // the bulk stream's end
						return
					}
					if n == 1 {
						serveOne(c, buf)
					}
				}
			}()
		}
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := ul.ReadFrom(buf)
			if err != nil {
				return
			}
			ul.WriteTo(buf[:n], from)
		}
	}()
}

// benchHandlers serve the workloads in the Forwarder itself, as
// serveBench does.
func benchHandlers() *listener.Forwarder {
	return &listener.Forwarder{
		HandleTCP: func(_ context.Context, c *netconn.TCPConn) {
			buf := make([]byte, 256<<10)
			for {
				n, err := c.Read(buf)
				if err != nil {
					c.Write([]byte{1})
					return
				}
				if n == 1 {
					serveOne(c, buf)
				}
			}
		},
		HandleUDP: func(_ context.Context, c *listener.UDPFlow) {
			buf := make([]byte, 2048)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				c.Write(buf[:n])
			}
		},
	}
}

// serveOne answers a 1-byte message in buf: the byte back, or, for
// downByte, buf over and over until a write fails.
func serveOne(c net.Conn, buf []byte) {
	if buf[0] != downByte {
		c.Write(buf[:1])
		return
	}
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// benchDown reads b.N 256 KiB chunks of a stream the server sends.
func benchDown(b *testing.B, dial dialFunc, addr string) {
	c, err := dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	chunk := make([]byte, 256<<10)
	b.SetBytes(int64(len(chunk)))
	if _, err := c.Write([]byte{downByte}); err != nil {
		b.Fatal(err)
	}
	done := measureRusage(b)
	for range b.N {
		if _, err := io.ReadFull(c, chunk); err != nil {
			b.Fatal(err)
		}
	}
	done()
}

func benchBulk(b *testing.B, dial dialFunc, addr string) {
	c, err := dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	chunk := make([]byte, 256<<10)
	b.SetBytes(int64(len(chunk)))
	done := measureRusage(b)
	for range b.N {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	io.ReadFull(c, chunk[:1]) // the server has read it all
	done()
}

func benchConns(b *testing.B, dial dialFunc, addr string) {
	buf := []byte{1}
	defer measureRusage(b)()
	for range b.N {
		c, err := dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Write(buf)
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func benchRR(b *testing.B, dial dialFunc, addr string) {
	c, err := dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := []byte{1}
	defer measureRusage(b)()
	for range b.N {
		c.Write(buf)
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func benchUDP(b *testing.B, dial dialFunc, addr string) {
	c, err := dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	defer measureRusage(b)()
	for range b.N {
		c.Write(buf[:1])
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

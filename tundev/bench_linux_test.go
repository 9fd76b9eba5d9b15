package tundev_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/netcore-go/netcore/core/gso"
	"github.com/netcore-go/netcore/tundev"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// BenchmarkTUNKernel is bulk TCP between a kernel socket and a netcore
// socket through a real TUN device, in a namespace of its own (skipped
// without root), with offloads on and off, each way.
func BenchmarkTUNKernel(b *testing.B) {
	for _, offloads := range []bool{true, false} {
		for _, dir := range []string{"kernel-to-stack", "stack-to-kernel"} {
			b.Run(fmt.Sprintf("offloads=%v/%s", offloads, dir), func(b *testing.B) {
				e := newTUNEnvTB(b, offloads)
				ln := listenStack(b, e.ch, netip.AddrPortFrom(stackAddr, 9000))
				kc, sc := connPair(b, ln, func() (net.Conn, error) {
					return e.kernelDial(b, "tcp", netip.AddrPortFrom(stackAddr, 9000)), nil
				})
				if dir == "kernel-to-stack" {
					bulk(b, kc, sc)
				} else {
					bulk(b, sc, kc)
				}
			})
		}
	}
}

// BenchmarkTAPKernel is BenchmarkTUNKernel through a TAP device, the stack
// on MediumEthernet.
func BenchmarkTAPKernel(b *testing.B) {
	for _, offloads := range []bool{true, false} {
		for _, dir := range []string{"kernel-to-stack", "stack-to-kernel"} {
			b.Run(fmt.Sprintf("offloads=%v/%s", offloads, dir), func(b *testing.B) {
				e := newTAPEnvTB(b, offloads)
				ln := listenStack(b, e.ch, netip.AddrPortFrom(stackAddr, 9000))
				kc, sc := connPair(b, ln, func() (net.Conn, error) {
					return e.kernelDial(b, "tcp", netip.AddrPortFrom(stackAddr, 9000)), nil
				})
				if dir == "kernel-to-stack" {
					bulk(b, kc, sc)
				} else {
					bulk(b, sc, kc)
				}
			})
		}
	}
}

// BenchmarkTUNWriteOne writes one 1-byte UDP datagram per write to a TUN
// with offloads (the kernel delivers it to a socket in the TUN's
// namespace, which a goroutine drains): "direct" through TUN.WritePacketsGSO,
// which writes a lone packet straight to the device (TUNStats.SingleWrites),
// "wireguard" through wireguard-go's coalescing Write, as every write went
// before. Compare the two in one run.
func BenchmarkTUNWriteOne(b *testing.B) {
	ns := newNetNS(b)
	var dev *tundev.TUN
	var kc *net.UDPConn
	err := ns.Do(func() (err error) {
		dev, err = tundev.Open(tundev.Config{MTU: 1500, Addrs: []netip.Prefix{netip.PrefixFrom(hostAddr, 24)}})
		if err == nil {
			kc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(hostAddr, 0)))
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	defer kc.Close()
	if !dev.Offloads() {
		b.Skip("no offloads on this kernel's TUN")
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := kc.Read(buf); err != nil {
				return
			}
		}
	}()
	pkt := udpPacket(stackAddr, netip.AddrPortFrom(hostAddr, kc.LocalAddr().(*net.UDPAddr).AddrPort().Port()), []byte{1})
	b.Run("direct", func(b *testing.B) {
		pkts, opts := [][]byte{pkt}, []gso.Options{{}}
		for range b.N {
			if _, err := dev.WritePacketsGSO(pkts, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wireguard", func(b *testing.B) {
		buf := make([]byte, 16+len(pkt))
		copy(buf[16:], pkt)
		bufs := [][]byte{buf}
		for range b.N {
			if _, err := dev.Device().Write(bufs, 16); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// udpPacket is an IPv4 UDP datagram from src (port 5000) to dst, its
// checksums set.
func udpPacket(src netip.Addr, dst netip.AddrPort, payload []byte) []byte {
	const l3 = header.IPv4MinimumSize
	pkt := make([]byte, l3+header.UDPMinimumSize+len(payload))
	s, d := tcpip.AddrFrom4(src.As4()), tcpip.AddrFrom4(dst.Addr().As4())
	ip := header.IPv4(pkt)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(pkt)), TTL: 64, Protocol: uint8(header.UDPProtocolNumber), SrcAddr: s, DstAddr: d})
	ip.SetChecksum(^ip.CalculateChecksum())
	u := header.UDP(pkt[l3:])
	u.Encode(&header.UDPFields{SrcPort: 5000, DstPort: dst.Port(), Length: uint16(len(pkt) - l3)})
	copy(pkt[l3+header.UDPMinimumSize:], payload)
	sum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, s, d, u.Length())
	u.SetChecksum(^u.CalculateChecksum(checksum.Checksum(payload, sum)))
	return pkt
}

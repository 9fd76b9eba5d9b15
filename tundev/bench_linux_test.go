package tundev_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
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

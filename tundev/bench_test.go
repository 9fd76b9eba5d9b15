package tundev_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/tundev/tundevtest"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

const benchChunk = 1 << 20

// bulk measures one-way TCP throughput from src to dst: b.N chunks of 1 MiB.
func bulk(b *testing.B, src, dst net.Conn) {
	b.Helper()
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	done := make(chan error, 1)
	total := int64(b.N) * benchChunk
	go func() {
		_, err := io.CopyBuffer(io.Discard, io.LimitReader(struct{ io.Reader }{dst}, total), make([]byte, benchChunk))
		done <- err
	}()
	buf := make([]byte, benchChunk)
	b.ResetTimer()
	for range b.N {
		if _, err := src.Write(buf); err != nil {
			b.Fatalf("write: %v", err)
		}
	}
	if err := <-done; err != nil {
		b.Fatalf("read: %v", err)
	}
	b.StopTimer()
	b.ReportMetric(float64(total*8)/b.Elapsed().Seconds()/1e9, "Gbit/s")
}

// connPair accepts on ln while dial runs.
func connPair(b *testing.B, ln net.Listener, dial func() (net.Conn, error)) (client, server net.Conn) {
	b.Helper()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	c, err := dial()
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	s := <-acc
	if s == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// BenchmarkVirtualPair is bulk TCP between two netcore stacks, each behind a
// Virtual, joined by shuttles that move batches between the tun.Device
// sides (a WireGuard tunnel minus the crypto).
func BenchmarkVirtualPair(b *testing.B) {
	for _, mtu := range []int{1420, 65000} {
		b.Run(fmt.Sprintf("mtu=%d", mtu), func(b *testing.B) {
			ca, cb := virtualPair(b, mtu)
			ln := listenStack(b, ca, netip.AddrPortFrom(wgAddrA, 80))
			c, s := connPair(b, ln, func() (net.Conn, error) {
				return dialStack(context.Background(), cb, netip.AddrPortFrom(wgAddrA, 80))
			})
			bulk(b, c, s)
		})
	}
}

// BenchmarkWireGuardNetstackPair is the anchor: wireguard-go's own
// tun/netstack devices joined the same way.
func BenchmarkWireGuardNetstackPair(b *testing.B) {
	for _, mtu := range []int{1420, 65000} {
		b.Run(fmt.Sprintf("mtu=%d", mtu), func(b *testing.B) {
			ta, na, err := netstack.CreateNetTUN([]netip.Addr{wgAddrA}, nil, mtu)
			if err != nil {
				b.Fatal(err)
			}
			tb, nb, err := netstack.CreateNetTUN([]netip.Addr{wgAddrB}, nil, mtu)
			if err != nil {
				b.Fatal(err)
			}
			wait := tundevtest.Join(ta, tb)
			ln, err := na.ListenTCPAddrPort(netip.AddrPortFrom(wgAddrA, 80))
			if err != nil {
				b.Fatal(err)
			}
			c, s := connPair(b, ln, func() (net.Conn, error) {
				return nb.DialContextTCPAddrPort(context.Background(), netip.AddrPortFrom(wgAddrA, 80))
			})
			bulk(b, c, s)
			c.Close()
			s.Close()
			ln.Close()
			time.Sleep(50 * time.Millisecond) // let the stacks go quiet: its Close races its writer
			// Closing one ends the join, which closes the other.
			ta.Close()
			wait()
		})
	}
}

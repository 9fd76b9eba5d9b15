package netconn_test

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/netcore-go/netcore/internal/gvisorpair"
	"github.com/netcore-go/netcore/internal/testnet"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// The benchmarks run the same two workloads over netconn (two netcore
// stacks joined by a pipe) and over gVisor's gonet (two gVisor stacks on
// channel endpoints joined by goroutines: MTU 1500, SACK on, the same
// buffer sizes), so that one run shows the ratio.

const streamChunk = 1 << 20 // bytes per op of the throughput benchmarks

// netcoreConns returns a connected netconn pair over two stacks.
func netcoreConns(b *testing.B) (cli, srv net.Conn) {
	p := testnet.NewPair(b)
	c, s := tcpConns(b, p, testnet.AddrB)
	return c, s
}

func BenchmarkConnThroughput(b *testing.B) {
	b.Run("netconn", func(b *testing.B) { benchThroughput(b, netcoreConns) })
	b.Run("gonet", func(b *testing.B) { benchThroughput(b, gonetConns) })
}

func BenchmarkConnRR(b *testing.B) {
	b.Run("netconn", func(b *testing.B) { benchRR(b, netcoreConns) })
	b.Run("gonet", func(b *testing.B) { benchRR(b, gonetConns) })
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// benchThroughput streams b.N MiB with io.Copy from cli to srv.
func benchThroughput(b *testing.B, conns func(*testing.B) (net.Conn, net.Conn)) {
	cli, srv := conns(b)
	total := int64(b.N) * streamChunk
	b.SetBytes(streamChunk)
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(cli, io.LimitReader(zeros{}, total))
		done <- err
	}()
	n, err := io.CopyN(io.Discard, srv, total)
	if err != nil || n != total {
		b.Fatalf("received %d of %d: %v", n, total, err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// benchRR does b.N one-byte request/response exchanges.
func benchRR(b *testing.B, conns func(*testing.B) (net.Conn, net.Conn)) {
	cli, srv := conns(b)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1)
		for {
			if _, err := io.ReadFull(srv, buf); err != nil {
				return
			}
			if _, err := srv.Write(buf); err != nil {
				return
			}
		}
	})
	b.Cleanup(wg.Wait)
	b.Cleanup(func() { cli.Close() })
	buf := make([]byte, 1)
	b.SetBytes(1)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := cli.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(cli, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// gonetConns returns a connected gonet pair over two gVisor stacks.
func gonetConns(b *testing.B) (cli, srv net.Conn) {
	p, err := gvisorpair.New(testnet.AddrA, testnet.AddrB, 1500)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	addrB := gvisorpair.FullAddr(netip.AddrPortFrom(testnet.AddrB, 80))
	ln, err := gonet.ListenTCP(p.B, addrB, ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	cli, err = gonet.DialTCP(p.A, addrB, ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	srv = <-acc
	b.Cleanup(func() { cli.Close(); srv.Close() })
	return cli, srv
}

package netconn_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/netcore-go/netcore/internal/testnet"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
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
	sa, ea := newGStack(b, testnet.AddrA.AsSlice())
	sb, eb := newGStack(b, testnet.AddrB.AsSlice())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { forward(ctx, ea, eb) })
	wg.Go(func() { forward(ctx, eb, ea) })
	b.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, s := range []*stack.Stack{sa, sb} {
			s.Close()
			s.Wait()
		}
	})
	addrB := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFromSlice(testnet.AddrB.AsSlice()), Port: 80}
	ln, err := gonet.ListenTCP(sb, addrB, ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	cli, err = gonet.DialTCP(sa, addrB, ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	srv = <-acc
	b.Cleanup(func() { cli.Close(); srv.Close() })
	return cli, srv
}

// newGStack makes a gVisor stack configured as core configures its own:
// SACK, 1 MiB default buffers growing to 8 MiB, a 4096-packet queue.
func newGStack(b *testing.B, addr []byte) (*stack.Stack, *channel.Endpoint) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	sack := tcpip.TCPSACKEnabled(true)
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4096, Default: 1 << 20, Max: 8 << 20}
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4096, Default: 1 << 20, Max: 8 << 20}
	for _, opt := range []tcpip.SettableTransportProtocolOption{&sack, &snd, &rcv} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			b.Fatal(err)
		}
	}
	ep := channel.New(4096, 1500, "")
	if err := s.CreateNIC(1, ep); err != nil {
		b.Fatal(err)
	}
	pa := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(addr), PrefixLen: 24},
	}
	if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
		b.Fatal(err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}})
	return s, ep
}

// forward copies every packet from's stack sends into to's stack.
func forward(ctx context.Context, from, to *channel.Endpoint) {
	for {
		pkt := from.ReadContext(ctx)
		if pkt == nil {
			return
		}
		v := pkt.ToView()
		in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
		to.InjectInbound(pkt.NetworkProtocolNumber, in)
		in.DecRef()
		pkt.DecRef()
	}
}

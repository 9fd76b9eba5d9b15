package core_test

import (
	"context"
	"io"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// BenchmarkRequestRoundTrip measures a trivial command through the channel
// to a running engine and back.
func BenchmarkRequestRoundTrip(b *testing.B) {
	ns := testnet.Start(b, core.Config{})
	ch := ns.CommandChannel()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ch.Request(ctx, core.NoHandle, core.Nop{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestRoundTripParallel is the same from many goroutines.
func BenchmarkRequestRoundTripParallel(b *testing.B) {
	ns := testnet.Start(b, core.Config{})
	ch := ns.CommandChannel()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ch.Request(ctx, core.NoHandle, core.Nop{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTCPPipe moves bulk TCP between two stacks over the pipe, through
// the raw command channel.
func BenchmarkTCPPipe(b *testing.B) {
	for _, mtu := range []int{1500, 65535} {
		b.Run(map[int]string{1500: "mtu1500", 65535: "mtu65535"}[mtu], func(b *testing.B) {
			benchTCPPipe(b, testnet.NewPair(b, testnet.WithMTU(mtu)))
		})
	}
}

// BenchmarkTCPPipeMedium is BenchmarkTCPPipe at MTU 1500 on each medium,
// side by side: on MediumEthernet every packet carries a 14-byte header,
// and the stacks resolve each other with ARP first.
func BenchmarkTCPPipeMedium(b *testing.B) {
	for _, m := range []core.Medium{core.MediumIP, core.MediumEthernet} {
		b.Run(m.String(), func(b *testing.B) {
			benchTCPPipe(b, testnet.NewPair(b, func(a, bc *core.Config) { a.Medium, bc.Medium = m, m }))
		})
	}
}

// BenchmarkTCPPipePCAP is BenchmarkTCPPipe at MTU 1500 with stack A
// capturing every packet (to io.Discard: the capture's own cost, no disk's).
func BenchmarkTCPPipePCAP(b *testing.B) {
	benchTCPPipe(b, testnet.NewPair(b, func(a, _ *core.Config) { a.PCAP = io.Discard }))
}

func benchTCPPipe(b *testing.B, p testnet.Pair) {
	cli, srv := benchPair(b, p)
	a, bb := p.A.CommandChannel(), p.B.CommandChannel()
	const chunk = 256 << 10
	done := make(chan int64)
	go func() {
		buf := make([]byte, chunk)
		var n int64
		for {
			resp, err := bb.Request(context.Background(), srv, &core.TCPRecv{Buf: buf})
			if err != nil {
				done <- n
				return
			}
			n += int64(resp.(core.TCPRecvd).N)
		}
	}()
	data := make([]byte, chunk)
	send := &core.TCPSend{Buf: data}
	b.SetBytes(chunk)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Request(context.Background(), cli, send); err != nil {
			b.Fatal(err)
		}
	}
	a.Request(context.Background(), cli, core.TCPShutdown{Write: true})
	if n := <-done; n != int64(b.N)*chunk {
		b.Fatalf("received %d, want %d", n, int64(b.N)*chunk)
	}
}

func benchPair(b *testing.B, p testnet.Pair) (core.Handle, core.Handle) {
	a, bb := p.A.CommandChannel(), p.B.CommandChannel()
	ln := do[core.TCPListening](b, bb, core.NoHandle, core.TCPListen{Local: netipB(0)})
	acc := make(chan core.Handle, 1)
	go func() {
		resp, err := bb.Request(context.Background(), ln.Handle, core.TCPAccept{})
		if err != nil {
			acc <- core.NoHandle
			return
		}
		acc <- resp.(core.TCPAccepted).Handle
	}()
	c := do[core.TCPConnected](b, a, core.NoHandle, core.TCPConnect{Remote: ln.Local})
	return c.Handle, <-acc
}

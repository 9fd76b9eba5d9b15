package dialer_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/internal/gvisorpair"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/listener"
)

// BenchmarkConnCycle is netbench's conn workload: a dial with a timeout
// through a Dialer with its defaults (keep-alive on), an Accept on a
// listener with its defaults, and both ends closed, one connection after
// the other; gonet beside it in the same binary.
func BenchmarkConnCycle(b *testing.B) {
	b.Run("netcore", func(b *testing.B) {
		p := testnet.NewPair(b)
		ln, err := listener.Listen(p.B.CommandChannel(), "tcp4", net.JoinHostPort(testnet.AddrB.String(), "0"))
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		d := &dialer.Dialer{Channel: p.A.CommandChannel()}
		to := ln.Addr().String()
		benchCycle(b, ln, func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp4", to) })
	})
	b.Run("gonet", func(b *testing.B) {
		p, err := gvisorpair.New(testnet.AddrA, testnet.AddrB, 1500)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		ln, err := gonet.ListenTCP(p.B, gvisorpair.FullAddr(netip.AddrPortFrom(testnet.AddrB, 80)), ipv4.ProtocolNumber)
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		to := gvisorpair.FullAddr(netip.AddrPortFrom(testnet.AddrB, 80))
		benchCycle(b, ln, func(ctx context.Context) (net.Conn, error) {
			return gonet.DialContextTCP(ctx, p.A, to, ipv4.ProtocolNumber)
		})
	})
}

// benchCycle makes b.N connections to ln with dial, one after the other,
// accepting each on its own goroutine as netbench does, and closes both
// ends.
func benchCycle(b *testing.B, ln net.Listener, dial func(context.Context) (net.Conn, error)) {
	b.ReportAllocs()
	for range b.N {
		acc := make(chan net.Conn, 1)
		go func() { c, _ := ln.Accept(); acc <- c }()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cli, err := dial(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		srv := <-acc
		if srv == nil {
			b.Fatal("accept failed")
		}
		srv.Close()
		cli.Close()
	}
}

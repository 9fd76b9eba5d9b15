// Package testnet builds test topologies of netcore stacks: two stacks
// joined by an in-memory pipe, each driven by Run, closed in tb.Cleanup.
package testnet

import (
	"context"
	"net/netip"
	"testing"

	"github.com/netcore-go/netcore/core"
)

// Default addresses of the two stacks of a Pair.
var (
	AddrA  = netip.MustParseAddr("192.0.2.1")
	AddrB  = netip.MustParseAddr("192.0.2.2")
	Addr6A = netip.MustParseAddr("2001:db8::1")
	Addr6B = netip.MustParseAddr("2001:db8::2")
)

// Pair is two running stacks joined by a pipe.
type Pair struct {
	A, B *core.Netstack
}

// Option changes the configs of a Pair before the stacks are made.
type Option func(a, b *core.Config)

// WithMTU sets both stacks' MTU.
func WithMTU(mtu int) Option {
	return func(a, b *core.Config) { a.MTU, b.MTU = mtu, mtu }
}

// WithEthernet puts both stacks on MediumEthernet: they resolve each
// other with ARP and NDP across the pipe.
func WithEthernet() Option {
	return func(a, b *core.Config) { a.Medium, b.Medium = core.MediumEthernet, core.MediumEthernet }
}

// NewPair makes two stacks (A at 192.0.2.1 and 2001:db8::1, B at .2 and
// ::2), joins them with an unbounded pipe and runs both until tb ends.
func NewPair(tb testing.TB, opts ...Option) Pair {
	tb.Helper()
	ca := core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(AddrA, 24), netip.PrefixFrom(Addr6A, 64)}}
	cb := core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(AddrB, 24), netip.PrefixFrom(Addr6B, 64)}}
	for _, o := range opts {
		o(&ca, &cb)
	}
	a := Start(tb, ca)
	b := Start(tb, cb)
	if err := core.JoinPipe(a, b, 0); err != nil {
		tb.Fatalf("JoinPipe: %v", err)
	}
	return Pair{A: a, B: b}
}

// Start makes one stack from cfg and runs it until tb ends.
func Start(tb testing.TB, cfg core.Config) *core.Netstack {
	tb.Helper()
	ns, err := core.New(cfg)
	if err != nil {
		tb.Fatalf("core.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- ns.Run(context.Background()) }()
	tb.Cleanup(func() {
		ns.Close()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	// One round trip: Run is serving before the test (and its cleanup,
	// whose Close would otherwise beat a Run not yet started) goes on.
	if _, err := ns.CommandChannel().Request(context.Background(), core.NoHandle, core.Nop{}); err != nil {
		tb.Fatalf("first request: %v", err)
	}
	return ns
}

// Stacks makes two running stacks joined by an unbounded pipe, A at
// 192.0.2.1 and B at 192.0.2.2, for Example functions (which have no
// testing.TB): it panics on an error, and stop closes both stacks and
// waits for their Run to return.
func Stacks() (a, b *core.Netstack, stop func()) {
	a = mustNew(netip.PrefixFrom(AddrA, 24))
	b = mustNew(netip.PrefixFrom(AddrB, 24))
	done := make(chan error, 2)
	go func() { done <- a.Run(context.Background()) }()
	go func() { done <- b.Run(context.Background()) }()
	if err := core.JoinPipe(a, b, 0); err != nil {
		panic(err)
	}
	return a, b, func() {
		a.Close()
		b.Close()
		<-done
		<-done
	}
}

func mustNew(prefix netip.Prefix) *core.Netstack {
	ns, err := core.New(core.Config{Addrs: []netip.Prefix{prefix}})
	if err != nil {
		panic(err)
	}
	return ns
}

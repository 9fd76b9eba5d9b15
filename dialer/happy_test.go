package dialer_test

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"go.uber.org/goleak"
)

// TestHappyEyeballs dials names whose IPv6 address is silent (nobody owns
// it, so SYNs go unanswered) and whose IPv4 address answers: the IPv4
// racer starts after FallbackDelay and wins, and the IPv6 attempt is
// cancelled without leaving a socket.
func TestHappyEyeballs(t *testing.T) {
	f := newDNSFixture(t)
	ch := f.p.A.CommandChannel()
	const delay = 100 * time.Millisecond
	for _, tc := range []struct {
		name  string
		hosts map[string][]netip.Addr
	}{
		{"DNS", nil}, // dual.test has AAAA silent6 and A AddrB in the zone
		{"Hosts", map[string][]netip.Addr{"dual.test": {testnet.AddrB, silent6}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := sockets(t, ch)
			d := *f.d
			d.Hosts, d.FallbackDelay = tc.hosts, delay
			start := time.Now()
			c, err := d.Dial("tcp", net.JoinHostPort("dual.test", f.port()))
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			if got := remote(c).Addr(); got != testnet.AddrB {
				t.Errorf("connected to %v, want the IPv4 %v", got, testnet.AddrB)
			}
			if elapsed < delay {
				t.Errorf("connected after %v, before the %v fallback delay", elapsed, delay)
			}
			// Generous: the silent IPv6 attempt alone would take minutes.
			if elapsed > delay+10*time.Second {
				t.Errorf("connected after %v, want about %v", elapsed, delay)
			}
			roundTrip(t, c, "happy")
			wantSockets(t, ch, base+1, 0) // the winner only: the IPv6 attempt is gone
			c.Close()
			wantSockets(t, ch, base, 0)
		})
	}
}

// TestHappyEyeballsFastFallback: when IPv6 fails at once (refused), IPv4
// starts at once rather than after FallbackDelay.
func TestHappyEyeballsFastFallback(t *testing.T) {
	p := newPair(t)
	srv := echoServer(t, p.B.CommandChannel(), "tcp4", testnet.AddrB.String()+":0")
	d := newDialer(p)
	d.FallbackDelay = time.Hour
	d.Hosts = map[string][]netip.Addr{"split.test": {testnet.Addr6B, testnet.AddrB}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("split.test", itoa(srv.Port())))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if got := remote(c).Addr(); got != testnet.AddrB {
		t.Errorf("connected to %v, want %v", got, testnet.AddrB)
	}
}

// TestHappyEyeballsDisabled: a negative FallbackDelay tries the addresses
// in turn, IPv6 first, each with its share of the time left.
func TestHappyEyeballsDisabled(t *testing.T) {
	p := newPair(t)
	srv := echoServer(t, p.B.CommandChannel(), "tcp", ":0")
	d := newDialer(p)
	d.FallbackDelay = -1
	d.Hosts = map[string][]netip.Addr{"dual.test": {testnet.AddrB, testnet.Addr6B}}
	c, err := d.Dial("tcp", net.JoinHostPort("dual.test", itoa(srv.Port())))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if got := remote(c).Addr(); got != testnet.Addr6B {
		t.Errorf("connected to %v, want the IPv6 %v first", got, testnet.Addr6B)
	}
}

// TestHappyEyeballsBothFail returns the IPv6 (primary) error.
func TestHappyEyeballsBothFail(t *testing.T) {
	p := newPair(t)
	ch := p.A.CommandChannel()
	base := sockets(t, ch)
	d := newDialer(p)
	d.Hosts = map[string][]netip.Addr{"dual.test": {testnet.AddrB, testnet.Addr6B}}
	c, err := d.Dial("tcp", "dual.test:1")
	op := wantOpError(t, c, err, "tcp")
	if a, ok := op.Addr.(*net.TCPAddr); !ok || a.AddrPort().Addr() != testnet.Addr6B {
		t.Errorf("OpError.Addr = %v, want the IPv6 address", op.Addr)
	}
	wantIs(syscall.ECONNREFUSED)(t, op)
	wantSockets(t, ch, base, 0)
}

// TestHappyEyeballsIPv4OnlyStack: on a stack with no IPv6 address, the
// IPv6 racer fails at once with ENETUNREACH (no loopback source is chosen
// for it), so a dual-stack name dials IPv4 at once, not after
// FallbackDelay.
func TestHappyEyeballsIPv4OnlyStack(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	p := testnet.NewPair(t, func(a, b *core.Config) {
		a.Addrs = []netip.Prefix{netip.PrefixFrom(testnet.AddrA, 24)}
	})
	srv := echoServer(t, p.B.CommandChannel(), "tcp4", testnet.AddrB.String()+":0")
	d := newDialer(p)
	d.FallbackDelay = time.Hour
	d.Hosts = map[string][]netip.Addr{"dual.test": {testnet.Addr6B, testnet.AddrB}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("dual.test", itoa(srv.Port())))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if got := remote(c).Addr(); got != testnet.AddrB {
		t.Errorf("connected to %v, want %v", got, testnet.AddrB)
	}
	roundTrip(t, c, "v4 at once")
}

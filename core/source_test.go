package core_test

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// v4Only and v6Only give both stacks of a Pair addresses of one family.
func v4Only(a, b *core.Config) {
	a.Addrs = []netip.Prefix{netip.PrefixFrom(testnet.AddrA, 24)}
	b.Addrs = []netip.Prefix{netip.PrefixFrom(testnet.AddrB, 24)}
}

func v6Only(a, b *core.Config) {
	a.Addrs = []netip.Prefix{netip.PrefixFrom(testnet.Addr6A, 64)}
	b.Addrs = []netip.Prefix{netip.PrefixFrom(testnet.Addr6B, 64)}
}

// TestNoLoopbackSource: a stack with no address of a family never sends
// from a loopback address to a destination of that family; the dial or
// the unbound send fails at once with ENETUNREACH and no packet leaves.
func TestNoLoopbackSource(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct {
		name   string
		opt    testnet.Option
		remote netip.Addr
		any    netip.Addr // an unbound local address of the remote's family
	}{
		{"IPv4 stack to IPv6", v4Only, testnet.Addr6B, netip.IPv6Unspecified()},
		{"IPv6 stack to IPv4", v6Only, testnet.AddrB, netip.IPv4Unspecified()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testnet.NewPair(t, tc.opt)
			a := p.A.CommandChannel()
			before := do[core.Stats](t, a, core.NoHandle, core.GetStats{}).PacketsOut
			_, err := try(a, core.NoHandle, core.TCPConnect{Remote: netip.AddrPortFrom(tc.remote, 80)})
			if !errors.Is(err, syscall.ENETUNREACH) {
				t.Fatalf("connect: err = %v, want ENETUNREACH", err)
			}
			u := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(tc.any, 0)})
			_, err = try(a, u.Handle, core.UDPSend{To: netip.AddrPortFrom(tc.remote, 53), Buf: []byte("x")})
			if !errors.Is(err, syscall.ENETUNREACH) {
				t.Fatalf("unbound send: err = %v, want ENETUNREACH", err)
			}
			st := do[core.Stats](t, a, core.NoHandle, core.GetStats{})
			if st.PacketsOut != before {
				t.Errorf("%d packets left the device, want 0", st.PacketsOut-before)
			}
			if st.TCPStreams != 0 {
				t.Errorf("%d streams left after the failed connect, want 0", st.TCPStreams)
			}
		})
	}
}

// TestLoopbackStillWorks: on a stack with no address at all, loopback
// traffic keeps its loopback source, unbound or bound.
func TestLoopbackStillWorks(t *testing.T) {
	leakCheck(t)
	ns := testnet.Start(t, core.Config{})
	ch := ns.CommandChannel()
	for _, lo := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()} {
		ln := do[core.TCPListening](t, ch, core.NoHandle, core.TCPListen{Local: netip.AddrPortFrom(lo, 0)})
		acc := make(chan error, 1)
		go func() { _, err := try(ch, ln.Handle, core.TCPAccept{}); acc <- err }()
		c := do[core.TCPConnected](t, ch, core.NoHandle, core.TCPConnect{Remote: ln.Local})
		if c.Local.Addr() != lo {
			t.Errorf("connected from %v, want %v", c.Local, lo)
		}
		if err := <-acc; err != nil {
			t.Fatalf("accept: %v", err)
		}
		do[core.OK](t, ch, ln.Handle, core.CloseSocket{})
		do[core.OK](t, ch, c.Handle, core.CloseSocket{})
	}
}

// TestDualStackLocalPortToIPv4: a connect from [::]:port to an IPv4 peer
// keeps the requested port, as the kernel does for a dual-stack socket.
func TestDualStackLocalPortToIPv4(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	ln := do[core.TCPListening](t, b, core.NoHandle, core.TCPListen{Local: netip.AddrPortFrom(testnet.AddrB, 0)})
	acc := make(chan core.TCPAccepted, 1)
	go func() {
		resp, err := try(b, ln.Handle, core.TCPAccept{})
		if err != nil {
			t.Errorf("accept: %v", err)
		}
		acc <- resp.(core.TCPAccepted)
	}()
	const port = 5000
	c := do[core.TCPConnected](t, a, core.NoHandle, core.TCPConnect{
		Local: netip.AddrPortFrom(netip.IPv6Unspecified(), port), Remote: ln.Local})
	if c.Local.Port() != port || c.Local.Addr() != testnet.AddrA {
		t.Errorf("connected from %v, want %v:%d", c.Local, testnet.AddrA, port)
	}
	if s := <-acc; s.Remote.Port() != port {
		t.Errorf("server sees %v, want port %d", s.Remote, port)
	}
}

package core_test

import (
	"context"
	"crypto/sha256"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"go.uber.org/goleak"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// do sends cmd and returns its typed response, failing the test on error.
func do[T core.Response](t testing.TB, ch core.Channel, h core.Handle, cmd core.Command) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := ch.Request(ctx, h, cmd)
	if err != nil {
		t.Fatalf("%T: %v", cmd, err)
	}
	r, ok := resp.(T)
	if !ok {
		t.Fatalf("%T answered %T, want %T", cmd, resp, *new(T))
	}
	return r
}

// try sends cmd and returns the raw response and error.
func try(ch core.Channel, h core.Handle, cmd core.Command) (core.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return ch.Request(ctx, h, cmd)
}

func leakCheck(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// tcpPair returns a connected stream: client on A, server (accepted) on B.
func tcpPair(t *testing.T, p testnet.Pair, server netip.Addr) (cli, srv core.Handle) {
	t.Helper()
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	ln := do[core.TCPListening](t, b, core.NoHandle, core.TCPListen{Local: netip.AddrPortFrom(server, 0)})
	acc := make(chan core.TCPAccepted, 1)
	go func() {
		resp, err := try(b, ln.Handle, core.TCPAccept{})
		if err != nil {
			t.Errorf("accept: %v", err)
			close(acc)
			return
		}
		acc <- resp.(core.TCPAccepted)
	}()
	c := do[core.TCPConnected](t, a, core.NoHandle, core.TCPConnect{Remote: ln.Local})
	s, ok := <-acc
	if !ok {
		t.FailNow()
	}
	if s.Remote != c.Local || c.Remote != s.Local {
		t.Fatalf("accepted %v<-%v, connected %v->%v", s.Local, s.Remote, c.Local, c.Remote)
	}
	do[core.OK](t, b, ln.Handle, core.CloseSocket{})
	return c.Handle, s.Handle
}

func addr(a netip.Addr) tcpip.Address { return tcpip.AddrFromSlice(a.AsSlice()) }

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func netipB(port uint16) netip.AddrPort { return netip.AddrPortFrom(testnet.AddrB, port) }
func netipA(port uint16) netip.AddrPort { return netip.AddrPortFrom(testnet.AddrA, port) }

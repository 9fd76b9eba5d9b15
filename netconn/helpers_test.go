package netconn_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
	"go.uber.org/goleak"
)

// newPair registers the leak check first, so that it runs after the
// pair's own cleanup has stopped both stacks.
func newPair(t testing.TB) testnet.Pair {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
	return testnet.NewPair(t)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// tcpConns returns a connected pair: cli dialled from stack A, srv
// accepted on stack B at server (port 0: ephemeral).
func tcpConns(t testing.TB, p testnet.Pair, server netip.Addr) (cli, srv *netconn.TCPConn) {
	t.Helper()
	ctx := testCtx(t)
	ln, err := netconn.ListenTCP(ctx, p.B.CommandChannel(), "tcp", netip.AddrPortFrom(server, 0), 0)
	if err != nil {
		t.Fatalf("ListenTCP: %v", err)
	}
	defer ln.Close()
	type res struct {
		c   *netconn.TCPConn
		err error
	}
	acc := make(chan res, 1)
	go func() {
		c, err := ln.AcceptTCP()
		acc <- res{c, err}
	}()
	cli, err = netconn.DialTCP(ctx, p.A.CommandChannel(), "tcp", netip.AddrPort{}, ln.AddrPort())
	if err != nil {
		t.Fatalf("DialTCP: %v", err)
	}
	r := <-acc
	if r.err != nil {
		t.Fatalf("AcceptTCP: %v", r.err)
	}
	t.Cleanup(func() { cli.Close(); r.c.Close() })
	return cli, r.c
}

// udpConns returns two UDP sockets connected to each other, a on stack A
// and b on stack B.
func udpConns(t testing.TB, p testnet.Pair) (a, b *netconn.UDPConn) {
	t.Helper()
	ctx := testCtx(t)
	b, err := netconn.ListenUDP(ctx, p.B.CommandChannel(), "udp", netip.AddrPortFrom(testnet.AddrB, 0))
	if err != nil {
		t.Fatalf("ListenUDP: %v", err)
	}
	a, err = netconn.DialUDP(ctx, p.A.CommandChannel(), "udp", netip.AddrPort{}, b.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		t.Fatalf("DialUDP: %v", err)
	}
	b.Close()
	b, err = netconn.DialUDP(ctx, p.B.CommandChannel(), "udp", b.LocalAddr().(*net.UDPAddr).AddrPort(), a.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		t.Fatalf("DialUDP back: %v", err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// checkOpError checks the shape Go's net package gives errors: a
// *net.OpError with Op and Net set, wrapping (once) an error that matches
// want.
func checkOpError(t testing.TB, err error, op string, want error) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("err = %#v (%v), want *net.OpError", err, err)
	}
	if oe.Op != op || oe.Net == "" {
		t.Errorf("OpError Op=%q Net=%q, want Op=%q and a network", oe.Op, oe.Net, op)
	}
	var inner *net.OpError
	if errors.As(oe.Err, &inner) {
		t.Errorf("OpError wraps another OpError: %v", err)
	}
	if !errors.Is(err, want) {
		t.Errorf("err = %v, want it to match %v", err, want)
	}
	if want == os.ErrDeadlineExceeded && !oe.Timeout() {
		t.Errorf("%v: Timeout() = false, want true", err)
	}
	if errors.Is(err, io.EOF) {
		t.Errorf("err = %v wraps io.EOF", err)
	}
}

// errDeadline is os.ErrDeadlineExceeded, for tables.
var errDeadline = os.ErrDeadlineExceeded

func goleakVerify(t testing.TB) { goleak.VerifyNone(t) }

func coreConfigV4Only() core.Config {
	return core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrA, 24)}, DisableLoopback: true}
}

// sockets returns how many sockets ns has open.
func sockets(t testing.TB, ns *core.Netstack) int {
	t.Helper()
	resp, err := ns.CommandChannel().Request(testCtx(t), core.NoHandle, core.GetStats{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.(core.Stats).Sockets
}

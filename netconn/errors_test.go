package netconn_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
)

// TestCloseWakesBlocked checks that Close wakes a blocked Read, Write and
// Accept with net.ErrClosed, and that later calls and a second Close fail
// the same way.
func TestCloseWakesBlocked(t *testing.T) {
	p := newPair(t)
	cli, _ := tcpConns(t, p, testnet.AddrB)
	readErr := make(chan error, 1)
	go func() { _, err := cli.Read(make([]byte, 10)); readErr <- err }()
	writeErr := make(chan error, 1)
	go func() { _, err := cli.Write(make([]byte, 64<<20)); writeErr <- err }()
	time.Sleep(100 * time.Millisecond)
	if err := cli.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkOpError(t, <-readErr, "read", net.ErrClosed)
	checkOpError(t, <-writeErr, "write", net.ErrClosed)
	_, err := cli.Read(make([]byte, 1))
	checkOpError(t, err, "read", net.ErrClosed)
	_, err = cli.Write([]byte("x"))
	checkOpError(t, err, "write", net.ErrClosed)
	checkOpError(t, cli.Close(), "close", net.ErrClosed)
	checkOpError(t, cli.SetDeadline(time.Now()), "set", net.ErrClosed)
	checkOpError(t, cli.CloseWrite(), "close", net.ErrClosed)
}

func TestListenerCloseWakesAccept(t *testing.T) {
	p := newPair(t)
	ln, err := netconn.ListenTCP(testCtx(t), p.B.CommandChannel(), "tcp", netip.AddrPort{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { _, err := ln.Accept(); res <- err }()
	time.Sleep(50 * time.Millisecond)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	checkOpError(t, <-res, "accept", net.ErrClosed)
	_, err = ln.Accept()
	checkOpError(t, err, "accept", net.ErrClosed)
	checkOpError(t, ln.Close(), "close", net.ErrClosed)
}

func TestListenerDeadline(t *testing.T) {
	p := newPair(t)
	ln, err := netconn.ListenTCP(testCtx(t), p.B.CommandChannel(), "tcp4", netip.AddrPort{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a := ln.AddrPort(); !a.Addr().Is4() || !a.Addr().IsUnspecified() || a.Port() == 0 {
		t.Fatalf("tcp4 listener on %v, want 0.0.0.0 and a port", a)
	}
	ln.SetDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err = ln.Accept()
	checkOpError(t, err, "accept", errDeadline)
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("Accept timed out after %v, before its deadline", d)
	}
	// Clear while blocked, then a connection comes.
	growTimeout(t, 50*time.Millisecond, func(d time.Duration) (time.Duration, bool) {
		start := time.Now()
		ln.SetDeadline(start.Add(d))
		res := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Close()
			}
			res <- err
		}()
		blocked := waitParked(t, p.B, 1, start.Add(d))
		ln.SetDeadline(time.Time{})
		if took := time.Since(start); !blocked || took >= d {
			ln.SetDeadline(time.Now())
			checkOpError(t, <-res, "accept", errDeadline)
			ln.SetDeadline(time.Time{})
			return took, false
		}
		time.Sleep(4 * d) // well past the deadline that was cleared
		c, err := netconn.DialTCP(testCtx(t), p.A.CommandChannel(), "tcp", netip.AddrPort{}, netip.AddrPortFrom(testnet.AddrB, ln.AddrPort().Port()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := <-res; err != nil {
			t.Fatalf("Accept after the deadline was cleared: %v", err)
		}
		return 0, true
	})
}

// TestDualStackListener checks that a "tcp" listener on the zero address
// takes IPv4 and IPv6 connections.
func TestDualStackListener(t *testing.T) {
	p := newPair(t)
	ln, err := netconn.ListenTCP(testCtx(t), p.B.CommandChannel(), "tcp", netip.AddrPort{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.AddrPort().Port()
	for _, a := range []netip.Addr{testnet.AddrB, testnet.Addr6B} {
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
			}
		}()
		c, err := netconn.DialTCP(testCtx(t), p.A.CommandChannel(), "tcp", netip.AddrPort{}, netip.AddrPortFrom(a, port))
		if err != nil {
			t.Fatalf("dial %v: %v", a, err)
		}
		if got := c.RemoteAddrPort().Addr(); got != a {
			t.Errorf("remote %v, want %v", got, a)
		}
		c.Close()
	}
}

func TestEOFOnlyFromPeer(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	srv.Close()
	if n, err := cli.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read after peer Close = %d, %#v; want 0, io.EOF unwrapped", n, err)
	}
	cli.Close()
	_, err := cli.Read(make([]byte, 1))
	checkOpError(t, err, "read", net.ErrClosed)
}

// TestCloseAfterStackClosed checks that closing conns of a closed stack is
// clean, and that their calls then fail with net.ErrClosed.
func TestCloseAfterStackClosed(t *testing.T) {
	p := newPair(t)
	cli, _ := tcpConns(t, p, testnet.AddrB)
	ua, _ := udpConns(t, p)
	ln, err := netconn.ListenTCP(testCtx(t), p.A.CommandChannel(), "tcp", netip.AddrPort{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() { _, err := cli.Read(make([]byte, 1)); readErr <- err }()
	time.Sleep(20 * time.Millisecond)
	p.A.Close()
	checkOpError(t, <-readErr, "read", net.ErrClosed)
	_, err = ua.Write([]byte("x"))
	checkOpError(t, err, "write", net.ErrClosed)
	for _, c := range []io.Closer{cli, ua, ln} {
		if err := c.Close(); err != nil {
			t.Errorf("%T.Close after the stack closed: %v", c, err)
		}
	}
}

func TestAddrInUse(t *testing.T) {
	p := newPair(t)
	ch, ctx := p.B.CommandChannel(), testCtx(t)
	ln, err := netconn.ListenTCP(ctx, ch, "tcp", netip.AddrPortFrom(testnet.AddrB, 8080), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = netconn.ListenTCP(ctx, ch, "tcp", netip.AddrPortFrom(testnet.AddrB, 8080), 0)
	checkOpError(t, err, "listen", syscall.EADDRINUSE)
	u, err := netconn.ListenUDP(ctx, ch, "udp", netip.AddrPortFrom(testnet.AddrB, 53))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_, err = netconn.ListenUDP(ctx, ch, "udp", netip.AddrPortFrom(testnet.AddrB, 53))
	checkOpError(t, err, "listen", syscall.EADDRINUSE)
}

// TestDialCancelLeavesNoSocket dials an address that never answers and
// cancels: no socket is left on the stack.
func TestDialCancelLeavesNoSocket(t *testing.T) {
	p := newPair(t)
	ch := p.A.CommandChannel()
	silent := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.99"), 80)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := netconn.DialTCP(ctx, ch, "tcp", netip.AddrPort{}, silent)
	checkOpError(t, err, "dial", context.DeadlineExceeded)
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	_, err = netconn.DialTCP(ctx2, ch, "tcp", netip.AddrPort{}, silent)
	checkOpError(t, err, "dial", context.Canceled)
	if n := sockets(t, p.A); n != 0 {
		t.Fatalf("%d sockets left after cancelled dials", n)
	}
}

// TestUnreachable checks ENETUNREACH / EHOSTUNREACH from a stack with no
// IPv6 address dialling IPv6.
func TestUnreachable(t *testing.T) {
	t.Cleanup(func() { goleakVerify(t) })
	v4only := testnet.Start(t, coreConfigV4Only())
	_, err := netconn.DialTCP(testCtx(t), v4only.CommandChannel(), "tcp", netip.AddrPort{}, netip.AddrPortFrom(testnet.Addr6B, 80))
	var oe *net.OpError
	if !errors.As(err, &oe) || !(errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH)) {
		t.Fatalf("dial IPv6 from an IPv4-only stack: %v, want ENETUNREACH or EHOSTUNREACH", err)
	}
	t.Logf("got %v", err)
}

// TestDialRaceLeavesNoSocket dials a listener with deadlines short enough
// to land anywhere in the handshake: every dial either succeeds or leaves
// no socket behind.
func TestDialRaceLeavesNoSocket(t *testing.T) {
	p := newPair(t)
	ln, err := netconn.ListenTCP(testCtx(t), p.B.CommandChannel(), "tcp", netip.AddrPort{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	to := netip.AddrPortFrom(testnet.AddrB, ln.AddrPort().Port())
	ok, failed := 0, 0
	for i := range 300 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%30)*20*time.Microsecond)
		c, err := netconn.DialTCP(ctx, p.A.CommandChannel(), "tcp", netip.AddrPort{}, to)
		cancel()
		if err != nil {
			failed++
			continue
		}
		ok++
		c.Close()
	}
	if n := sockets(t, p.A); n != 0 {
		t.Fatalf("%d sockets left on the dialling stack (%d dials ok, %d cut)", n, ok, failed)
	}
	t.Logf("%d dials ok, %d cut", ok, failed)
}

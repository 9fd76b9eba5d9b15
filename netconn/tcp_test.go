package netconn_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
	"go.uber.org/goleak"
	"golang.org/x/net/nettest"
)

func TestTCPNettest(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr netip.Addr
	}{{"IPv4", testnet.AddrB}, {"IPv6", testnet.Addr6B}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t)
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				cli, srv := tcpConns(t, p, tc.addr)
				return cli, srv, func() { cli.Close(); srv.Close() }, nil
			})
		})
	}
}

// TestTCPNettestEthernet is TestTCPNettest between two stacks on
// MediumEthernet, which resolve each other with ARP and NDP.
func TestTCPNettestEthernet(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr netip.Addr
	}{{"IPv4", testnet.AddrB}, {"IPv6", testnet.Addr6B}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) })
			p := testnet.NewPair(t, testnet.WithEthernet())
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				cli, srv := tcpConns(t, p, tc.addr)
				return cli, srv, func() { cli.Close(); srv.Close() }, nil
			})
		})
	}
}

func TestTCPAddrs(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	for _, a := range []net.Addr{cli.LocalAddr(), cli.RemoteAddr(), srv.LocalAddr(), srv.RemoteAddr()} {
		if ta, ok := a.(*net.TCPAddr); !ok || ta == nil || ta.Port == 0 {
			t.Fatalf("addr %#v, want a *net.TCPAddr with a port", a)
		}
	}
	if cli.LocalAddr().String() != srv.RemoteAddr().String() || cli.RemoteAddr().String() != srv.LocalAddr().String() {
		t.Fatalf("client %v->%v, server %v<-%v", cli.LocalAddr(), cli.RemoteAddr(), srv.LocalAddr(), srv.RemoteAddr())
	}
	cli.Close()
	if cli.LocalAddr() == nil || cli.RemoteAddr() == nil {
		t.Fatal("address nil after Close")
	}
}

func TestTCPHalfClose(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	msg := []byte("request")
	if _, err := cli.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := cli.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	got, err := io.ReadAll(srv)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("server read %q, %v; want %q, nil", got, err, msg)
	}
	if _, err := srv.Write([]byte("reply")); err != nil {
		t.Fatalf("server write after peer CloseWrite: %v", err)
	}
	srv.CloseWrite()
	got, err = io.ReadAll(cli)
	if err != nil || string(got) != "reply" {
		t.Fatalf("client read %q, %v; want reply", got, err)
	}
	_, err = cli.Write(msg)
	checkOpError(t, err, "write", syscall.EPIPE)
}

func TestTCPCloseRead(t *testing.T) {
	p := newPair(t)
	cli, _ := tcpConns(t, p, testnet.AddrB)
	if err := cli.CloseRead(); err != nil {
		t.Fatalf("CloseRead: %v", err)
	}
	if n, err := cli.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read after CloseRead = %d, %v; want 0, io.EOF", n, err)
	}
}

func TestTCPCopyLarge(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.Addr6B)
	want := make([]byte, 8<<20)
	rand.Read(want)
	go func() {
		io.Copy(cli, bytes.NewReader(want)) // ReadFrom
		cli.CloseWrite()
	}()
	var got bytes.Buffer
	n, err := io.Copy(&got, srv) // WriteTo
	if err != nil || n != int64(len(want)) || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("copied %d, %v; equal %v", n, err, bytes.Equal(got.Bytes(), want))
	}
}

// TestTCPConcurrentWrites checks that concurrent Writes never interleave.
func TestTCPConcurrentWrites(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	const writers, size = 8, 256 << 10
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if _, err := cli.Write(bytes.Repeat([]byte{byte('a' + i)}, size)); err != nil {
				t.Error(err)
			}
		})
	}
	go func() { wg.Wait(); cli.CloseWrite() }()
	got, err := io.ReadAll(srv)
	if err != nil || len(got) != writers*size {
		t.Fatalf("read %d, %v; want %d", len(got), err, writers*size)
	}
	for off := 0; off < len(got); off += size {
		if c := bytes.Count(got[off:off+size], got[off:off+1]); c != size {
			t.Fatalf("block at %d interleaved: %d of %d bytes are %q", off, c, size, got[off])
		}
	}
}

func TestTCPOptions(t *testing.T) {
	p := newPair(t)
	cli, _ := tcpConns(t, p, testnet.AddrB)
	steps := []struct {
		name string
		f    func() error
	}{
		{"SetNoDelay", func() error { return cli.SetNoDelay(false) }},
		{"SetKeepAlive", func() error { return cli.SetKeepAlive(true) }},
		{"SetKeepAlivePeriod", func() error { return cli.SetKeepAlivePeriod(30 * time.Second) }},
		{"SetKeepAliveConfig", func() error {
			return cli.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: time.Minute, Interval: -1, Count: 3})
		}},
		{"SetLinger", func() error { return cli.SetLinger(5) }},
		{"SetReadBuffer", func() error { return cli.SetReadBuffer(128 << 10) }},
		{"SetWriteBuffer", func() error { return cli.SetWriteBuffer(128 << 10) }},
	}
	for _, s := range steps {
		if err := s.f(); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
	}
	checkOpError(t, cli.SetReadBuffer(-1), "set", syscall.EINVAL)
	cli.Close()
	for _, s := range steps {
		checkOpError(t, s.f(), "set", net.ErrClosed)
	}
}

// TestTCPLingerZeroResets checks that Close after SetLinger(0) resets the
// stream and the peer's Read reports ECONNRESET.
func TestTCPLingerZeroResets(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	if err := cli.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	_, err := srv.Read(make([]byte, 10))
	checkOpError(t, err, "read", syscall.ECONNRESET)
}

func TestTCPDialErrors(t *testing.T) {
	p := newPair(t)
	ch := p.A.CommandChannel()
	ctx := testCtx(t)
	_, err := netconn.DialTCP(ctx, ch, "tcp", netip.AddrPort{}, netip.AddrPortFrom(testnet.AddrB, 9))
	checkOpError(t, err, "dial", syscall.ECONNREFUSED)
	_, err = netconn.DialTCP(ctx, ch, "tcp6", netip.AddrPort{}, netip.AddrPortFrom(testnet.AddrB, 9))
	var ae *net.AddrError
	if !errors.As(err, &ae) {
		t.Errorf("tcp6 to IPv4: %v, want *net.AddrError", err)
	}
	_, err = netconn.DialTCP(ctx, ch, "tcp7", netip.AddrPort{}, netip.AddrPortFrom(testnet.AddrB, 9))
	var ue net.UnknownNetworkError
	if !errors.As(err, &ue) {
		t.Errorf("tcp7: %v, want net.UnknownNetworkError", err)
	}
}

// TestAcceptErrorReturnsNilConn checks that a failed Accept, seen through
// net.Listener, returns a nil net.Conn (not a nil *TCPConn in one): past
// its deadline and after Close.
func TestAcceptErrorReturnsNilConn(t *testing.T) {
	p := newPair(t)
	tl, err := netconn.ListenTCP(testCtx(t), p.B.CommandChannel(), "tcp", netip.AddrPort{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener = tl
	tl.SetDeadline(time.Now().Add(-time.Second))
	c, err := ln.Accept()
	if c != nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Accept past its deadline = %#v, %v; want nil and a deadline error", c, err)
	}
	ln.Close()
	c, err = ln.Accept()
	if c != nil || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %#v, %v; want nil and net.ErrClosed", c, err)
	}
}

package netconn_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
)

func TestUDPRoundTrip(t *testing.T) {
	p := newPair(t)
	ctx := testCtx(t)
	for _, tc := range []struct {
		network string
		addr    netip.Addr
	}{{"udp", testnet.AddrB}, {"udp", testnet.Addr6B}, {"udp4", testnet.AddrB}, {"udp6", testnet.Addr6B}} {
		t.Run(tc.network+"/"+tc.addr.String(), func(t *testing.T) {
			srv, err := netconn.ListenUDP(ctx, p.B.CommandChannel(), tc.network, netip.AddrPort{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			if srv.RemoteAddr() != nil {
				t.Errorf("unconnected RemoteAddr = %v, want nil", srv.RemoteAddr())
			}
			to := netip.AddrPortFrom(tc.addr, srv.LocalAddr().(*net.UDPAddr).AddrPort().Port())
			cli, err := netconn.DialUDP(ctx, p.A.CommandChannel(), tc.network, netip.AddrPort{}, to)
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			if _, err := cli.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[:n]) != "ping" || from != cli.LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("ReadFromUDPAddrPort = %q, %v, %v; want ping from %v", buf[:n], from, err, cli.LocalAddr())
			}
			if _, err := srv.WriteToUDPAddrPort([]byte("pong"), from); err != nil {
				t.Fatal(err)
			}
			n, err = cli.Read(buf)
			if err != nil || string(buf[:n]) != "pong" {
				t.Fatalf("Read = %q, %v; want pong", buf[:n], err)
			}
		})
	}
}

// TestUDPTruncation checks that a datagram longer than the buffer fills it
// and the rest is discarded: the next read gets the next datagram.
func TestUDPTruncation(t *testing.T) {
	p := newPair(t)
	a, b := udpConns(t, p)
	long := bytes.Repeat([]byte("0123456789"), 100)
	a.Write(long)
	a.Write([]byte("next"))
	buf := make([]byte, 16)
	n, err := b.Read(buf)
	if err != nil || n != len(buf) || !bytes.Equal(buf, long[:16]) {
		t.Fatalf("Read = %d %q, %v; want the first 16 bytes", n, buf[:n], err)
	}
	n, err = b.Read(buf)
	if err != nil || string(buf[:n]) != "next" {
		t.Fatalf("second Read = %q, %v; want next", buf[:n], err)
	}
	// A zero-length read takes a datagram and returns 0.
	a.Write([]byte("gone"))
	a.Write([]byte("kept"))
	if n, err := b.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
	if n, _ := b.Read(buf); string(buf[:n]) != "kept" {
		t.Fatalf("after Read(nil) got %q, want kept", buf[:n])
	}
}

func TestUDPErrors(t *testing.T) {
	p := newPair(t)
	a, _ := udpConns(t, p)
	_, err := a.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 1})
	checkOpError(t, err, "write", net.ErrWriteToConnected)
	u, err := netconn.ListenUDP(testCtx(t), p.A.CommandChannel(), "udp4", netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = u.WriteTo([]byte("x"), &net.TCPAddr{})
	checkOpError(t, err, "write", syscall.EINVAL)
	_, err = u.Write([]byte("x"))
	checkOpError(t, err, "write", syscall.ENOTCONN)
	_, err = u.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP("2001:db8::2"), Port: 1})
	checkOpError(t, err, "write", syscall.EAFNOSUPPORT)
	u.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, _, err = u.ReadFrom(make([]byte, 10))
	checkOpError(t, err, "read", os.ErrDeadlineExceeded)
	res := make(chan error, 1)
	u.SetReadDeadline(time.Time{})
	go func() { _, _, err := u.ReadFrom(make([]byte, 10)); res <- err }()
	time.Sleep(20 * time.Millisecond)
	u.Close()
	checkOpError(t, <-res, "read", net.ErrClosed)
	checkOpError(t, u.Close(), "close", net.ErrClosed)
	_, err = netconn.DialUDP(testCtx(t), p.A.CommandChannel(), "udp", netip.AddrPort{}, netip.AddrPortFrom(testnet.AddrB, 0))
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		t.Fatalf("dial port 0: %v, want a dial OpError", err)
	}
}

// TestUDPWriteDeadline checks that a past write deadline fails at once.
func TestUDPWriteDeadline(t *testing.T) {
	p := newPair(t)
	a, _ := udpConns(t, p)
	a.SetWriteDeadline(time.Now().Add(-time.Second))
	n, err := a.Write([]byte("x"))
	if n != 0 {
		t.Errorf("n = %d, want 0", n)
	}
	checkOpError(t, err, "write", os.ErrDeadlineExceeded)
	a.SetWriteDeadline(time.Time{})
	if _, err := a.Write([]byte("x")); err != nil {
		t.Fatalf("Write after clearing the deadline: %v", err)
	}
}

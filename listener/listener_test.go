package listener_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
	"go.uber.org/goleak"
)

func newPair(t *testing.T) testnet.Pair {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	return testnet.NewPair(t)
}

func dial(t *testing.T, p testnet.Pair, to netip.AddrPort) *netconn.TCPConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := netconn.DialTCP(ctx, p.A.CommandChannel(), "tcp", netip.AddrPort{}, to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestListen(t *testing.T) {
	p := newPair(t)
	for _, tc := range []struct {
		network, address string
		dialTo           netip.Addr
		wantLocal        netip.Addr // unspecified: any of its family
	}{
		{"tcp", ":0", testnet.AddrB, netip.IPv6Unspecified()},
		{"tcp", ":0", testnet.Addr6B, netip.IPv6Unspecified()},
		{"tcp4", ":0", testnet.AddrB, netip.IPv4Unspecified()},
		{"tcp6", "[::]:0", testnet.Addr6B, netip.IPv6Unspecified()},
		{"tcp", "192.0.2.2:0", testnet.AddrB, testnet.AddrB},
		{"tcp6", "[2001:db8::2]:8443", testnet.Addr6B, testnet.Addr6B},
	} {
		t.Run(tc.network+"/"+tc.address+"/"+tc.dialTo.String(), func(t *testing.T) {
			ln, err := listener.Listen(p.B.CommandChannel(), tc.network, tc.address)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			addr := ln.Addr().(*net.TCPAddr).AddrPort()
			if addr.Addr() != tc.wantLocal || addr.Port() == 0 {
				t.Fatalf("listening on %v, want %v and a port", addr, tc.wantLocal)
			}
			c := dial(t, p, netip.AddrPortFrom(tc.dialTo, addr.Port()))
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			c.Write([]byte("hi"))
			c.CloseWrite()
			if b, err := io.ReadAll(s); err != nil || string(b) != "hi" {
				t.Fatalf("read %q, %v", b, err)
			}
		})
	}
}

// TestListenErrors checks error shapes as Go's net/error_test.go does: a
// *net.OpError with Op "listen" around UnknownNetworkError or AddrError.
func TestListenErrors(t *testing.T) {
	p := newPair(t)
	ch := p.B.CommandChannel()
	for _, tc := range []struct {
		network, address string
		want             any // *net.AddrError or net.UnknownNetworkError
	}{
		{"tcp5", ":0", net.UnknownNetworkError("")},
		{"udp", ":0", net.UnknownNetworkError("")}, // Listen is for streams
		{"tcp", "no-port", &net.AddrError{}},
		{"tcp", "[::1", &net.AddrError{}},
		{"tcp", ":http-alt", &net.AddrError{}},
		{"tcp", ":99999", &net.AddrError{}},
		{"tcp", "localhost:80", &net.AddrError{}},
		{"tcp4", "[2001:db8::2]:80", &net.AddrError{}},
		{"tcp6", "192.0.2.2:80", &net.AddrError{}},
		{"tcp", "[fe80::1%eth0]:80", &net.AddrError{}},
	} {
		_, err := listener.Listen(ch, tc.network, tc.address)
		checkListenError(t, tc.network+" "+tc.address, err, tc.want)
	}
	for _, tc := range []struct {
		network, address string
		want             any
	}{
		{"udp7", ":0", net.UnknownNetworkError("")},
		{"tcp", ":0", net.UnknownNetworkError("")},
		{"udp4", "[::]:0", &net.AddrError{}},
		{"ping4", "not-an-ip", &net.AddrError{}},
	} {
		_, err := listener.ListenPacket(ch, tc.network, tc.address)
		checkListenError(t, "packet "+tc.network+" "+tc.address, err, tc.want)
	}
}

func checkListenError(t *testing.T, name string, err error, want any) {
	t.Helper()
	oe, ok := err.(*net.OpError)
	if !ok || oe.Op != "listen" || oe.Net == "" {
		t.Errorf("%s: err = %#v, want *net.OpError{Op: listen}", name, err)
		return
	}
	switch want.(type) {
	case net.UnknownNetworkError:
		if _, ok := oe.Err.(net.UnknownNetworkError); !ok {
			t.Errorf("%s: Err = %#v, want net.UnknownNetworkError", name, oe.Err)
		}
	case *net.AddrError:
		if _, ok := oe.Err.(*net.AddrError); !ok {
			t.Errorf("%s: Err = %#v, want *net.AddrError", name, oe.Err)
		}
	}
}

func TestListenPacket(t *testing.T) {
	p := newPair(t)
	for _, network := range []string{"udp", "udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			pc, err := listener.ListenPacket(p.B.CommandChannel(), network, ":0")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			to := testnet.AddrB
			if network == "udp6" {
				to = testnet.Addr6B
			}
			port := pc.LocalAddr().(*net.UDPAddr).Port
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := netconn.DialUDP(ctx, p.A.CommandChannel(), "udp", netip.AddrPort{}, netip.AddrPortFrom(to, uint16(port)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("datagram"))
			buf := make([]byte, 64)
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := pc.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "datagram" || from.String() != c.LocalAddr().String() {
				t.Fatalf("ReadFrom = %q from %v, %v", buf[:n], from, err)
			}
		})
	}
	pc, err := listener.ListenPacket(p.A.CommandChannel(), "ping4", "")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, ok := pc.(*netconn.PingConn); !ok {
		t.Fatalf("ping4 gave %T", pc)
	}
}

// TestKeepAlive checks that ListenConfig's keep-alive reaches accepted
// connections as net.ListenConfig's does: KeepAlive sets the idle time
// only, the interval and count taking Go's defaults (15s, 9), and a
// negative KeepAlive leaves it off.
func TestKeepAlive(t *testing.T) {
	p := newPair(t)
	for _, tc := range []struct {
		lc                  listener.ListenConfig
		want                int64
		wantIdle, wantIntvl time.Duration
		wantCount           int64
	}{
		{listener.ListenConfig{}, 1, 15 * time.Second, 15 * time.Second, 9},
		{listener.ListenConfig{KeepAlive: -1}, 0, 0, 0, 0},
		{listener.ListenConfig{KeepAlive: 42 * time.Second}, 1, 42 * time.Second, 15 * time.Second, 9},
		{listener.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: time.Minute, Interval: 2 * time.Second, Count: 3}},
			1, time.Minute, 2 * time.Second, 3},
	} {
		ln, err := tc.lc.Listen(context.Background(), p.B.CommandChannel(), "tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		dial(t, p, netip.AddrPortFrom(testnet.AddrB, uint16(ln.Addr().(*net.TCPAddr).Port)))
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		h := c.(*netconn.TCPConn).Handle()
		if got := sockOpt(t, p.B, h, core.OptKeepAlive); got != tc.want {
			t.Errorf("%+v: keep-alive %d, want %d", tc.lc, got, tc.want)
		}
		if tc.want == 1 {
			if got := time.Duration(sockOpt(t, p.B, h, core.OptKeepAliveIdle)); got != tc.wantIdle {
				t.Errorf("%+v: idle %v, want %v", tc.lc, got, tc.wantIdle)
			}
			if got := time.Duration(sockOpt(t, p.B, h, core.OptKeepAliveInterval)); got != tc.wantIntvl {
				t.Errorf("%+v: interval %v, want %v", tc.lc, got, tc.wantIntvl)
			}
			if got := sockOpt(t, p.B, h, core.OptKeepAliveCount); got != tc.wantCount {
				t.Errorf("%+v: count %d, want %d", tc.lc, got, tc.wantCount)
			}
		}
		c.Close()
		ln.Close()
	}
}

func sockOpt(t *testing.T, ns *core.Netstack, h core.Handle, opt core.SockOpt) int64 {
	t.Helper()
	resp, err := ns.CommandChannel().Request(context.Background(), h, core.GetSockOpt{Opt: opt})
	if err != nil {
		t.Fatal(err)
	}
	return resp.(core.SockOptValue).Value
}

// TestErrorsReturnNilInterface checks that every failing Listen and
// ListenPacket returns a nil interface, not one holding a nil pointer (a
// typed nil that `if pc != nil` takes for a socket): for parse errors and
// for the engine's (a port in use, a closed stack), on every network.
func TestErrorsReturnNilInterface(t *testing.T) {
	p := newPair(t)
	ch := p.B.CommandChannel()
	taken, err := listener.ListenPacket(ch, "udp", "192.0.2.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	inUse := taken.LocalAddr().String()
	tcpTaken, err := listener.Listen(ch, "tcp", "192.0.2.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcpTaken.Close()
	closed := closedStack(t)
	var lc listener.ListenConfig
	ctx := context.Background()
	packet := []struct {
		name        string
		ch          core.Channel
		net, addr   string
		wantMatches error // nil: any error
	}{
		{"udp in use", ch, "udp", inUse, syscall.EADDRINUSE},
		{"udp closed stack", closed, "udp", ":0", net.ErrClosed},
		{"udp bad address", ch, "udp", "nohost", nil},
		{"ping4 closed stack", closed, "ping4", "", net.ErrClosed},
		{"ping6 closed stack", closed, "ping6", "", net.ErrClosed},
		{"ping4 not ours", ch, "ping4", "198.51.100.1", syscall.EADDRNOTAVAIL},
		{"ping4 bad address", ch, "ping4", "nohost", nil},
	}
	for _, tc := range packet {
		for via, listen := range map[string]func() (net.PacketConn, error){
			"ListenPacket": func() (net.PacketConn, error) { return listener.ListenPacket(tc.ch, tc.net, tc.addr) },
			"ListenConfig": func() (net.PacketConn, error) { return lc.ListenPacket(ctx, tc.ch, tc.net, tc.addr) },
		} {
			pc, err := listen()
			checkNilOnError(t, via+" "+tc.name, pc != nil, err, tc.wantMatches)
		}
	}
	stream := []struct {
		name        string
		ch          core.Channel
		net, addr   string
		wantMatches error
	}{
		{"tcp in use", ch, "tcp", tcpTaken.Addr().String(), syscall.EADDRINUSE},
		{"tcp closed stack", closed, "tcp", ":0", net.ErrClosed},
		{"tcp bad address", ch, "tcp", "nohost", nil},
	}
	for _, tc := range stream {
		for via, listen := range map[string]func() (net.Listener, error){
			"Listen":       func() (net.Listener, error) { return listener.Listen(tc.ch, tc.net, tc.addr) },
			"ListenConfig": func() (net.Listener, error) { return lc.Listen(ctx, tc.ch, tc.net, tc.addr) },
		} {
			ln, err := listen()
			checkNilOnError(t, via+" "+tc.name, ln != nil, err, tc.wantMatches)
		}
	}
}

// checkNilOnError checks a failed call: an error matching want (any error
// if want is nil) and no value.
func checkNilOnError(t *testing.T, name string, gotValue bool, err, want error) {
	t.Helper()
	if err == nil || (want != nil && !errors.Is(err, want)) {
		t.Errorf("%s: err = %v, want one matching %v", name, err, want)
	}
	if gotValue {
		t.Errorf("%s: returned a non-nil interface with error %v (a typed nil)", name, err)
	}
}

// closedStack returns the channel of a stack that is closed.
func closedStack(t *testing.T) core.Channel {
	t.Helper()
	ns := testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.9/24"), netip.MustParsePrefix("2001:db8::9/64")}})
	ns.Close()
	return ns.CommandChannel()
}

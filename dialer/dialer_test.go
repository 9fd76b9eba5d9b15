package dialer_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
)

func TestDialTCP(t *testing.T) {
	p := newPair(t)
	srv := echoServer(t, p.B.CommandChannel(), "tcp", ":0")
	port := srv.Port()
	for _, tc := range []struct {
		name, network, address string
		want                   netip.Addr
	}{
		{"IPv4", "tcp", netip.AddrPortFrom(testnet.AddrB, port).String(), testnet.AddrB},
		{"IPv6", "tcp", netip.AddrPortFrom(testnet.Addr6B, port).String(), testnet.Addr6B},
		{"tcp4", "tcp4", netip.AddrPortFrom(testnet.AddrB, port).String(), testnet.AddrB},
		{"tcp6", "tcp6", netip.AddrPortFrom(testnet.Addr6B, port).String(), testnet.Addr6B},
		{"HostsIPv6First", "tcp", net.JoinHostPort("echo.test", itoa(port)), testnet.Addr6B},
		{"HostsTCP4", "tcp4", net.JoinHostPort("ECHO.test.", itoa(port)), testnet.AddrB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDialer(p)
			d.Hosts = map[string][]netip.Addr{"echo.test": {testnet.AddrB, testnet.Addr6B}}
			c, err := d.Dial(tc.network, tc.address)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if got := remote(c); got != netip.AddrPortFrom(tc.want, port) {
				t.Errorf("RemoteAddr = %v, want %v", got, netip.AddrPortFrom(tc.want, port))
			}
			if _, ok := c.(*netconn.TCPConn); !ok {
				t.Errorf("conn is %T, want *netconn.TCPConn", c)
			}
			roundTrip(t, c, "hello over "+tc.name)
		})
	}
}

func TestDialLocalAddr(t *testing.T) {
	p := newPair(t)
	srv := echoServer(t, p.B.CommandChannel(), "tcp", ":0")
	d := newDialer(p)
	d.LocalAddr = netip.AddrPortFrom(testnet.AddrA, 0)
	d.Hosts = map[string][]netip.Addr{"echo.test": {testnet.Addr6B, testnet.AddrB}}
	c, err := d.Dial("tcp", net.JoinHostPort("echo.test", itoa(srv.Port())))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if got := remote(c).Addr(); got != testnet.AddrB {
		t.Errorf("IPv4 LocalAddr dialled %v, want %v", got, testnet.AddrB)
	}
	if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != testnet.AddrA {
		t.Errorf("LocalAddr = %v, want %v", got, testnet.AddrA)
	}
}

func TestDialUDP(t *testing.T) {
	p := newPair(t)
	for _, tc := range []struct {
		network string
		addr    netip.Addr
	}{{"udp", testnet.AddrB}, {"udp4", testnet.AddrB}, {"udp6", testnet.Addr6B}} {
		t.Run(tc.network, func(t *testing.T) {
			srv := udpEchoServer(t, p.B.CommandChannel(), netip.AddrPortFrom(tc.addr, 0).String())
			c, err := newDialer(p).Dial(tc.network, srv.String())
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if _, ok := c.(*netconn.UDPConn); !ok {
				t.Errorf("conn is %T, want *netconn.UDPConn", c)
			}
			if got := remote(c); got != srv {
				t.Errorf("RemoteAddr = %v, want %v", got, srv)
			}
			roundTrip(t, c, "datagram")
		})
	}
}

func TestDialErrors(t *testing.T) {
	p := newPair(t)
	ch := p.A.CommandChannel()
	base := sockets(t, ch)
	for _, tc := range []struct {
		name, network, address string
		check                  func(*testing.T, *net.OpError)
	}{
		{"Refused", "tcp", "192.0.2.2:1", wantIs(syscall.ECONNREFUSED)},
		{"Refused6", "tcp6", "[2001:db8::2]:1", wantIs(syscall.ECONNREFUSED)},
		{"UnknownNetwork", "sctp", "192.0.2.2:80", wantAs[net.UnknownNetworkError]()},
		{"UnknownNetworkIP", "ip4:icmp", "192.0.2.2", wantAs[net.UnknownNetworkError]()},
		{"MissingPort", "tcp", "192.0.2.2", wantAs[*net.AddrError]()},
		{"BadPort", "tcp", "192.0.2.2:nosuchservice", wantAs[*net.DNSError]()},
		{"WrongFamily", "tcp4", "[2001:db8::2]:80", wantAs[*net.AddrError]()},
		{"WrongFamily6", "udp6", "192.0.2.2:53", wantAs[*net.AddrError]()},
		{"NoDNSServers", "tcp", "nosuch.test:80", wantAs[*net.DNSError]()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newDialer(p).Dial(tc.network, tc.address)
			tc.check(t, wantOpError(t, c, err, tc.network))
		})
	}
	wantSockets(t, ch, base, 5*time.Second)
}

func TestDialNoChannel(t *testing.T) {
	var d dialer.Dialer
	c, err := d.Dial("tcp", "192.0.2.2:80")
	wantOpError(t, c, err, "tcp")
}

func TestDialTimeout(t *testing.T) {
	p := newPair(t)
	ch := p.A.CommandChannel()
	base := sockets(t, ch)
	for _, tc := range []struct {
		name       string
		d          dialer.Dialer
		deadlineIn time.Duration // sets d.Deadline relative to the subtest's start
		address    string
	}{
		{"Timeout", dialer.Dialer{Timeout: 100 * time.Millisecond}, 0, net.JoinHostPort(silent4.String(), "80")},
		{"Timeout6", dialer.Dialer{Timeout: 100 * time.Millisecond}, 0, net.JoinHostPort(silent6.String(), "80")},
		{"PastDeadline", dialer.Dialer{}, -time.Second, "192.0.2.2:80"},
		{"DeadlineBeforeTimeout", dialer.Dialer{Timeout: time.Hour}, 100 * time.Millisecond, net.JoinHostPort(silent4.String(), "80")},
		{"TimeoutBeforeDeadline", dialer.Dialer{Timeout: 100 * time.Millisecond}, time.Hour, net.JoinHostPort(silent4.String(), "80")},
		{"BothFamilies", dialer.Dialer{Timeout: 200 * time.Millisecond, FallbackDelay: 50 * time.Millisecond,
			Hosts: map[string][]netip.Addr{"silent.test": {silent6, silent4}}}, 0, "silent.test:80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d
			d.Channel = ch
			start := time.Now()
			if tc.deadlineIn != 0 {
				d.Deadline = start.Add(tc.deadlineIn)
			}
			c, err := d.Dial("tcp", tc.address)
			op := wantOpError(t, c, err, "tcp")
			if !op.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v: Timeout() = %v, Is(os.ErrDeadlineExceeded) = %v; want a timeout",
					err, op.Timeout(), errors.Is(err, os.ErrDeadlineExceeded))
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("dial took %v", el)
			}
			wantSockets(t, ch, base, 0)
		})
	}
}

func TestDialCancel(t *testing.T) {
	p := newPair(t)
	ch := p.A.CommandChannel()
	base := sockets(t, ch)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	c, err := newDialer(p).DialContext(ctx, "tcp", net.JoinHostPort(silent4.String(), "80"))
	op := wantOpError(t, c, err, "tcp")
	if !errors.Is(err, context.Canceled) || op.Timeout() {
		t.Errorf("err = %v, want one matching context.Canceled and no timeout", err)
	}
	wantSockets(t, ch, base, 0)
}

func TestKeepAlive(t *testing.T) {
	p := newPair(t)
	srv := echoServer(t, p.B.CommandChannel(), "tcp", ":0")
	for _, tc := range []struct {
		name        string
		d           dialer.Dialer
		on          bool
		idle, intvl time.Duration
		count       int64
	}{
		{"Default", dialer.Dialer{}, true, 15 * time.Second, 15 * time.Second, 9},
		{"Period", dialer.Dialer{KeepAlive: 30 * time.Second}, true, 30 * time.Second, 15 * time.Second, 9},
		{"Off", dialer.Dialer{KeepAlive: -1}, false, 0, 0, 0},
		{"Config", dialer.Dialer{KeepAlive: -1, KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3}},
			true, 5 * time.Second, 2 * time.Second, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d
			d.Channel = p.A.CommandChannel()
			c, err := d.Dial("tcp", netip.AddrPortFrom(testnet.AddrB, srv.Port()).String())
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			h := c.(*netconn.TCPConn).Handle()
			if on := sockOpt(t, p, h, core.OptKeepAlive); (on == 1) != tc.on {
				t.Fatalf("SO_KEEPALIVE = %d, want %v", on, tc.on)
			}
			if !tc.on {
				return
			}
			wantOpt(t, p, h, core.OptKeepAliveIdle, int64(tc.idle))
			wantOpt(t, p, h, core.OptKeepAliveInterval, int64(tc.intvl))
			wantOpt(t, p, h, core.OptKeepAliveCount, tc.count)
		})
	}
}

func sockOpt(t *testing.T, p testnet.Pair, h core.Handle, opt core.SockOpt) int64 {
	t.Helper()
	resp, err := p.A.CommandChannel().Request(context.Background(), h, core.GetSockOpt{Opt: opt})
	if err != nil {
		t.Fatalf("GetSockOpt(%d): %v", opt, err)
	}
	return resp.(core.SockOptValue).Value
}

func wantOpt(t *testing.T, p testnet.Pair, h core.Handle, opt core.SockOpt, want int64) {
	t.Helper()
	if got := sockOpt(t, p, h, opt); got != want {
		t.Errorf("option %d = %d, want %d", opt, got, want)
	}
}

// wantOpError checks the shape every dial error has and returns it.
func wantOpError(t *testing.T, c net.Conn, err error, network string) *net.OpError {
	t.Helper()
	if c != nil {
		c.Close()
		t.Fatalf("dial succeeded (conn %v), want an error", c.RemoteAddr())
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("err = %#v (%v), want *net.OpError", err, err)
	}
	if op.Op != "dial" || op.Net != network {
		t.Errorf("OpError{Op: %q, Net: %q}, want {dial, %s}", op.Op, op.Net, network)
	}
	return op
}

// wantIs returns a check that err matches target.
func wantIs(target error) func(*testing.T, *net.OpError) {
	return func(t *testing.T, op *net.OpError) {
		t.Helper()
		if !errors.Is(op, target) {
			t.Errorf("err = %v, want one matching %v", op, target)
		}
		if op.Addr == nil {
			t.Errorf("OpError.Addr = nil, want the remote address")
		}
	}
}

// wantAs returns a check that the error wraps a T.
func wantAs[T error]() func(*testing.T, *net.OpError) {
	return func(t *testing.T, op *net.OpError) {
		t.Helper()
		var target T
		if !errors.As(op, &target) {
			t.Errorf("err = %v (%T), want it to wrap %T", op, op.Err, target)
		}
	}
}

func itoa(port uint16) string { return strconv.Itoa(int(port)) }

// TestDialErrorsReturnNilInterface checks that a dial the engine refuses
// returns a nil net.Conn, not one holding a nil pointer, on every network:
// a closed stack, a local address in use, a local address not the stack's,
// and a name the stack's DNS cannot reach.
func TestDialErrorsReturnNilInterface(t *testing.T) {
	p := newPair(t)
	taken, err := netconn.ListenUDP(context.Background(), p.A.CommandChannel(), "udp4", netip.AddrPortFrom(testnet.AddrA, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	closed := testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.9/24"), netip.MustParsePrefix("2001:db8::9/64")}})
	closed.Close()
	notOurs := netip.MustParseAddr("198.51.100.1")
	for _, tc := range []struct {
		name, network, address string
		d                      dialer.Dialer
		want                   error
	}{
		{"TCPClosedStack", "tcp", "192.0.2.2:80", dialer.Dialer{Channel: closed.CommandChannel()}, net.ErrClosed},
		{"UDPClosedStack", "udp", "192.0.2.2:53", dialer.Dialer{Channel: closed.CommandChannel()}, net.ErrClosed},
		{"Ping4ClosedStack", "ping4", "192.0.2.2", dialer.Dialer{Channel: closed.CommandChannel()}, net.ErrClosed},
		{"Ping6ClosedStack", "ping6", "2001:db8::2", dialer.Dialer{Channel: closed.CommandChannel()}, net.ErrClosed},
		{"UDPLocalInUse", "udp4", "192.0.2.2:53", dialer.Dialer{Channel: p.A.CommandChannel(), LocalAddr: taken.LocalAddr().(*net.UDPAddr).AddrPort()}, syscall.EADDRINUSE},
		{"PingLocalNotOurs", "ping4", "192.0.2.2", dialer.Dialer{Channel: p.A.CommandChannel(), LocalAddr: netip.AddrPortFrom(notOurs, 0)}, syscall.EADDRNOTAVAIL},
		{"TCPLocalNotOurs", "tcp4", "192.0.2.2:80", dialer.Dialer{Channel: p.A.CommandChannel(), LocalAddr: netip.AddrPortFrom(notOurs, 0)}, syscall.EADDRNOTAVAIL},
		{"DNSClosedStack", "tcp", "name.test:80", dialer.Dialer{Channel: closed.CommandChannel(), DNSServers: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.2:53")}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.d.Dial(tc.network, tc.address)
			op := wantOpError(t, c, err, tc.network)
			if tc.want != nil && !errors.Is(op, tc.want) {
				t.Errorf("err = %v, want one matching %v", op, tc.want)
			}
		})
	}
}

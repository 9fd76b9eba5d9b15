package netconn_test

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// checkEcho parses an echo reply and checks its sequence and data.
func checkEcho(t *testing.T, ipv6Msg bool, b []byte, seq int, data string) {
	t.Helper()
	proto, want := 1, icmp.Type(ipv4.ICMPTypeEchoReply)
	if ipv6Msg {
		proto, want = 58, ipv6.ICMPTypeEchoReply
	}
	m, err := icmp.ParseMessage(proto, b)
	if err != nil {
		t.Fatalf("parse reply: %v", err)
	}
	e, ok := m.Body.(*icmp.Echo)
	if m.Type != want || !ok || e.Seq != seq || string(e.Data) != data {
		t.Fatalf("reply %v %+v, want %v seq %d data %q", m.Type, m.Body, want, seq, data)
	}
}

func TestPing(t *testing.T) {
	p := newPair(t)
	for _, tc := range []struct {
		name, network string
		local, remote netip.Addr
	}{
		{"ping4", "ping4", testnet.AddrA, testnet.AddrB},
		{"ping6", "ping6", testnet.Addr6A, testnet.Addr6B},
		{"ping4-self", "ping4", netip.Addr{}, testnet.AddrA},
		{"ping6-self", "ping6", netip.Addr{}, testnet.Addr6A},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := netconn.DialPing(testCtx(t), p.A.CommandChannel(), tc.network, tc.local, tc.remote)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			v6 := tc.network == "ping6"
			for seq := range 3 {
				if _, err := c.Write(netconn.EchoRequest(v6, uint16(seq), []byte("hello"))); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 1500)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					t.Fatal(err)
				}
				if ip := from.(*net.IPAddr).IP; !ip.Equal(tc.remote.AsSlice()) {
					t.Errorf("reply from %v, want %v", ip, tc.remote)
				}
				checkEcho(t, v6, buf[:n], seq, "hello")
			}
		})
	}
}

func TestPingUnconnected(t *testing.T) {
	p := newPair(t)
	c, err := netconn.ListenPing(testCtx(t), p.A.CommandChannel(), "ping4", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := &net.IPAddr{IP: testnet.AddrB.AsSlice()}
	if _, err := c.WriteTo(netconn.EchoRequest(false, 7, []byte("x")), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, false, buf[:n], 7, "x")
}

// TestPingDeadline checks a ping read deadline (nobody answers) and that
// Close wakes a blocked read.
func TestPingDeadline(t *testing.T) {
	p := newPair(t)
	c, err := netconn.DialPing(testCtx(t), p.A.CommandChannel(), "ping4", netip.Addr{}, netip.MustParseAddr("192.0.2.99"))
	if err != nil {
		t.Fatal(err)
	}
	c.Write(netconn.EchoRequest(false, 1, nil))
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := c.Read(make([]byte, 100))
	if n != 0 {
		t.Errorf("n = %d, want 0", n)
	}
	checkOpError(t, err, "read", os.ErrDeadlineExceeded)
	c.SetReadDeadline(time.Time{})
	res := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 100)); res <- err }()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	checkOpError(t, <-res, "read", net.ErrClosed)
	_, err = netconn.DialPing(testCtx(t), p.A.CommandChannel(), "ping5", netip.Addr{}, testnet.AddrB)
	if _, ok := err.(*net.OpError).Err.(net.UnknownNetworkError); !ok {
		t.Fatalf("ping5: %v, want UnknownNetworkError", err)
	}
}

package tundev_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
)

// TestForwardWireGuard serves a subnet behind a stack: a wireguard-go peer
// routes 10.77.0.0/16 to it, and its forwarder takes the peer's flows to
// any address there, in process over a Virtual.
func TestForwardWireGuard(t *testing.T) {
	leakCheck(t)
	subnet := netip.MustParsePrefix("10.77.0.0/16")
	a := newWGNode(t, wgAddrA, 1420)
	b := newWGNodeConfig(t, wgAddrB, core.Config{MTU: 1420, Addrs: []netip.Prefix{netip.PrefixFrom(wgAddrB, 24)},
		Forward: &core.ForwardConfig{Prefixes: []netip.Prefix{subnet}}})
	b.peer(t, a)
	conf := fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=%s/32\nallowed_ip=%s\n",
		hex.EncodeToString(b.pub[:]), b.port, b.addr, subnet)
	if err := a.dev.IpcSet(conf); err != nil {
		t.Fatalf("IpcSet peer: %v", err)
	}
	seen := make(chan [2]net.Addr, 4)
	fw := &listener.Forwarder{
		HandleTCP: func(_ context.Context, c *netconn.TCPConn) {
			seen <- [2]net.Addr{c.LocalAddr(), c.RemoteAddr()}
			io.Copy(c, c)
			c.CloseWrite()
		},
		HandleUDP: func(_ context.Context, c *listener.UDPFlow) {
			seen <- [2]net.Addr{c.LocalAddr(), c.RemoteAddr()}
			buf := make([]byte, 1500)
			n, _ := c.Read(buf)
			c.Write(buf[:n])
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- fw.Serve(ctx, b.ch) }()
	defer func() { cancel(); <-served }()
	for b.stack.Stats().Forward.Open == 0 {
		time.Sleep(time.Millisecond)
	}

	dst := netip.MustParseAddrPort("10.77.1.5:80")
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	c, err := netconn.DialTCP(dctx, a.ch, "tcp", netip.AddrPort{}, dst)
	if err != nil {
		t.Fatalf("dial %v through the tunnel: %v", dst, err)
	}
	defer c.Close()
	go func() { c.Write([]byte("through the tunnel")); c.CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "through the tunnel" {
		t.Fatalf("echo %q, %v", got, err)
	}
	if s := <-seen; s[0].String() != dst.String() || s[1].String() != c.LocalAddr().String() {
		t.Fatalf("handler saw %v <- %v, want %v <- %v", s[0], s[1], dst, c.LocalAddr())
	}

	u, err := netconn.DialUDP(context.Background(), a.ch, "udp", netip.AddrPort{}, netip.MustParseAddrPort("10.77.9.9:53"))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.Write([]byte("udp through the tunnel"))
	u.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 100)
	if n, err := u.Read(buf); err != nil || string(buf[:n]) != "udp through the tunnel" {
		t.Fatalf("UDP echo %q, %v", buf[:n], err)
	}
	if s := <-seen; s[0].String() != "10.77.9.9:53" {
		t.Fatalf("handler saw UDP destination %v, want 10.77.9.9:53", s[0])
	}
}

package gvisorpair_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/gvisorpair"
	"github.com/netcore-go/netcore/internal/testnet"
)

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
)

// TestSettingsMatchCore checks that the reference pair uses core's default
// buffer sizes, read back from a netcore socket.
func TestSettingsMatchCore(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ns := testnet.Start(t, core.Config{})
	ch := ns.CommandChannel()
	ctx := context.Background()
	for _, tc := range []struct {
		cmd  core.Command
		opt  core.SockOpt
		want int64
	}{
		{core.TCPListen{Local: netip.MustParseAddrPort("127.0.0.1:0")}, core.OptSendBuffer, gvisorpair.TCPBuffer},
		{core.TCPListen{Local: netip.MustParseAddrPort("127.0.0.1:0")}, core.OptRecvBuffer, gvisorpair.TCPBuffer},
		{core.UDPBind{Local: netip.MustParseAddrPort("127.0.0.1:0")}, core.OptRecvBuffer, gvisorpair.UDPRecvBuffer},
	} {
		resp, err := ch.Request(ctx, core.NoHandle, tc.cmd)
		if err != nil {
			t.Fatal(err)
		}
		var h core.Handle
		switch r := resp.(type) {
		case core.TCPListening:
			h = r.Handle
		case core.UDPBound:
			h = r.Handle
		}
		got, err := ch.Request(ctx, h, core.GetSockOpt{Opt: tc.opt})
		if err != nil {
			t.Fatal(err)
		}
		if v := got.(core.SockOptValue).Value; v != tc.want {
			t.Errorf("%T option %d = %d in core, %d in gvisorpair", tc.cmd, tc.opt, v, tc.want)
		}
	}
}

// TestPairConnects dials across the pair with gonet.
func TestPairConnects(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	p, err := gvisorpair.New(addrA, addrB, 1500)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ln, err := gonet.ListenTCP(p.B, gvisorpair.FullAddr(netip.AddrPortFrom(addrB, 80)), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, p.A, gvisorpair.FullAddr(netip.AddrPortFrom(addrB, 80)), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

package core_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/netconn"
)

// TestForwardEchoOffered checks ForwardOpen.Echo: echo requests to far
// addresses are offered as FlowEcho flows, at most MaxPendingEcho waiting
// (the rest dropped and counted), and ForwardEchoReply answers one from
// its original destination; a reply from outside the prefixes, of another
// IP version or to something not an echo request fails with ErrInvalid.
func TestForwardEchoOffered(t *testing.T) {
	far := farAddr.Addr()
	p := forwardPair(t, core.ForwardConfig{AnswerEcho: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	b := p.B.CommandChannel()
	fw := do[core.ForwardOpened](t, b, core.NoHandle, core.ForwardOpen{Echo: true}).Handle
	c, err := netconn.DialPing(context.Background(), p.A.CommandChannel(), "ping4", netip.Addr{}, far)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const extra = 10
	for seq := 1; seq <= core.MaxPendingEcho+extra; seq++ {
		if _, err := c.Write(netconn.EchoRequest(false, uint16(seq), []byte("hi"))); err != nil {
			t.Fatal(err)
		}
	}
	for start := time.Now(); p.B.Stats().Forward.EchoDropped != extra; time.Sleep(time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%d echo requests dropped, want %d", p.B.Stats().Forward.EchoDropped, extra)
		}
	}
	fl := do[core.Flow](t, b, fw, core.ForwardAccept{})
	if fl.Proto != core.FlowEcho || fl.Local.Addr() != far || len(fl.Message) != 10 || binary.BigEndian.Uint16(fl.Message[6:]) != 1 {
		t.Fatalf("offered %+v, want the echo request seq 1 to %v", fl, far)
	}
	notEcho := append([]byte{0}, fl.Message[1:]...) // an echo reply
	for _, r := range []core.ForwardEchoReply{
		{From: netip.MustParseAddr("203.0.113.1"), To: fl.Remote.Addr(), Request: fl.Message},
		{From: far, To: netip.MustParseAddr("2001:db8::1"), Request: fl.Message},
		{From: far, To: fl.Remote.Addr(), Request: notEcho},
	} {
		if _, err := try(b, fw, r); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("%+v: %v, want ErrInvalid", r, err)
		}
	}
	do[core.OK](t, b, fw, core.ForwardEchoReply{From: fl.Local.Addr(), To: fl.Remote.Addr(), Request: fl.Message})
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || n != 10 || binary.BigEndian.Uint16(buf[6:]) != 1 || string(buf[8:n]) != "hi" {
		t.Fatalf("echo reply %x, %v; want seq 1 \"hi\"", buf[:n], err)
	}
	do[core.OK](t, b, fw, core.CloseSocket{}) // drops the offers left
	if st := p.B.Stats().Forward; st.EchoDropped != extra {
		t.Fatalf("%d echo requests dropped, want %d (AnswerEcho answers none while a forwarder takes them)", st.EchoDropped, extra)
	}
}

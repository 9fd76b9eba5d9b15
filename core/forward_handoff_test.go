package core_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// TestForwardHandleTCP opens the forwarder with ForwardOpen.HandleTCP: an
// accepted TCP flow goes to HandleTCP, with its addresses and Handle, on
// the goroutine that completed its handshake, not to ForwardAccept (which
// stays parked), and is served there (a byte echoed, counted in
// ForwardStats.TCPHandedOff); a second flow's HandleTCP is blocked in a
// read when the stack closes, and Close ends it (net.ErrClosed; leakCheck).
func TestForwardHandleTCP(t *testing.T) {
	p := forwardPair(t, core.ForwardConfig{})
	b := p.B.CommandChannel()
	flows := make(chan core.Flow, 2)
	ended := make(chan error, 2)
	handle := func(fl core.Flow) {
		flows <- fl
		buf := make([]byte, 1)
		_, err := b.Request(context.Background(), fl.Handle, core.TCPRecv{Buf: buf})
		if err == nil {
			_, err = b.Request(context.Background(), fl.Handle, core.TCPSend{Buf: buf})
		}
		ended <- err
	}
	fw := do[core.ForwardOpened](t, b, core.NoHandle, core.ForwardOpen{AcceptTCP: true, HandleTCP: handle}).Handle
	accepted := make(chan error, 1)
	go func() { _, err := b.Request(context.Background(), fw, core.ForwardAccept{}); accepted <- err }()

	a := p.A.CommandChannel()
	cli := do[core.TCPConnected](t, a, core.NoHandle, core.TCPConnect{Remote: farAddr}).Handle
	fl := <-flows
	if fl.Proto != core.FlowTCP || !fl.Handle.IsValid() || fl.Local != farAddr || fl.Remote.Addr() != testnet.AddrA {
		t.Fatalf("HandleTCP got %+v, want an established TCP flow %v <- %v", fl, farAddr, testnet.AddrA)
	}
	do[core.TCPSent](t, a, cli, core.TCPSend{Buf: []byte{7}})
	buf := make([]byte, 1)
	if n := do[core.TCPRecvd](t, a, cli, core.TCPRecv{Buf: buf}).N; n != 1 || buf[0] != 7 {
		t.Fatalf("echo through HandleTCP: %d bytes %v, want [7]", n, buf[:n])
	}
	if err := <-ended; err != nil {
		t.Fatalf("HandleTCP's echo: %v", err)
	}
	if st := p.B.Stats().Forward; st.TCPHandedOff != 1 || st.TCPOffered != 1 {
		t.Fatalf("stats %+v, want 1 TCP flow offered, handed off to HandleTCP", st)
	}

	do[core.TCPConnected](t, a, core.NoHandle, core.TCPConnect{Remote: farAddr})
	<-flows // blocked in its read now, or soon
	p.B.Close()
	if err := <-ended; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("HandleTCP's read when the stack closed: %v, want net.ErrClosed", err)
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ForwardAccept: %v, want net.ErrClosed (no flow offered to it)", err)
	}
}

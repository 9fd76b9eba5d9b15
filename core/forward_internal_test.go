package core

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// With ForwardOpen.AcceptTCP, the goroutine that completed a flow's
// handshake serves the flow's offer itself while the token is free: a
// ForwardAccept parked before the SYN is answered with the established
// flow though no engine goroutine runs (the forwarding stack is in Run's
// inline mode, without Run's goroutine, as the token's tests set it up),
// and the engine was not woken for it (its wake-up channel stays empty).
// Before, the handshake's goroutine woke the engine goroutine, which
// served the offer: one more goroutine hand-off per connection.
func TestForwardHandshakeServesOffer(t *testing.T) {
	a, err := New(Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); a.Close(); <-ran })
	b := newForwardStack(t)
	b.tok.inline.Store(true) // as Run does, without its goroutine
	t.Cleanup(func() { b.tok.inline.Store(false) })
	if err := JoinPipe(a, b, 0); err != nil {
		t.Fatal(err)
	}
	ch := b.CommandChannel()
	resp, err := ch.Request(ctx, NoHandle, ForwardOpen{AcceptTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	fw := resp.(ForwardOpened).Handle
	served := b.commands.Load()
	offered := make(chan Response, 1)
	go func() {
		resp, err := ch.Request(ctx, fw, ForwardAccept{})
		if err != nil {
			t.Error(err)
		}
		offered <- resp
	}()
	for b.commands.Load() == served { // the ForwardAccept is parked
		time.Sleep(time.Millisecond)
	}
	drainSignal(b.wake)
	far := netip.MustParseAddrPort("198.51.100.7:80")
	conn, err := a.CommandChannel().Request(ctx, NoHandle, TCPConnect{Remote: far})
	if err != nil {
		t.Fatal(err)
	}
	var fl Flow
	select {
	case resp := <-offered:
		fl, _ = resp.(Flow)
	case <-time.After(20 * time.Second):
		t.Fatal("the parked ForwardAccept was not answered: the handshake's goroutine left the offer to the engine goroutine")
	}
	if fl.Proto != FlowTCP || !fl.Handle.IsValid() || fl.Local != far || fl.Remote != conn.(TCPConnected).Local {
		t.Fatalf("offer %+v, want the established flow from %v to %v", fl, conn.(TCPConnected).Local, far)
	}
	select {
	case <-b.wake:
		t.Fatal("the engine goroutine was woken for the offer")
	default:
	}
}

// newForwardStack is an idle stack (no Run) that forwards every address.
func newForwardStack(t *testing.T) *Netstack {
	ns, err := New(Config{Forward: &ForwardConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

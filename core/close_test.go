package core_test

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// TestCloseResetsPeers: closing a stack resets its connections, as a
// process exit does, and the resets leave through the device before it
// stops, on every device path: the peer's blocked reads all end with
// ECONNRESET (or EOF), none is left waiting.
func TestCloseResetsPeers(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct {
		name string
		join func(t *testing.T, a, b *core.Netstack)
	}{
		{"JoinPipe", func(t *testing.T, a, b *core.Netstack) {
			if err := core.JoinPipe(a, b, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"pumps", joinByPumps},
		{"pull and push", joinByCable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testnet.Pair{A: startAt(t, testnet.AddrA), B: startAt(t, testnet.AddrB)}
			tc.join(t, p.A, p.B)
			const conns = 16
			b := p.B.CommandChannel()
			ended := make(chan error, conns)
			for range conns {
				_, srv := tcpPair(t, p, testnet.AddrB)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					_, err := b.Request(ctx, srv, &core.TCPRecv{Buf: make([]byte, 10)})
					ended <- err
				}()
			}
			waitParked(t, b, conns)
			if err := p.A.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			for range conns {
				if err := <-ended; !errors.Is(err, syscall.ECONNRESET) && err != io.EOF {
					t.Fatalf("peer's blocked read ended with %v, want ECONNRESET or EOF", err)
				}
			}
		})
	}
}

// TestCloseDrainIsBounded: with a device that never takes the resets,
// Close still returns, after at most CloseDrainTimeout of waiting.
func TestCloseDrainIsBounded(t *testing.T) {
	leakCheck(t)
	ns := startAt(t, testnet.AddrA)
	dev := newStuckDevice()
	if err := ns.AttachDevice(dev); err != nil {
		t.Fatal(err)
	}
	ch := ns.CommandChannel()
	u := do[core.UDPBound](t, ch, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	for range 100 {
		do[core.UDPSent](t, ch, u.Handle, core.UDPSend{To: netip.MustParseAddrPort("192.0.2.50:9"), Buf: make([]byte, 100)})
	}
	<-dev.blocked
	closed := make(chan struct{})
	go func() { ns.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second): // generous: a loaded machine
		t.Fatal("Close did not return with the device stuck")
	}
}

// startAt starts a running stack with one IPv4 address.
func startAt(t *testing.T, a netip.Addr) *core.Netstack {
	return testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(a, 24)}})
}

// joinByPumps joins two stacks by a plain pipe: each stack's device pumps
// carry the packets, with no shortcut between the stacks.
func joinByPumps(t *testing.T, a, b *core.Netstack) {
	p := core.NewPipe(0)
	if err := a.AttachDevice(&core.PipeDev{End: p.A, MTU: a.MTU()}); err != nil {
		t.Fatal(err)
	}
	if err := b.AttachDevice(&core.PipeDev{End: p.B, MTU: b.MTU()}); err != nil {
		t.Fatal(err)
	}
}

// joinByCable joins two stacks by a crossover cable of Pull and Push
// devices (see ExamplePullDevice).
func joinByCable(t *testing.T, a, b *core.Netstack) {
	endA, endB := newCable(), newCable()
	if err := a.AttachDevice(endA); err != nil {
		t.Fatal(err)
	}
	if err := b.AttachDevice(endB); err != nil {
		t.Fatal(err)
	}
	srcA, recvA, srcB, recvB := <-endA.source, <-endA.receiver, <-endB.source, <-endB.receiver
	go carry(srcA, recvB, endA.done)
	go carry(srcB, recvA, endB.done)
}

// waitParked waits until n requests are parked on the stack.
func waitParked(t *testing.T, ch core.Channel, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		if st := do[core.Stats](t, ch, core.NoHandle, core.GetStats{}); st.Parked >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d requests parked", n)
		}
	}
}

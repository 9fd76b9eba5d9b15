package core_test

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// Invariant 1, order: a non-blocking request queued before a blocking one
// is served first, whoever holds the token (a caller serving its own
// request inline, or the engine goroutine the non-blocking one woke). A
// caller that jumped the queue with its own request would read the option
// as it stood before the non-blocking SetSockOpt.
func TestTokenKeepsFIFOAcrossNonblocking(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a := p.A.CommandChannel()
	cli, _ := tcpPair(t, p, testnet.AddrB)
	n := 2000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		want := int64(i % 2)
		if err := a.RequestNonblocking(cli, core.SetSockOpt{Opt: core.OptNoDelay, Value: want}); err != nil {
			t.Fatalf("nonblocking %d: %v", i, err)
		}
		got := do[core.SockOptValue](t, a, cli, core.GetSockOpt{Opt: core.OptNoDelay})
		if got.Value != want {
			t.Fatalf("round %d: NoDelay read %d after a non-blocking set to %d: the blocking request overtook it", i, got.Value, want)
		}
	}
	if st := p.A.Stats(); st.CallerTurns == 0 || st.NonblockingErrors != 0 {
		t.Fatalf("caller turns %d, non-blocking errors %d: want some turns served inline and no error", st.CallerTurns, st.NonblockingErrors)
	}
}

// Invariant 1, the woken caller: a receive parked with no data is served
// by its own caller when the datagram arrives (gVisor's readiness kicks
// the waiting caller), not by the receiving stack's engine goroutine.
func TestTokenReadinessWakesWaitingCaller(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	ub := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrB, 7)})
	ua := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	for round := range 20 {
		got := make(chan error, 1)
		buf := make([]byte, 16)
		go func() {
			resp, err := b.Request(context.Background(), ub.Handle, core.UDPRecv{Buf: buf})
			if err == nil && string(buf[:resp.(core.UDPRecvd).N]) != "wake" {
				err = errUnexpected(buf[:resp.(core.UDPRecvd).N])
			}
			got <- err
		}()
		for p.B.Stats().Parked != 1 {
			time.Sleep(time.Millisecond)
		}
		before := p.B.Stats()
		do[core.UDPSent](t, a, ua.Handle, core.UDPSend{To: ub.Local, Buf: []byte("wake")})
		if err := <-got; err != nil {
			t.Fatalf("round %d: parked recv: %v", round, err)
		}
		after := p.B.Stats()
		if w := after.EngineWakeups - before.EngineWakeups; w != 0 {
			t.Fatalf("round %d: B's engine goroutine woke %d times for a datagram its waiting caller could serve", round, w)
		}
		if after.CallerTurns <= before.CallerTurns {
			t.Fatalf("round %d: no caller turn served the ready socket", round)
		}
	}
}

// Invariant 1 under the race detector: many goroutines on shared sockets
// of two stacks, blocking and non-blocking, take the token in turn with
// the engine goroutines; every byte and datagram arrives, and the race
// detector sees each hand-over (a data race on socket state would fail
// the test under -race).
func TestTokenHandOverUnderRace(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	ub := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrB, 9)})
	ua := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	cli, srv := tcpPair(t, p, testnet.AddrB)
	data := randomBytes(1 << 20)
	var wg sync.WaitGroup
	wg.Go(func() { sendAll(t, a, cli, data, 1000) })
	var sum [32]byte
	var n int
	wg.Go(func() { sum, n = recvAll(t, b, srv) })
	const senders, each = 4, 100
	var received atomic.Int64
	for range senders {
		wg.Go(func() {
			for i := range each {
				if i%2 == 0 {
					for a.RequestNonblocking(ua.Handle, core.UDPSend{To: ub.Local, Buf: []byte("n")}) != nil {
						time.Sleep(time.Millisecond) // backpressure: the queue is full
					}
				} else {
					do[core.UDPSent](t, a, ua.Handle, core.UDPSend{To: ub.Local, Buf: []byte("b")})
				}
				do[core.Stats](t, b, core.NoHandle, core.GetStats{})
			}
		})
		wg.Go(func() {
			buf := make([]byte, 8)
			for range each {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if _, err := b.Request(ctx, ub.Handle, core.UDPRecv{Buf: buf}); err == nil {
					received.Add(1)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	if n != len(data) || sum != sha256Sum(data) {
		t.Fatalf("stream: got %d bytes, want %d (sha equal %v)", n, len(data), sum == sha256Sum(data))
	}
	if got := received.Load(); got != senders*each {
		t.Fatalf("received %d of %d datagrams", got, senders*each)
	}
}

// Manual mode: with no Run, a caller of Request only queues its request
// and waits; nobody serves it behind the driver's back, so WaitForCmd
// returns it, and the reply comes from ProcessOneCmd.
func TestTokenManualModeLeavesCommandsToDriver(t *testing.T) {
	leakCheck(t)
	ns, err := core.New(core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	ch := ns.CommandChannel()
	for i := range 50 {
		done := make(chan error, 1)
		go func() { _, err := ch.Request(context.Background(), core.NoHandle, core.Nop{}); done <- err }()
		r, err := ns.WaitForCmd(10 * time.Second)
		if err != nil {
			t.Fatalf("round %d: WaitForCmd: %v (the caller served its own request?)", i, err)
		}
		select {
		case err := <-done:
			t.Fatalf("round %d: answered (%v) before the driver processed it", i, err)
		default:
		}
		ns.ProcessOneCmd(r)
		if err := <-done; err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if st := ns.Stats(); st.CallerTurns != 0 || st.Commands != 50 {
		t.Fatalf("caller turns %d, commands %d: want 0 and 50", st.CallerTurns, st.Commands)
	}
}

type errUnexpected []byte

func (e errUnexpected) Error() string { return "unexpected datagram " + string(e) }

package core_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// Stats works before Run: the stack's figures are there, all zero but
// Uptime, and reading them does not wait for an engine.
func TestStatsBeforeRun(t *testing.T) {
	leakCheck(t)
	ns, err := core.New(core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	st := ns.Stats()
	if st.Sockets != 0 || st.Commands != 0 || st.PacketsOut != 0 || st.Uptime <= 0 {
		t.Errorf("before Run: %+v", st)
	}
}

// While the stack runs, Stats from any goroutine sees the engine's
// figures (sockets by kind, commands) and the live counters;
// after Close it returns the final figures, the same at every call.
func TestStatsRunningAndAfterClose(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a := p.A.CommandChannel()
	udp := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	// The engine counts before it answers: the reply implies the count.
	if st := p.A.Stats(); st.UDPSockets != 1 || st.Sockets != 1 {
		t.Errorf("right after UDPBind: udp sockets %d, sockets %d; want 1, 1", st.UDPSockets, st.Sockets)
	}
	cli, _ := tcpPair(t, p, testnet.AddrB)
	do[core.TCPSent](t, a, cli, core.TCPSend{Buf: make([]byte, 64<<10)})

	// Concurrent readers, under -race: no data race with the engine.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				p.A.Stats()
			}
		})
	}
	do[core.OK](t, a, core.NoHandle, core.Nop{})
	wg.Wait()

	live := p.A.Stats()
	if live.Sockets != 2 || live.TCPStreams != 1 || live.UDPSockets != 1 {
		t.Errorf("running: sockets %d (streams %d, udp %d), want 2 (1, 1)", live.Sockets, live.TCPStreams, live.UDPSockets)
	}
	if live.Commands < 5 || live.EngineWakeups == 0 || live.PacketsOut == 0 || live.TCPActiveOpens != 1 ||
		live.TCPEstablished != 1 || live.TCPSegmentsOut == 0 || live.UDPPacketsOut != 0 {
		t.Errorf("running: %+v", live)
	}
	cmd := do[core.Stats](t, a, core.NoHandle, core.GetStats{})
	if cmd.Sockets != live.Sockets || cmd.Commands <= live.Commands || cmd.TCPActiveOpens != live.TCPActiveOpens {
		t.Errorf("GetStats %+v, Stats %+v", cmd, live)
	}
	do[core.OK](t, a, udp.Handle, core.CloseSocket{})

	if err := p.A.Close(); err != nil {
		t.Fatal(err)
	}
	final := p.A.Stats()
	if final.Commands < cmd.Commands || final.PacketsOut < live.PacketsOut || final.TCPActiveOpens != 1 ||
		final.TCPSegmentsOut < live.TCPSegmentsOut || final.TCPResetsSent == 0 {
		t.Errorf("after Close: counters went back: %+v, before %+v", final, live)
	}
	if final.Sockets != 0 || final.TCPStreams != 0 || final.Parked != 0 || final.TCPEstablished != 0 {
		t.Errorf("after Close: gauges %+v, want 0", final)
	}
	time.Sleep(time.Millisecond) // Uptime must have stopped
	if again := p.A.Stats(); again != final {
		t.Errorf("after Close, Stats changed:\n%+v\n%+v", again, final)
	}
	if _, err := a.Request(context.Background(), core.NoHandle, core.GetStats{}); !errors.Is(err, core.ErrClosed) {
		t.Errorf("GetStats after Close: %v, want ErrClosed", err)
	}
}

// In manual mode too, Stats counts what ProcessOneCmd did.
func TestStatsManualMode(t *testing.T) {
	leakCheck(t)
	ns, err := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	ch := ns.CommandChannel()
	done := make(chan error, 1)
	go func() {
		_, err := ch.Request(context.Background(), core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("192.0.2.1:0")})
		done <- err
	}()
	r, err := ns.WaitForCmd(0)
	if err != nil {
		t.Fatal(err)
	}
	ns.ProcessOneCmd(r)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := ns.Stats(); st.UDPSockets != 1 || st.Commands != 1 {
		t.Errorf("manual mode: udp sockets %d, commands %d; want 1, 1", st.UDPSockets, st.Commands)
	}
}

package netconn_test

import (
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
)

// The owner token on the RR path: with both stacks idle between
// exchanges, the requests of a 1-byte request/response are served by their
// own callers (inline, or woken by readiness), so the engine goroutines
// (almost) never wake.
func TestRRServedByCallers(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1)
		for {
			if _, err := io.ReadFull(srv, buf); err != nil {
				return
			}
			if _, err := srv.Write(buf); err != nil {
				return
			}
		}
	})
	defer wg.Wait()
	defer cli.Close()
	buf := make([]byte, 1)
	a0, b0 := p.A.Stats(), p.B.Stats()
	const n = 2000
	for i := range n {
		buf[0] = byte(i)
		if _, err := cli.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(cli, buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("exchange %d: got %d, %v", i, buf[0], err)
		}
	}
	a1, b1 := p.A.Stats(), p.B.Stats()
	wakeups := (a1.EngineWakeups - a0.EngineWakeups) + (b1.EngineWakeups - b0.EngineWakeups)
	turns := (a1.CallerTurns - a0.CallerTurns) + (b1.CallerTurns - b0.CallerTurns)
	t.Logf("per RR: engine wake-ups %.3f, caller turns %.2f", float64(wakeups)/n, float64(turns)/n)
	// Counts, not timing: on a quiet machine the engines wake about once
	// in a thousand exchanges (an ACK's readiness that comes before the
	// Read has parked wakes the engine goroutine); with the engine as the
	// only owner they woke for every one of the 4n requests. The bounds
	// leave a loaded machine room.
	if wakeups >= 2*n {
		t.Fatalf("engine goroutines woke %d times in %d exchanges (%d requests), want far fewer than the requests", wakeups, n, 4*n)
	}
	if turns < n {
		t.Fatalf("%d caller turns in %d exchanges, want most requests served by their callers", turns, n)
	}
}

// A dial and an accept with keep-alive on cost one request each: the
// options travel in the connect and accept commands and are set inside
// the engine, with the values SetKeepAliveConfig would give.
func TestKeepAliveInOneRequest(t *testing.T) {
	p := newPair(t)
	ctx := testCtx(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	ln, err := netconn.ListenTCP(ctx, b, "tcp", netip.AddrPortFrom(testnet.AddrB, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln.SetAcceptKeepAlive(net.KeepAliveConfig{Enable: true, Idle: 7 * time.Second})
	cfg := net.KeepAliveConfig{Enable: true, Idle: 1500 * time.Millisecond, Interval: 3 * time.Second, Count: 4}
	acc := make(chan *netconn.TCPConn, 1)
	b0 := p.B.Stats().Commands
	go func() { c, _ := ln.AcceptTCP(); acc <- c }()
	a0 := p.A.Stats().Commands
	cli, err := netconn.DialTCPKeepAlive(ctx, a, "tcp", netip.AddrPort{}, ln.AddrPort(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv := <-acc
	if srv == nil {
		t.Fatal("accept failed")
	}
	defer srv.Close()
	if da, db := p.A.Stats().Commands-a0, p.B.Stats().Commands-b0; da != 1 || db != 1 {
		t.Fatalf("dial took %d requests, accept %d; want 1 each", da, db)
	}
	for _, tc := range []struct {
		name string
		ch   core.Channel
		h    core.Handle
		want map[core.SockOpt]int64
	}{
		{"dialled", a, cli.Handle(), map[core.SockOpt]int64{core.OptKeepAlive: 1, core.OptKeepAliveIdle: int64(2 * time.Second), core.OptKeepAliveInterval: int64(3 * time.Second), core.OptKeepAliveCount: 4}},
		{"accepted", b, srv.Handle(), map[core.SockOpt]int64{core.OptKeepAlive: 1, core.OptKeepAliveIdle: int64(7 * time.Second), core.OptKeepAliveInterval: int64(15 * time.Second), core.OptKeepAliveCount: 9}},
	} {
		for opt, want := range tc.want {
			resp, err := tc.ch.Request(ctx, tc.h, core.GetSockOpt{Opt: opt})
			if err != nil || resp.(core.SockOptValue).Value != want {
				t.Errorf("%s: option %d = %v, %v; want %d", tc.name, opt, resp, err, want)
			}
		}
	}
}

// Data that reaches a stream before its Read (nothing parked) wakes no
// engine goroutine: the socket waits on the ready list for the next
// holder, and the Read takes the data itself. Before, the receiving engine
// woke for every segment that came first.
func TestStreamDataBeforeReadWakesNoEngine(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	const n = 2000
	msg, buf := make([]byte, 64), make([]byte, 64)
	b0 := p.B.Stats()
	for i := range n {
		msg[0] = byte(i)
		if _, err := cli.Write(msg); err != nil {
			t.Fatal(err)
		}
		waitQueued(t, srv, len(msg)) // the data is there before the Read
		if _, err := io.ReadFull(srv, buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("message %d: got number %d, %v", i, buf[0], err)
		}
	}
	b1 := p.B.Stats()
	wb := b1.EngineWakeups - b0.EngineWakeups
	t.Logf("per message: receiver's engine wake-ups %.3f, caller turns %.2f", float64(wb)/n, float64(b1.CallerTurns-b0.CallerTurns)/n)
	// Counts, not timing: gVisor's timers may wake it now and then.
	if wb >= n/20 {
		t.Errorf("receiving engine woke %d times for %d messages, want almost never", wb, n)
	}
}

// waitQueued waits until c has n bytes received and not read. Each look
// is a request its caller serves, so the engine goroutine is not woken.
func waitQueued(t *testing.T, c *netconn.TCPConn, n int) {
	t.Helper()
	for {
		info, err := c.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.RecvQueued >= n {
			return
		}
		runtime.Gosched()
	}
}

package netconn_test

import (
	"io"
	"sync"
	"testing"

	"github.com/netcore-go/netcore/internal/testnet"
)

// The owner token on the RR path: with both stacks idle between
// exchanges, every request of a 1-byte request/response is served by its
// own caller (inline, or woken by readiness), so neither engine goroutine
// wakes; each side sends the data segment and gVisor's ACK.
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
	if wakeups > n/20 {
		t.Fatalf("engine goroutines woke %d times in %d exchanges, want (almost) never", wakeups, n)
	}
	if turns < 2*n {
		t.Fatalf("%d caller turns in %d exchanges, want at least 2 per exchange", turns, n)
	}
}

package netconn_test

import (
	"sync"
	"testing"

	"github.com/netcore-go/netcore/internal/testnet"
)

// The owner token on the datagram path quic-go uses (one WriteTo and one
// ReadFrom per packet): with the reader parked in ReadFrom when each
// datagram arrives, the send is served by the writer's goroutine and the
// receive by the reader's, woken by readiness; the engine goroutines
// (almost) never wake. And a send costs its caller one turn: gVisor's
// "send space freed" after each packet no longer queues the sending
// socket for a second turn (2.00 turns per datagram before, 1.00 after).
func TestDatagramsServedByCallers(t *testing.T) {
	p := testnet.NewPair(t)
	snd, rcv := udpListeners(t, p)
	to := rcv.LocalAddr()
	const n = 2000
	msg := make([]byte, 64)
	var wg sync.WaitGroup
	got := make(chan int, 1)
	next := make(chan struct{})
	wg.Go(func() {
		buf := make([]byte, 2048)
		k := 0
		for range n {
			next <- struct{}{}
			if nr, _, err := rcv.ReadFrom(buf); err != nil || nr != len(msg) || buf[0] != byte(k) {
				break
			}
			k++
		}
		got <- k
	})
	a0, b0 := p.A.Stats(), p.B.Stats()
	for i := range n {
		<-next
		msg[0] = byte(i)
		if _, err := snd.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
	}
	k := <-got
	wg.Wait()
	a1, b1 := p.A.Stats(), p.B.Stats()
	if k != n {
		t.Fatalf("received %d of %d datagrams in order", k, n)
	}
	wa, wb := a1.EngineWakeups-a0.EngineWakeups, b1.EngineWakeups-b0.EngineWakeups
	ta, tb := a1.CallerTurns-a0.CallerTurns, b1.CallerTurns-b0.CallerTurns
	t.Logf("per datagram: engine wake-ups sender %.3f receiver %.3f, caller turns sender %.2f receiver %.2f",
		float64(wa)/n, float64(wb)/n, float64(ta)/n, float64(tb)/n)
	// Counts, not timing; the bounds leave a loaded machine room.
	if wa+wb >= n {
		t.Errorf("engine goroutines woke %d times for %d datagrams, want far fewer", wa+wb, n)
	}
	if tb < n {
		t.Errorf("receiver's callers served %d turns for %d datagrams, want at least one each", tb, n)
	}
	if ta >= 3*n/2 {
		t.Errorf("sender's callers served %d turns for %d sends, want about one each", ta, n)
	}
}

// A datagram that arrives before its ReadFrom is called (one goroutine
// doing WriteTo then ReadFrom, as a request/response client does) wakes
// no engine goroutine: the receiving socket waits on the ready list for
// the ReadFrom's own turn. Before, the receiving stack's engine woke for
// about one datagram in four to look at a socket nobody was reading.
func TestDatagramBeforeReadWakesNoEngine(t *testing.T) {
	p := testnet.NewPair(t)
	snd, rcv := udpListeners(t, p)
	to := rcv.LocalAddr()
	const n = 2000
	msg, buf := make([]byte, 64), make([]byte, 2048)
	b0 := p.B.Stats()
	for i := range n {
		msg[0] = byte(i)
		if _, err := snd.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
		if k, _, err := rcv.ReadFrom(buf); err != nil || k != len(msg) || buf[0] != byte(i) {
			t.Fatalf("datagram %d: %d bytes, number %d, %v", i, k, buf[0], err)
		}
	}
	b1 := p.B.Stats()
	wb := b1.EngineWakeups - b0.EngineWakeups
	t.Logf("per datagram: receiver's engine wake-ups %.3f, caller turns %.2f", float64(wb)/n, float64(b1.CallerTurns-b0.CallerTurns)/n)
	// Counts, not timing: the inbound gate's barrier and gVisor's timers may
	// wake it now and then.
	if wb >= n/20 {
		t.Errorf("receiving engine woke %d times for %d datagrams, want almost never", wb, n)
	}
}

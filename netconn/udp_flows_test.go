package netconn_test

import (
	"sync"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// Eight unpaced flows (eight senders writing as fast as they can, eight
// readers) between two joined stacks lose no datagram while the queues
// have room: a sender's delivery into the peer overlaps the next sender's
// turn, but senders wait for the peer (the delivery in progress, its
// inbound gate) instead of filling the outbound queue past its bound. A
// probe that let go of the token before delivering, without that wait,
// lost 6% of such datagrams.
func TestUnpacedFlowsLoseNothing(t *testing.T) {
	const flows, per, size = 8, 1500, 64
	p := testnet.NewPair(t, func(a, b *core.Config) { b.UDPRecvBuffer = 1 << 20 })
	var wg sync.WaitGroup
	got := make([]int, flows)
	for f := range flows {
		snd, rcv := udpListeners(t, p)
		rcv.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard should any be lost, not a timing
		wg.Go(func() {
			buf := make([]byte, 2048)
			for got[f] < per {
				if n, _, err := rcv.ReadFrom(buf); err != nil || n != size {
					return
				}
				got[f]++
			}
		})
		wg.Go(func() {
			msg := make([]byte, size)
			for range per {
				if _, err := snd.WriteTo(msg, rcv.LocalAddr()); err != nil {
					t.Errorf("WriteTo: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	a, b := p.A.Stats(), p.B.Stats()
	for f, n := range got {
		if n != per {
			t.Errorf("flow %d received %d of %d datagrams", f, n, per)
		}
	}
	if a.OutboundDrops != 0 || b.UDPQueueDrops != 0 || b.UDPRecvErrors != 0 {
		t.Errorf("drops: outbound %d, receive queue %d, gVisor receive errors %d; want none",
			a.OutboundDrops, b.UDPQueueDrops, b.UDPRecvErrors)
	}
	t.Logf("caller turns per datagram: sender %.2f, receiver %.2f", float64(a.CallerTurns)/(flows*per), float64(b.CallerTurns)/(flows*per))
}

package core_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// stallWriter is an io.Writer whose second Write blocks until released
// (the first is the header a pcap writer writes at once): as a PCAP
// writer it stalls the stack's packet path where it writes out its
// buffer.
type stallWriter struct {
	mu       sync.Mutex
	writes   int
	blocked  chan struct{} // closed when the second Write blocks
	released chan struct{}
}

func (w *stallWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	stall := w.writes == 2
	w.mu.Unlock()
	if stall {
		close(w.blocked)
		<-w.released
	}
	return len(p), nil
}

// A caller of Request delivers what its turn sent to a joined peer after
// it has let go of the token: while that delivery is held up inside the
// peer (here, by the peer's stalled packet capture), the sending stack
// serves other requests. Before, the token stayed with the delivering
// sender, and every other request on the stack waited for the peer.
func TestDeliveryDoesNotHoldToken(t *testing.T) {
	leakCheck(t)
	w := &stallWriter{blocked: make(chan struct{}), released: make(chan struct{})}
	p := testnet.NewPair(t, func(a, b *core.Config) { b.PCAP = w })
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	ua := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netipA(0)})
	ub := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netipB(0)})
	sent := make(chan error, 1)
	go func() {
		for {
			select {
			case <-w.blocked:
				sent <- nil
				return
			default:
			}
			// Each datagram fills the capture's 64 KiB buffer a little
			// more; the one that overflows it stalls in the peer.
			if _, err := a.Request(context.Background(), ua.Handle, core.UDPSend{To: ub.Local, Buf: make([]byte, 1200)}); err != nil {
				sent <- err
				return
			}
		}
	}()
	<-w.blocked
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a hang guard, not a timing
	defer cancel()
	asked := make(chan struct{})
	guard := make(chan bool, 1)
	go func() { // a request cut by ctx still waits for its reply: let the peer go then
		select {
		case <-ctx.Done():
			guard <- true
		case <-asked:
			guard <- false
		}
		close(w.released)
	}()
	_, err := a.Request(ctx, core.NoHandle, core.GetStats{})
	close(asked)
	if <-guard || err != nil {
		t.Fatalf("a request on the sending stack was not served while its delivery was held up in the peer (%v)", err)
	}
	if err := <-sent; err != nil {
		t.Fatalf("send: %v", err)
	}
}

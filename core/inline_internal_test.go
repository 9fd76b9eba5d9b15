package core

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/netcore-go/netcore/core/gso"
)

// inlineDev is an InlineWriter that records the payloads written to it.
type inlineDev struct {
	mu      sync.Mutex
	written []string
}

func (d *inlineDev) ReadPackets([][]byte, []int) (int, error) { select {} }
func (d *inlineDev) WritePackets(pkts [][]byte) (int, error) {
	return d.WritePacketsGSO(pkts, make([]gso.Options, len(pkts)))
}
func (d *inlineDev) BatchSize() int     { return 8 }
func (d *inlineDev) Close() error       { return nil }
func (d *inlineDev) WritesInline() bool { return true }
func (d *inlineDev) WritePacketsGSO(pkts [][]byte, _ []gso.Options) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range pkts {
		d.written = append(d.written, string(p[len(p)-len("inline"):]))
	}
	return len(pkts), nil
}

func (d *inlineDev) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.written)
}

// The packets a token holder's turn queued reach an InlineWriter when the
// turn ends, before release returns, with no pump in between; one gVisor
// writes outside a turn (with its endpoint's lock held) is left to the
// pump, which is woken; while another goroutine is writing, the turn's
// packets are left queued for that one, which looks at the queue again
// once it lets go; past its bound the holder leaves the rest to the pump
// (and wakes it). All in order.
//
// The test plays the writer holding mu around calls checklocks cannot
// follow, hence the escape.
//
// +checklocksignore
func TestInlineWriterAtTurnEnd(t *testing.T) {
	ns := newIdleStack(t, "192.0.2.1/24")
	l := ns.link
	dev := &inlineDev{}
	w := newGSOWriter(dev)
	l.inline.Store(w)
	write := func(payload string) { t.Helper(); writeUDPPacket(t, l, payload) }
	want := []string{"gvisor", "turn01", "queued"}
	drainSignal(l.ready)
	write(want[0]) // outside a turn: gVisor's goroutine
	if got := dev.count(); got != 0 {
		t.Fatalf("device got %d packets written outside a turn, want 0 (left to the pump)", got)
	}
	select {
	case <-l.ready:
	default:
		t.Fatal("lost wake-up: the pump would sleep with a packet queued")
	}
	if err := w.drain(l); err != nil { // the pump
		t.Fatal(err)
	}
	l.hold() // a token holder's turn
	write(want[1])
	if got := dev.count(); got != 1 {
		t.Fatalf("device got %d packets during the turn, want 1 (the turn's left queued)", got)
	}
	l.release()
	if got := dev.count(); got != 2 {
		t.Fatalf("device got %d packets after the turn, want 2 (written inline by release)", got)
	}
	l.hold()
	write(want[2])
	w.mu.Lock() // another writer is at it
	l.release()
	if got := dev.count(); got != 2 {
		t.Fatalf("device got %d packets, want the third left queued for the writer", got)
	}
	w.mu.Unlock()
	if !l.queued() {
		t.Fatal("the writer, letting go, finds nothing queued")
	}
	if err := w.drain(l); err != nil {
		t.Fatal(err)
	}
	// A turn that queues more than an inline writer writes.
	bound := inlineRounds * inlineBatches * dev.BatchSize()
	l.hold()
	for i := range bound + 5 {
		p := fmt.Sprintf("bulk%02d", i)
		want = append(want, p)
		write(p)
	}
	drainSignal(l.ready)
	l.release()
	if got := dev.count(); got != 3+bound {
		t.Fatalf("device got %d packets after the big turn, want %d (the inline bound)", got, 3+bound)
	}
	select {
	case <-l.ready:
	default:
		t.Fatal("lost wake-up: the pump would sleep with packets queued")
	}
	if err := w.drain(l); err != nil { // the pump
		t.Fatal(err)
	}
	dev.mu.Lock()
	defer dev.mu.Unlock()
	if !slices.Equal(dev.written, want) {
		t.Fatalf("device got %q, want %q", dev.written, want)
	}
}

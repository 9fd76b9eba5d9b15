package impair

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/netcore-go/netcore/core"
)

// Device is a core.Device that impairs the packets of another: what the
// stack writes goes through Out before the inner device gets it, and what
// the inner device reads goes through In before the stack gets it. It is a
// plain Device (none of the inner device's offloads), so a stack attached
// to it sends wire-sized packets with full checksums and checks the
// checksums of what it receives, as a corrupted packet needs.
type Device struct {
	inner   core.Device
	out, in *Link
	hand    handoff
	wg      sync.WaitGroup // the inbound reader
	once    sync.Once
}

var _ core.Device = (*Device)(nil)

// Wrap returns a Device that impairs the packets dev carries: out those the
// stack sends, in those it receives. The Device owns dev and closes it on
// Close. It starts three goroutines, ended by Close: each link's delivery
// goroutine and one that reads dev. Wrap fails with ErrInvalid for a bad
// Config (and leaves dev open).
func Wrap(dev core.Device, out, in Config) (*Device, error) {
	d := &Device{inner: dev, hand: newHandoff()}
	var err error
	if d.out, err = New(out, d.writeInner); err != nil {
		return nil, err
	}
	if d.in, err = New(in, d.hand.offer); err != nil {
		d.out.Close()
		return nil, err
	}
	d.wg.Add(1)
	go d.readInner()
	return d, nil
}

// Out is the link the stack's outbound packets go through.
func (d *Device) Out() *Link { return d.out }

// In is the link the stack's inbound packets come through.
func (d *Device) In() *Link { return d.in }

// WritePackets implements core.Device: it gives the packets to Out (which
// copies them) and returns how many it took.
func (d *Device) WritePackets(pkts [][]byte) (int, error) {
	if err := d.out.SendBatch(pkts); err != nil {
		return 0, err
	}
	return len(pkts), nil
}

// ReadPackets implements core.Device: it waits for packets In delivers.
func (d *Device) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	return d.hand.take(bufs, sizes)
}

// BatchSize implements core.Device: the inner device's.
func (d *Device) BatchSize() int { return d.inner.BatchSize() }

// Close implements core.Device: it closes the inner device, then both
// links, and waits for its goroutines. A second Close returns an error
// matching net.ErrClosed.
func (d *Device) Close() error {
	err := fmt.Errorf("impair: close: %w", net.ErrClosed)
	d.once.Do(func() {
		err = d.inner.Close()
		d.hand.close()
		d.wg.Wait()
		err = errors.Join(err, d.out.Close(), d.in.Close())
	})
	return err
}

// writeInner is Out's delivery function: it writes to the inner device.
// Packets it fails to write (the device is closed) are dropped.
func (d *Device) writeInner(pkts [][]byte) {
	for len(pkts) > 0 {
		n, err := d.inner.WritePackets(pkts)
		if err != nil {
			return
		}
		pkts = pkts[n:]
	}
}

// readInner feeds what the inner device reads to In, until it fails (it
// does once closed).
func (d *Device) readInner() {
	defer d.wg.Done()
	size := max(1, d.inner.BatchSize())
	bufs, sizes := make([][]byte, size), make([]int, size)
	for i := range bufs {
		bufs[i] = make([]byte, 1<<16)
	}
	pkts := make([][]byte, size) // +checklocks:mu
	for {
		n, err := d.inner.ReadPackets(bufs, sizes)
		for i := range n {
			pkts[i] = bufs[i][:sizes[i]]
		}
		if n > 0 && d.in.SendBatch(pkts[:n]) != nil {
			return
		}
		if err != nil {
			return
		}
	}
}

// handoff passes In's delivered batches to ReadPackets: the delivery
// goroutine offers a batch and waits until ReadPackets took all of it.
type handoff struct {
	mu    sync.Mutex
	pkts  [][]byte      // what is left of the batch on offer
	ready chan struct{} // cap 1: a batch is on offer
	taken chan struct{} // cap 1: the batch on offer is all taken
	done  chan struct{} // closed by close
	once  sync.Once
}

func newHandoff() handoff {
	return handoff{ready: make(chan struct{}, 1), taken: make(chan struct{}, 1), done: make(chan struct{})}
}

// offer hands over pkts and waits until they are taken or close.
func (h *handoff) offer(pkts [][]byte) {
	h.mu.Lock()
	h.pkts = pkts
	h.mu.Unlock()
	signal(h.ready)
	select {
	case <-h.taken:
	case <-h.done:
	}
	h.mu.Lock()
	h.pkts = nil
	h.mu.Unlock()
}

// take waits for a batch on offer and copies up to len(bufs) of its
// packets. After close it fails with net.ErrClosed.
func (h *handoff) take(bufs [][]byte, sizes []int) (int, error) {
	for {
		if n := h.takeSome(bufs, sizes); n > 0 {
			return n, nil
		}
		select {
		case <-h.ready:
		case <-h.done:
			return 0, fmt.Errorf("impair: read: %w", net.ErrClosed)
		}
	}
}

func (h *handoff) takeSome(bufs [][]byte, sizes []int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := min(len(bufs), len(h.pkts))
	for i := range n {
		sizes[i] = copy(bufs[i], h.pkts[i])
	}
	if n > 0 {
		h.pkts = h.pkts[n:]
		if len(h.pkts) == 0 {
			signal(h.taken)
		}
	}
	return n
}

func (h *handoff) close() { h.once.Do(func() { close(h.done) }) }

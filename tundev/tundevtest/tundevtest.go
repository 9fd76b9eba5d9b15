// Package tundevtest has channel-backed devices for tests: Device, a
// core.Device double to attach to a Netstack, and TUN, a tun.Device double
// to hand to wireguard-go. The test side reads and writes whole packets on
// plain channels; the device side moves them in batches. Join joins two
// tun.Devices as a tunnel would.
package tundevtest

import (
	"net"
	"os"
	"sync"

	"github.com/netcore-go/netcore/core"
	"golang.zx2c4.com/wireguard/tun"
)

// DefaultBatchSize is the batch size of the doubles.
const DefaultBatchSize = 32

// ends holds the channels and the close state shared by both doubles.
// Inbound and Outbound are never closed (tests may still use them); Done is
// closed by Close.
type ends struct {
	// Inbound carries packets from the test into the device: what the
	// device's reader gets. The device copies each packet; the test keeps
	// ownership.
	Inbound chan []byte
	// Outbound carries packets the device's writer sent, each a fresh copy
	// the test owns.
	Outbound chan []byte

	done      chan struct{}
	closeOnce sync.Once
}

func newEnds(capacity int) ends {
	return ends{Inbound: make(chan []byte, capacity), Outbound: make(chan []byte, capacity), done: make(chan struct{})}
}

// Done is closed when the device is closed.
func (e *ends) Done() <-chan struct{} { return e.done }

// read waits for one inbound packet, then takes those already waiting, up
// to len(bufs), each copied into bufs[i][offset:].
func (e *ends) read(bufs [][]byte, sizes []int, offset int, closedErr error) (int, error) {
	select {
	case p := <-e.Inbound:
		sizes[0] = copy(bufs[0][offset:], p)
	case <-e.done:
		return 0, closedErr
	}
	n := 1
	for ; n < len(bufs); n++ {
		select {
		case p := <-e.Inbound:
			sizes[n] = copy(bufs[n][offset:], p)
		default:
			return n, nil
		}
	}
	return n, nil
}

// write copies each bufs[i][offset:] to Outbound, waiting for room.
func (e *ends) write(bufs [][]byte, offset int, closedErr error) (int, error) {
	for i, b := range bufs {
		select {
		case e.Outbound <- append([]byte(nil), b[offset:]...):
		case <-e.done:
			return i, closedErr
		}
	}
	return len(bufs), nil
}

func (e *ends) close(closedErr error) error {
	err := closedErr
	e.closeOnce.Do(func() { close(e.done); err = nil })
	return err
}

// Device is a core.Device double. Packets sent on Inbound reach the stack;
// packets the stack sends appear on Outbound.
type Device struct {
	ends
	// Batch is the batch size; 0 means DefaultBatchSize. Set it before
	// attaching the device.
	Batch int
}

var _ core.Device = (*Device)(nil)

// NewDevice returns a Device whose channels hold capacity packets each.
func NewDevice(capacity int) *Device { return &Device{ends: newEnds(capacity)} }

// ReadPackets implements core.Device.
func (d *Device) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	return d.read(bufs, sizes, 0, net.ErrClosed)
}

// WritePackets implements core.Device.
func (d *Device) WritePackets(pkts [][]byte) (int, error) { return d.write(pkts, 0, net.ErrClosed) }

// BatchSize implements core.Device.
func (d *Device) BatchSize() int { return batch(d.Batch) }

// Close implements core.Device: blocked calls return net.ErrClosed, and so
// does a second Close.
func (d *Device) Close() error { return d.close(net.ErrClosed) }

// TUN is a tun.Device double. Packets sent on Inbound are what Read
// returns (what wireguard-go sends through the tunnel); packets written to
// it appear on Outbound.
type TUN struct {
	ends
	// Batch is the batch size; 0 means DefaultBatchSize.
	Batch int
	// MTUValue is what MTU returns; 0 means 1420.
	MTUValue int
	events   chan tun.Event
}

var _ tun.Device = (*TUN)(nil)

// NewTUN returns a TUN whose channels hold capacity packets each. Its
// Events channel delivers tun.EventUp.
func NewTUN(capacity int) *TUN {
	t := &TUN{ends: newEnds(capacity), events: make(chan tun.Event, 1)}
	t.events <- tun.EventUp
	return t
}

// Read implements tun.Device.
func (t *TUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return t.read(bufs, sizes, offset, os.ErrClosed)
}

// Write implements tun.Device.
func (t *TUN) Write(bufs [][]byte, offset int) (int, error) {
	return t.write(bufs, offset, os.ErrClosed)
}

// BatchSize implements tun.Device.
func (t *TUN) BatchSize() int { return batch(t.Batch) }

// MTU implements tun.Device.
func (t *TUN) MTU() (int, error) {
	if t.MTUValue > 0 {
		return t.MTUValue, nil
	}
	return 1420, nil
}

// Name implements tun.Device.
func (t *TUN) Name() (string, error) { return "tundevtest", nil }

// File implements tun.Device: there is none.
func (t *TUN) File() *os.File { return nil }

// Events implements tun.Device; Close closes it.
func (t *TUN) Events() <-chan tun.Event { return t.events }

// Close implements tun.Device: blocked calls return os.ErrClosed, the
// Events channel is closed, and a second Close returns os.ErrClosed.
func (t *TUN) Close() error {
	err := t.close(os.ErrClosed)
	if err == nil {
		close(t.events)
	}
	return err
}

func batch(n int) int {
	if n > 0 {
		return n
	}
	return DefaultBatchSize
}

// shuttleOffset is the headroom Join leaves in front of each packet, as
// wireguard-go does for its own header.
const shuttleOffset = 16

// Join moves packets between two tun.Devices (two tundev.Virtuals, say),
// in batches, each way: a WireGuard tunnel minus the crypto. It returns a
// func that waits for both directions to end.
//
// Closing either device ends the join: the direction that meets the closed
// device (its read or write fails) closes the other device, which ends the
// other direction too. Join so takes over one Close: end a join by closing
// one of its devices, once; a tun.Device need not survive a second Close
// (wireguard-go's netstack TUN panics), though a tundev.Virtual and a TUN
// here do.
func Join(a, b tun.Device) (wait func()) {
	var once sync.Once
	closeOther := func(open tun.Device) { once.Do(func() { open.Close() }) }
	var wg sync.WaitGroup
	wg.Go(func() { closeOther(shuttle(a, b)) })
	wg.Go(func() { closeOther(shuttle(b, a)) })
	return wg.Wait
}

// shuttle moves batches from one tun.Device's Read to another's Write until
// one of them fails, and returns the device that did not.
func shuttle(from, to tun.Device) (open tun.Device) {
	bufs := make([][]byte, max(1, from.BatchSize()))
	for i := range bufs {
		bufs[i] = make([]byte, shuttleOffset+65535)
	}
	sizes := make([]int, len(bufs))
	out := make([][]byte, len(bufs))
	for {
		n, err := from.Read(bufs, sizes, shuttleOffset)
		for i := range n {
			out[i] = bufs[i][:shuttleOffset+sizes[i]]
		}
		if n > 0 {
			if _, werr := to.Write(out[:n], shuttleOffset); werr != nil {
				return from
			}
		}
		if err != nil {
			return to
		}
	}
}

package impair

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/netcore-go/netcore/core"
)

// Join joins two stacks, as core.JoinPipe does, through an impaired link:
// ab says what happens to a's packets on their way to b, ba to b's on their
// way to a. It returns the two links, for their Stats. Unlike JoinPipe it
// uses no offloads: packets are wire-sized (at most each stack's MTU) and
// fully checksummed, and each stack checks the checksums of what it
// receives, as a corrupted packet needs. Both stacks need Run to move
// traffic.
//
// Each stack owns its device, which owns the link its packets leave by:
// closing a stack closes that link (packets it held are dropped) and ends
// its goroutine. Join fails with ErrInvalid for a bad Config, and with the
// error of core.Netstack.AttachDevice if a stack is closed or already has a
// device.
func Join(a, b *core.Netstack, ab, ba Config) (abLink, baLink *Link, err error) {
	ea, eb := &joinEnd{done: make(chan struct{})}, &joinEnd{done: make(chan struct{})}
	if ea.out, err = New(ab, eb.receive); err != nil {
		return nil, nil, err
	}
	if eb.out, err = New(ba, ea.receive); err != nil {
		ea.out.Close()
		return nil, nil, err
	}
	if err := a.AttachDevice(ea); err != nil {
		ea.Close()
		eb.Close()
		return nil, nil, err
	}
	if err := b.AttachDevice(eb); err != nil {
		eb.Close() // a owns and will close ea
		return nil, nil, err
	}
	return ea.out, eb.out, nil
}

// joinEnd is one stack's device of a Join: a core.PushDevice whose
// outbound packets go through out, which delivers them straight into the
// other stack's Receiver. Its own inbound packets are pushed into its
// stack by the other end's link.
type joinEnd struct {
	out  *Link
	recv atomic.Pointer[core.Receiver]
	done chan struct{} // closed by Close
	once sync.Once
}

var _ core.PushDevice = (*joinEnd)(nil)

// receive is the other end's delivery function: it hands pkts to this
// end's stack. Packets that arrive before the stack is attached, or after
// it closed, are dropped, as by an unplugged cable.
func (e *joinEnd) receive(pkts [][]byte) {
	if r := e.recv.Load(); r != nil {
		(*r).Receive(pkts, 0)
	}
}

// SetReceiver implements core.PushDevice.
func (e *joinEnd) SetReceiver(r core.Receiver) { e.recv.Store(&r) }

// WritePackets implements core.Device: the packets go into the link.
func (e *joinEnd) WritePackets(pkts [][]byte) (int, error) {
	if err := e.out.SendBatch(pkts); err != nil {
		return 0, err
	}
	return len(pkts), nil
}

// ReadPackets implements core.Device; as a PushDevice the stack never
// calls it. It waits for Close.
func (e *joinEnd) ReadPackets([][]byte, []int) (int, error) {
	<-e.done
	return 0, fmt.Errorf("impair: read: %w", net.ErrClosed)
}

// BatchSize implements core.Device.
func (e *joinEnd) BatchSize() int { return maxBatch }

// Close implements core.Device: it closes the outbound link.
func (e *joinEnd) Close() error {
	e.once.Do(func() { close(e.done) })
	return e.out.Close()
}

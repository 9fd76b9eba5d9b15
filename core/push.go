package core

import (
	"fmt"
	"sync"
)

// A PushDevice is a Device that hands its inbound packets to the stack
// itself, from its own goroutines, instead of the stack reading them:
// AttachDevice gives it a Receiver (calling SetReceiver once, before it
// starts the outbound pump) and runs no inbound pump for it, so a packet
// crosses one goroutine hand-off fewer and is copied straight from the
// caller's buffer into gVisor's. ReadPackets is then not called by the
// stack. tundev.Virtual is one: wireguard-go's writes go straight in.
type PushDevice interface {
	Device
	// SetReceiver hands the device the Receiver its inbound packets go to
	// from then on.
	SetReceiver(r Receiver)
}

// A Receiver takes inbound packets for a stack; see PushDevice.
type Receiver interface {
	// Receive hands the stack packets bufs[i][offset:] (the layout of
	// wireguard-go's tun.Device.Write). It copies what it keeps, so the
	// buffers are the caller's again when it returns. It waits only while
	// the stack is behind with the packets it already has (more than a
	// bounded budget of them not yet consumed: the backpressure a full
	// NIC ring gives), never on a request. Malformed packets are dropped
	// and counted, as from any device. It may be called from several
	// goroutines at once: their packets enter gVisor concurrently (where
	// the stack coalesces the device's segments, the calls take turns), so
	// packets of one flow stay in order only if one goroutine hands them
	// over. Once the stack is closed it drops the packets and returns an
	// error matching net.ErrClosed.
	Receive(bufs [][]byte, offset int) error
}

// receiver is a stack's Receiver.
type receiver struct {
	link    *linkEP
	offload bool // the device is an OffloadDevice: validate and coalesce

	mu  sync.Mutex
	gro groPath // +checklocks:mu
	// +checklocks:mu
	pkts [][]byte // scratch under mu
}

// Receive implements Receiver.
func (r *receiver) Receive(bufs [][]byte, offset int) error {
	l := r.link
	l.inMu.RLock()
	defer l.inMu.RUnlock()
	if l.inClosed || l.in.enter(true) != nil {
		return fmt.Errorf("netcore: receive: %w", ErrClosed)
	}
	defer l.in.leave()
	if !r.offload {
		for _, b := range bufs {
			l.deliver(packetAt(b, offset))
		}
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pkts = r.pkts[:0]
	for _, b := range bufs {
		r.pkts = append(r.pkts, packetAt(b, offset))
	}
	l.deliverGRO(&r.gro, r.pkts)
	clear(r.pkts)
	return nil
}

// packetAt is b[offset:], or nothing (which is dropped and counted as
// malformed) if b is shorter than offset.
func packetAt(b []byte, offset int) []byte {
	if offset < 0 || offset > len(b) {
		return nil
	}
	return b[offset:]
}

package core

import (
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// pollBatch is the most packets PollDeviceIO moves per device call.
const pollBatch = 64

// pollState holds PollDeviceIO's buffers, made on the first call and kept,
// so that a call in steady state allocates nothing.
type pollState struct {
	mu    sync.Mutex // held for a whole PollDeviceIO call
	batch [pollBatch]*stack.PacketBuffer
	out   [][]byte // outbound packets, copied out of gVisor
	in    [][]byte // inbound buffers, each max(MTU, 64 KiB)
	sizes []int
}

// PollDeviceIO moves packets between the stack and dev once, without
// waiting, then wakes parked requests whose sockets became ready (the
// seed's poll_device_io). It reports whether any packet moved. Concurrent
// calls are serialised; the buffers stay with the stack, so that a call in
// steady state allocates nothing (BenchmarkPollDeviceIO). It panics, with
// an error matching ErrInvalid, if dev's link parameters do not match the
// stack's (a PipeDev's Medium or MTU), as AttachDevice refuses such a
// device: a programming error, found on the first call.
func (ns *Netstack) PollDeviceIO(dev PollDevice) bool {
	if err := ns.checkLink(dev); err != nil {
		panic(err)
	}
	ns.poll.mu.Lock()
	if ns.poll.out == nil {
		ns.poll.out, _ = makeBufs(pollBatch, ns.cfg.MTU)
		ns.poll.in, ns.poll.sizes = makeBufs(pollBatch, max(ns.cfg.MTU, 1<<16))
	}
	moved := ns.pollOut(dev) + ns.pollIn(dev)
	ns.poll.mu.Unlock()
	ns.sweepUDP.Store(true)
	if ns.acquire() {
		ns.serviceReady()
		ns.releaseDriver()
	}
	return moved > 0
}

// pollOut copies the stack's outbound packets into the poll buffers and
// offers them to dev; what dev does not take is dropped and counted.
func (ns *Netstack) pollOut(dev PollDevice) int {
	p := &ns.poll
	total := 0
	for {
		n := ns.link.dequeue(p.batch[:])
		if n == 0 {
			return total
		}
		for i, pkt := range p.batch[:n] {
			p.out[i] = packetInto(pkt, p.out[i])
			pkt.DecRef()
			p.batch[i] = nil
		}
		sent, _ := dev.TryWritePackets(p.out[:n])
		ns.link.drops.Add(uint64(n - sent))
		total += n
	}
}

// pollIn delivers what dev has waiting, a batch at a time.
func (ns *Netstack) pollIn(dev PollDevice) int {
	p := &ns.poll
	total := 0
	for {
		for i, b := range p.in {
			p.in[i] = b[:cap(b)]
		}
		n, err := dev.TryReadPackets(p.in, p.sizes)
		for i := range n {
			ns.link.deliver(p.in[i][:p.sizes[i]])
		}
		total += n
		if n == 0 || err != nil {
			return total
		}
	}
}

package core

import (
	"errors"
	"fmt"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Device moves whole IP packets between a Netstack and a network, in
// batches. Read and write may be called concurrently with each other (one
// goroutine each), never concurrently with themselves.
//
// A Device may also have optional abilities, which the stack finds by type
// assertion when it is attached: a SwapReader spares a copy on the way in;
// a PullDevice's reader takes outbound packets itself from a Source, and a
// PushDevice hands inbound packets to a Receiver itself, each sparing a
// goroutine hand-off; an OffloadDevice takes TCP super-segments with
// WritePacketsGSO, and an InlineWriter lets the stack write to it inline,
// without waking a pump; a GSODevice says whether it wants super-segments at all.
// A PollDevice (no Device needed) can be driven by hand with PollDeviceIO.
// A LinkMediumDevice says which medium it carries (Ethernet frames rather
// than IP packets); the stack refuses a device whose medium is not its own.
type Device interface {
	// ReadPackets waits for at least one inbound packet (network to stack)
	// and reads up to len(bufs) of them: packet i into bufs[i], its length
	// in sizes[i]. It returns the number read. After Close it returns an
	// error (net.ErrClosed).
	ReadPackets(bufs [][]byte, sizes []int) (int, error)
	// WritePackets sends outbound packets (stack to network) and returns
	// how many it sent. It must not keep pkts or their bytes after it
	// returns. It may wait for room; after Close it returns an error.
	WritePackets(pkts [][]byte) (int, error)
	// BatchSize is the most packets one call moves.
	BatchSize() int
	// Close stops the device and wakes its blocked calls. A Netstack closes
	// the devices attached to it.
	Close() error
}

// PollDevice is a device that can be driven by hand with
// Netstack.PollDeviceIO: its calls never wait.
type PollDevice interface {
	// TryReadPackets reads the inbound packets that are waiting, up to
	// len(bufs), as Device.ReadPackets does; 0 means none.
	TryReadPackets(bufs [][]byte, sizes []int) (int, error)
	// TryWritePackets sends what it can without waiting; packets it did
	// not take are dropped by the caller.
	TryWritePackets(pkts [][]byte) (int, error)
}

// SwapReader is an optional Device ability that spares a copy on the way
// in. ReadPacketsSwap is ReadPackets, except that instead of copying a
// packet into bufs[i] the device may exchange slices: bufs[i] then holds
// the packet (sizes[i] its length) and the device keeps the slice that was
// there, to reuse as it likes. The stack hands the slices it gets back to
// the next call; it reslices each to its capacity first.
type SwapReader interface {
	ReadPacketsSwap(bufs [][]byte, sizes []int) (int, error)
}

// readFunc is dev's batch read: ReadPacketsSwap where the device has it.
func readFunc(dev Device) func(bufs [][]byte, sizes []int) (int, error) {
	if sr, ok := dev.(SwapReader); ok {
		return func(bufs [][]byte, sizes []int) (int, error) {
			for i, b := range bufs {
				bufs[i] = b[:cap(b)]
			}
			return sr.ReadPacketsSwap(bufs, sizes)
		}
	}
	return dev.ReadPackets
}

// ownedWriter is a device that takes ownership of the packets written to
// it, which spares a copy. The outbound pump hands such devices fresh
// slices.
type ownedWriter interface {
	writeOwned(pkts [][]byte) (int, error)
}

// ownedReader hands out packets it no longer needs, sparing a copy.
type ownedReader interface {
	readOwned(out [][]byte) (int, error)
}

// offloader is a device that carries super-segments and unchecksummed
// packets (see PipeDev.Offload).
type offloader interface{ offload() bool }

// PipeDev is a Device (and PollDevice) on one end of a Pipe: what the stack
// sends goes into the pipe; what the other end sends comes into the stack.
type PipeDev struct {
	// End is the pipe end this device owns.
	End *PipeEnd
	// Medium is the kind of frames the pipe carries (MediumIP: IP packets;
	// MediumEthernet: Ethernet II frames). It must be the stack's
	// (Config.Medium): AttachDevice refuses another with an error matching
	// ErrMediumMismatch.
	Medium Medium
	// MTU is the largest packet the device carries. 0 means the stack's
	// MTU; any other value must equal it. AttachDevice refuses a PipeDev
	// whose Medium or MTU does not match the stack's, and PollDeviceIO
	// panics on one.
	MTU int
	// Batch is the batch size; 0 means 64.
	Batch int
	// Offload makes the stack hand the pipe whole TCP super-segments (up to
	// 64 KiB, as a NIC with TSO would take them) without transport
	// checksums, and trust the checksums of what it receives (as with GRO
	// and checksum offload). Only for a pipe whose other end is a netcore
	// stack with Offload set too; JoinPipe sets it. PollDeviceIO ignores it.
	Offload bool

	// scratch and wscratch are TryReadPackets' and TryWritePackets' slice
	// headers, kept between calls (a PollDevice is polled by one goroutine
	// at a time).
	scratch, wscratch [][]byte
}

func (d *PipeDev) offload() bool { return d.Offload }

// linkChecker is a device with link parameters that must match the
// stack's; AttachDevice and PollDeviceIO check them.
type linkChecker interface {
	checkLink(medium Medium, mtu int) error
}

// checkLink implements linkChecker.
func (d *PipeDev) checkLink(medium Medium, mtu int) error {
	if d.Medium != medium {
		return mediumError("PipeDev", d.Medium, medium)
	}
	if d.MTU != 0 && d.MTU != mtu {
		return fmt.Errorf("netcore: PipeDev.MTU %d does not match the stack's MTU %d: %w", d.MTU, mtu, ErrInvalid)
	}
	return nil
}

var (
	_ Device     = (*PipeDev)(nil)
	_ PollDevice = (*PipeDev)(nil)
)

// ReadPackets implements Device.
func (d *PipeDev) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	pkts := make([][]byte, len(bufs))
	n, err := d.End.RecvBatch(pkts)
	return copyOut(pkts[:n], bufs, sizes), err
}

// TryReadPackets implements PollDevice. The packets it takes from the pipe
// are copied into bufs and their slices recycled.
func (d *PipeDev) TryReadPackets(bufs [][]byte, sizes []int) (int, error) {
	if cap(d.scratch) < len(bufs) {
		d.scratch = make([][]byte, len(bufs))
	}
	pkts := d.scratch[:len(bufs)]
	n, err := d.End.rx.pop(pkts)
	if errors.Is(err, ErrClosed) && n == 0 {
		return 0, err
	}
	copyOut(pkts[:n], bufs, sizes)
	for i := range pkts[:n] {
		recyclePacket(pkts[i])
		pkts[i] = nil
	}
	return n, nil
}

// WritePackets implements Device: it copies the packets into the pipe.
func (d *PipeDev) WritePackets(pkts [][]byte) (int, error) {
	return d.End.SendBatch(clonePackets(pkts))
}

// TryWritePackets implements PollDevice: it copies the packets it can
// into the pipe, into pooled slices that the reading end recycles.
func (d *PipeDev) TryWritePackets(pkts [][]byte) (int, error) {
	if cap(d.wscratch) < len(pkts) {
		d.wscratch = make([][]byte, len(pkts))
	}
	out := d.wscratch[:len(pkts)]
	for i, p := range pkts {
		out[i] = append(pooledPacket(len(p)), p...)
	}
	n, err := d.End.tx.push(out, false)
	for i := range out {
		if i >= n {
			recyclePacket(out[i])
		}
		out[i] = nil
	}
	return n, err
}

func (d *PipeDev) writeOwned(pkts [][]byte) (int, error) { return d.End.SendBatch(pkts) }

func (d *PipeDev) readOwned(out [][]byte) (int, error) { return d.End.RecvBatch(out) }

// BatchSize implements Device.
func (d *PipeDev) BatchSize() int {
	if d.Batch > 0 {
		return d.Batch
	}
	return 64
}

// Close implements Device. It closes the pipe.
func (d *PipeDev) Close() error { return d.End.Close() }

func copyOut(pkts, bufs [][]byte, sizes []int) int {
	for i, p := range pkts {
		sizes[i] = copy(bufs[i], p)
	}
	return len(pkts)
}

func clonePackets(pkts [][]byte) [][]byte {
	out := make([][]byte, len(pkts))
	for i, p := range pkts {
		out[i] = append([]byte(nil), p...)
	}
	return out
}

// Packet slices handed from one stack's outbound pump to another's inbound
// pump are recycled in two size classes.
const (
	smallPacket = 2048
	largePacket = 1 << 16
)

// The pools hold arrays, not slices, so that recycling a slice allocates
// nothing (a *[]byte would).
var (
	smallPackets = sync.Pool{New: func() any { return new([smallPacket]byte) }}
	largePackets = sync.Pool{New: func() any { return new([largePacket]byte) }}
)

// pooledPacket returns an empty slice with room for size bytes, pooled when
// size fits a size class.
func pooledPacket(size int) []byte {
	switch {
	case size <= smallPacket:
		return smallPackets.Get().(*[smallPacket]byte)[:0]
	case size <= largePacket:
		return largePackets.Get().(*[largePacket]byte)[:0]
	}
	return make([]byte, 0, size)
}

// packetBytes copies a gVisor packet into one slice, pooled when it fits a
// size class.
func packetBytes(pkt *stack.PacketBuffer) []byte {
	b := pooledPacket(pkt.Size())
	for _, s := range pkt.AsSlices() {
		b = append(b, s...)
	}
	return b
}

// recyclePacket returns a slice the stack owns to its pool.
func recyclePacket(b []byte) {
	switch cap(b) {
	case smallPacket:
		smallPackets.Put((*[smallPacket]byte)(b[:smallPacket]))
	case largePacket:
		largePackets.Put((*[largePacket]byte)(b[:largePacket]))
	}
}

// packetInto copies a gVisor packet into buf (grown if needed).
func packetInto(pkt *stack.PacketBuffer, buf []byte) []byte {
	buf = buf[:0]
	for _, s := range pkt.AsSlices() {
		buf = append(buf, s...)
	}
	return buf
}

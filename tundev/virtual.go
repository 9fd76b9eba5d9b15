package tundev

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"

	"github.com/netcore-go/netcore/core"
	"golang.zx2c4.com/wireguard/tun"
)

// VirtualConfig configures a Virtual. Its zero value works.
type VirtualConfig struct {
	// Name is what the tun.Device side's Name returns. Default "netcore".
	Name string
	// MTU is the largest packet, as reported to wireguard-go. Set it to
	// the stack's MTU (core.Netstack.MTU). Default 1500.
	MTU int
	// BatchSize is the most packets one call moves on either side.
	// Default 128 (wireguard-go's conn.IdealBatchSize).
	BatchSize int
	// QueueLen bounds the packets waiting in each direction while no stack
	// is attached (an attached stack uses no queue); a full queue makes the
	// writing side wait. Default: 1024 packets, fewer for MTUs above 16 KiB
	// so that one direction holds at most about 16 MiB, and never fewer
	// than two batches.
	QueueLen int
}

const (
	defaultName      = "netcore"
	defaultMTU       = 1500
	defaultBatchSize = 128
	defaultQueueLen  = 1024
	maxQueueBytes    = 16 << 20
)

func (c VirtualConfig) withDefaults() VirtualConfig {
	if c.Name == "" {
		c.Name = defaultName
	}
	if c.MTU <= 0 {
		c.MTU = defaultMTU
	}
	if c.BatchSize <= 0 {
		c.BatchSize = defaultBatchSize
	}
	if c.QueueLen <= 0 {
		c.QueueLen = max(2*c.BatchSize, min(defaultQueueLen, maxQueueBytes/c.MTU))
	}
	return c
}

// Virtual is a virtual TUN device with a Netstack on one side and
// wireguard-go (or anything else that drives a tun.Device) on the other.
// It is a core.Device for the stack (attach it with
// core.Netstack.AttachDevice) and a tun.Device for wireguard-go (pass it to
// device.NewDevice).
//
// Attached to a stack, a Virtual has no queue and no goroutine of its own
// in either direction: Read takes the stack's outbound packets straight
// from it (a core.PullDevice), cutting TCP super-segments (it is a
// core.GSODevice that wants them) into wire-sized segments in the reader's
// buffers, and Write hands inbound ones straight to it (a
// core.PushDevice), which validates, coalesces and copies them
// into its own buffers. Each packet is copied once each way, as a NIC's
// DMA would. Until a stack is attached, each direction is a bounded queue
// that moves whole batches and makes its writer wait when full, so nothing
// is dropped between the two sides; what waits in the inbound queue is
// handed over on attach.
//
// Close may be called by either owner (the stack closes attached devices;
// wireguard-go closes its tun.Device), from any goroutine, while traffic
// flows: it wakes every blocked call, closes the Events channel once, and
// every later call fails with ErrClosed.
type Virtual struct {
	cfg     VirtualConfig
	out, in *batchQueue // out: stack → tun side; in: tun side → stack
	events  chan tun.Event
	recv    atomic.Pointer[core.Receiver] // set by SetReceiver
	src     atomic.Pointer[core.Source]   // set by SetSource
	done    chan struct{}                 // closed by Close

	closed    atomic.Bool
	closeOnce sync.Once
}

var (
	_ core.Device     = (*Virtual)(nil)
	_ core.GSODevice  = (*Virtual)(nil)
	_ core.PushDevice = (*Virtual)(nil)
	_ core.PullDevice = (*Virtual)(nil)
	_ core.SwapReader = (*Virtual)(nil)
	_ tun.Device      = (*Virtual)(nil)
)

// NewVirtual makes a Virtual from cfg. It is up at once: Events delivers
// tun.EventUp.
func NewVirtual(cfg VirtualConfig) *Virtual {
	cfg = cfg.withDefaults()
	v := &Virtual{
		cfg:    cfg,
		out:    newBatchQueue(cfg.QueueLen),
		in:     newBatchQueue(cfg.QueueLen),
		events: make(chan tun.Event, 1),
		done:   make(chan struct{}),
	}
	v.events <- tun.EventUp
	return v
}

// ReadPackets implements core.Device: it waits for packets written to the
// tun.Device side and copies up to len(bufs) of them.
func (v *Virtual) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	return v.in.pop(bufs, sizes, 0)
}

// ReadPacketsSwap implements core.SwapReader: as ReadPackets, but it hands
// the stack its queued packets' slices in exchange for the stack's, instead
// of copying.
func (v *Virtual) ReadPacketsSwap(bufs [][]byte, sizes []int) (int, error) {
	return v.in.popSwap(bufs, sizes)
}

// WritePackets implements core.Device: it queues packets (copying them)
// for Read, waiting while the queue is full. An attached stack does not
// call it: Read pulls the stack's packets (see core.PullDevice).
func (v *Virtual) WritePackets(pkts [][]byte) (int, error) {
	return v.out.push(pkts, 0)
}

// WantsGSO implements core.GSODevice: it does. An attached stack hands its
// Source whole TCP super-segments, which Read cuts into wire-sized
// segments straight into the reader's buffers, and coalesces the TCP
// segments Write hands it (GRO).
func (v *Virtual) WantsGSO() bool { return true }

// Read implements tun.Device: it waits for the stack's outbound packets
// and copies up to len(bufs) of them, packet i into bufs[i][offset:]. TCP
// super-segments from the stack are cut into wire-sized segments here (one
// that does not fit in the remaining bufs is split as far as they go, and
// the rest waits for the next Read). A packet larger than its buffer is
// dropped and counted (in Stats; once a stack is attached, in the stack's
// drops). No buffers, or fewer sizes than buffers, is an error matching
// core.ErrInvalid; only a closed Virtual or stack reads as ErrClosed.
func (v *Virtual) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if src := v.src.Load(); src != nil {
		return v.pull(*src, bufs, sizes, offset)
	}
	n, err := v.out.pop(bufs, sizes, offset)
	if errors.Is(err, errMoved) {
		return v.pull(*v.src.Load(), bufs, sizes, offset)
	}
	return n, err
}

// pull reads the stack's outbound packets straight from src.
func (v *Virtual) pull(src core.Source, bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := src.ReadPackets(v.done, bufs, sizes, offset)
	return n, deviceErr(err)
}

// SetSource implements core.PullDevice: from now on Read takes the stack's
// packets straight from s, and a Read waiting on the queue moves over.
func (v *Virtual) SetSource(s core.Source) {
	v.src.Store(&s)
	v.out.move()
}

// Write implements tun.Device: it hands bufs[i][offset:] to the attached
// stack, or, before one is attached, queues them for ReadPackets, waiting
// while the queue is full; it returns how many it took.
func (v *Virtual) Write(bufs [][]byte, offset int) (int, error) {
	if r := v.recv.Load(); r != nil {
		if v.closed.Load() {
			return 0, ErrClosed
		}
		if err := (*r).Receive(bufs, offset); err != nil {
			return 0, deviceErr(err)
		}
		return len(bufs), nil
	}
	n, err := v.in.push(bufs, offset)
	if v.recv.Load() != nil {
		v.drainIn() // a stack came while this Write queued: hand it over
	}
	return n, err
}

// SetReceiver implements core.PushDevice: from now on Write hands packets
// straight to r, and what is queued goes to r at once.
func (v *Virtual) SetReceiver(r core.Receiver) {
	v.recv.Store(&r)
	v.drainIn()
}

// drainIn hands the packets queued for ReadPackets to the receiver.
func (v *Virtual) drainIn() {
	r := *v.recv.Load()
	v.in.drain(func(pkts [][]byte) { r.Receive(pkts, 0) })
}

// BatchSize implements core.Device and tun.Device.
func (v *Virtual) BatchSize() int { return v.cfg.BatchSize }

// MTU implements tun.Device.
func (v *Virtual) MTU() (int, error) { return v.cfg.MTU, nil }

// Name implements tun.Device.
func (v *Virtual) Name() (string, error) { return v.cfg.Name, nil }

// File implements tun.Device: a Virtual has no file; it returns nil.
func (v *Virtual) File() *os.File { return nil }

// Events implements tun.Device. It delivers tun.EventUp once and is closed
// by Close.
func (v *Virtual) Events() <-chan tun.Event { return v.events }

// Close implements core.Device and tun.Device. The first call closes both
// queues (dropping what is in them), wakes every blocked call and closes
// the Events channel, and returns nil; later calls return ErrClosed.
func (v *Virtual) Close() error {
	err := error(ErrClosed)
	v.closeOnce.Do(func() {
		v.closed.Store(true)
		close(v.done)
		v.out.close()
		v.in.close()
		close(v.events)
		err = nil
	})
	return err
}

// VirtualStats are a Virtual's counters.
type VirtualStats struct {
	// Outbound and Inbound are the packets waiting in each direction.
	Outbound, Inbound int
	// Oversized counts packets dropped because the reader's buffer was
	// too small for them.
	Oversized uint64
}

// Stats returns a snapshot of v's counters.
func (v *Virtual) Stats() VirtualStats {
	return VirtualStats{
		Outbound:  v.out.len(),
		Inbound:   v.in.len(),
		Oversized: v.out.oversized.Load() + v.in.oversized.Load(),
	}
}

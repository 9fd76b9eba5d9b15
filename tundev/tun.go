package tundev

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/gso"
	"golang.zx2c4.com/wireguard/tun"
)

// Config configures a kernel TUN device made by Open. Its zero value works:
// a device named by the kernel (tun0, tun1, …; utunN on macOS; "netcore"
// on Windows), MTU 1500, offloads on where there are any, link left down,
// no addresses.
//
// Offloads and the host-side set-up (Up, Addrs, Routes) are Linux-only:
// elsewhere a device moves one packet per call, and Open fails with an
// error matching errors.ErrUnsupported if the set-up is asked for (set up
// the interface with the system's own tools, ifconfig or netsh, instead).
type Config struct {
	// Name is the interface name. Default "": the kernel picks one (on
	// macOS it must be "utun" or utunN, on OpenBSD "tun" or tunN; on
	// Windows "" means "netcore").
	Name string
	// MTU is the interface MTU. Default 1500.
	MTU int
	// File is an already open TUN device (a /dev/net/tun file descriptor
	// set up with TUNSETIFF, for example inherited from a privileged
	// parent). Open takes ownership of it; Name is then ignored and
	// DisableOffloads has no effect: the flags the file was opened with
	// decide. Default nil: Open creates a new device. Not on Windows.
	File *os.File
	// DisableOffloads opens the device without IFF_VNET_HDR: no TSO, USO
	// or checksum offload, one packet per read and write. Default false:
	// offloads on where the kernel has them (only Linux has any).
	DisableOffloads bool
	// Up brings the link up on the host side. Addrs or Routes imply it.
	Up bool
	// Addrs are added to the interface on the host side (the kernel's end
	// of the link, not the stack's). IPv6 addresses skip duplicate address
	// detection. Default none.
	Addrs []netip.Prefix
	// Routes are added on the host side through the interface. Default
	// none (an address's own prefix is routed by the kernel anyway).
	Routes []netip.Prefix
}

// writeOffset is the room left in front of each packet handed to
// tun.Device.Write: wireguard-go writes the virtio-net header (10 bytes)
// there when offloads are on. 16 is what wireguard-go itself leaves.
const writeOffset = 16

// virtioHdrLen is the length of the virtio-net header (struct
// virtio_net_hdr) in front of each packet a TUN with IFF_VNET_HDR (Linux,
// offloads on) reads and writes.
const virtioHdrLen = 10

// maxReadFailures is how many reads in a row may fail (each dropping what
// it read) before ReadPackets gives up and returns the error.
const maxReadFailures = 1000

// maxPacket bounds a coalesced (GRO) write buffer and a read.
const maxPacket = 65535

// TUN is a kernel TUN device driven by a Netstack: a core.Device over a
// wireguard-go tun.Device. Attach it with core.Netstack.AttachDevice; the
// stack then owns it and closes it on Close.
//
// A TUN is a core.OffloadDevice: the stack hands it TCP super-segments,
// which it cuts into wire-sized segments itself, and coalesces the TCP
// segments it reads before gVisor sees them. With offloads on, a TCP
// super-packet the kernel sent (TSO) reaches the stack whole, checksum
// trusted (see ReadPacketsValidated; on Linux), a read through ReadPackets
// returns the wire packets split from it, a super-segment the stack sends
// goes to the kernel whole (on Linux; see WritePacketsGSO), and a batch
// written is coalesced (GRO) into fewer, larger packets for the kernel.
type TUN struct {
	dev  tun.Device
	name string
	mtu  int

	headroom int        // readHeadroom, the room the system's tun reads need
	rbuf     [][]byte   // read buffer with headroom where headroom > 0; reader only
	raw      *rawReader // reads the device itself (Linux with offloads), or nil

	wbufs [][]byte // per-slot write buffers with headroom; one writer at a time
	wpkts [][]byte
	wseg  [][]byte // gso.Split's output: wbufs past the headroom
	wsize []int

	closed    atomic.Bool
	closeOnce sync.Once
	drained   chan struct{} // closed when the events channel is
	readErrs  atomic.Uint64
	writeErrs atomic.Uint64
	whole     atomic.Uint64
	single    atomic.Uint64
	wholeOut  atomic.Uint64
	vecOut    atomic.Uint64
}

var (
	_ core.InlineWriter    = (*TUN)(nil)
	_ core.ValidatedReader = (*TUN)(nil)
	_ core.VectoredWriter  = (*TUN)(nil)
)

// minWriteBufs is how many write buffers a TUN keeps at least: enough for
// the segments of one 64 KiB super-segment at IPv4's smallest MSS (536).
const minWriteBufs = 128

// Open creates (or, with Config.File, adopts) a kernel TUN device in the
// network namespace of the calling OS thread and sets up its host side as
// cfg says. Creating a device needs CAP_NET_ADMIN. To use another
// namespace, call Open from a goroutine locked (runtime.LockOSThread) to a
// thread that entered it. The device disappears when the TUN is closed.
//
// Open works wherever wireguard-go's tun.CreateTUN does: Linux, macOS
// (utun), FreeBSD, OpenBSD and Windows (Wintun, whose wintun.dll must be
// installed), as root or Administrator. Elsewhere, and for what Config
// marks Linux-only, it returns an error matching errors.ErrUnsupported.
func Open(cfg Config) (*TUN, error) {
	if cfg.MTU <= 0 {
		cfg.MTU = defaultMTU
	}
	if err := checkHostSetup(cfg); err != nil {
		return nil, fmt.Errorf("tundev: open: %w", err)
	}
	dev, err := createTUN(cfg)
	if err != nil {
		return nil, fmt.Errorf("tundev: open: %w", err)
	}
	t, err := Wrap(dev)
	if err != nil {
		dev.Close()
		return nil, err
	}
	if err := setupHost(t.name, cfg); err != nil {
		t.Close()
		return nil, fmt.Errorf("tundev: set up %s: %w", t.name, err)
	}
	return t, nil
}

// Wrap makes a TUN of any tun.Device (for example one from
// tun.CreateTUNFromFile) and takes ownership of it: it drains its Events
// and closes it on Close. Wrap reads the device's name and MTU once; call
// it in the device's network namespace.
func Wrap(dev tun.Device) (*TUN, error) {
	name, err := dev.Name()
	if err != nil {
		return nil, fmt.Errorf("tundev: device name: %w", err)
	}
	mtu, err := dev.MTU()
	if err != nil {
		return nil, fmt.Errorf("tundev: device MTU: %w", err)
	}
	t := &TUN{
		dev:      dev,
		name:     name,
		mtu:      mtu,
		headroom: readHeadroom,
		wbufs:    make([][]byte, max(minWriteBufs, dev.BatchSize())),
		wpkts:    make([][]byte, 0, max(minWriteBufs, dev.BatchSize())),
		wseg:     make([][]byte, max(minWriteBufs, dev.BatchSize())),
		wsize:    make([]int, max(minWriteBufs, dev.BatchSize())),
		drained:  make(chan struct{}),
		raw:      newRawReader(dev),
	}
	go t.drainEvents(dev.Events())
	return t, nil
}

// drainEvents consumes the device's events until it closes the channel:
// wireguard-go's listeners block on a full channel otherwise, and Close
// could not finish.
func (t *TUN) drainEvents(events <-chan tun.Event) {
	defer close(t.drained)
	if events == nil {
		return
	}
	for range events {
	}
}

// Name returns the interface name.
func (t *TUN) Name() string { return t.name }

// MTU returns the interface MTU read when the TUN was made.
func (t *TUN) MTU() int { return t.mtu }

// Offloads reports whether the device moves packets with a virtio-net
// header, and so with TSO/USO and checksum offloads and batches of more
// than one packet.
func (t *TUN) Offloads() bool { return t.dev.BatchSize() > 1 }

// Device returns the underlying tun.Device. It stays owned by t.
func (t *TUN) Device() tun.Device { return t.dev }

// BatchSize implements core.Device: the device's batch size (128 with
// offloads, 1 without).
func (t *TUN) BatchSize() int { return max(1, t.dev.BatchSize()) }

// ReadPackets implements core.Device. It waits for the kernel to send at
// least one packet. A super-packet is split into wire-sized packets; if
// they do not all fit in bufs it is dropped (TCP recovers). Malformed reads are skipped. After Close it returns an
// error matching net.ErrClosed.
func (t *TUN) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	return t.ReadPacketsValidated(bufs, sizes, nil)
}

// ReadPacketsValidated implements core.ValidatedReader: it is ReadPackets,
// except that on Linux with offloads a TCP super-segment the kernel sent
// (TSO) is read whole into bufs[0], if it fits (64 KiB), with valid[0] set:
// its virtio-net header marks its checksum partial, which the kernel does
// only for data that never left the machine, so the stack trusts it
// instead of checking every segment cut from it. A packet whose header
// says its checksum is valid (DATA_VALID) is marked too; all others are
// not. valid may be nil (ReadPackets).
func (t *TUN) ReadPacketsValidated(bufs [][]byte, sizes []int, valid []bool) (int, error) {
	if len(bufs) == 0 || len(sizes) < len(bufs) || (valid != nil && len(valid) < len(bufs)) {
		return 0, errBuffers
	}
	for failures := 0; ; {
		n, err := t.read(bufs, sizes, valid)
		switch {
		case t.closed.Load() || isClosedErr(err):
			return 0, ErrClosed
		case err == nil || errors.Is(err, tun.ErrTooManySegments):
			if n > 0 {
				return n, nil
			}
		case failures >= maxReadFailures:
			return 0, fmt.Errorf("tundev: read %s: %w", t.name, err)
		default:
			failures++
			t.readErrs.Add(1)
		}
	}
}

// read is one device read into bufs. Where the system's tun puts a header
// in front of each packet (headroom: the BSDs' address family), the packet
// is read into rbuf, behind room for it, and copied out: those systems
// read one packet per call anyway.
func (t *TUN) read(bufs [][]byte, sizes []int, valid []bool) (int, error) {
	if t.raw != nil {
		n, whole, err := t.raw.read(bufs, sizes, valid)
		if whole {
			t.whole.Add(1)
		}
		return n, err
	}
	clear(valid)
	if t.headroom == 0 {
		return t.dev.Read(bufs, sizes, 0)
	}
	if t.rbuf == nil {
		t.rbuf = [][]byte{make([]byte, t.headroom+maxPacket)}
	}
	n, err := t.dev.Read(t.rbuf, sizes[:1], t.headroom)
	if n > 0 {
		sizes[0] = copy(bufs[0], t.rbuf[0][t.headroom:t.headroom+sizes[0]])
	}
	return n, err
}

// WritePackets implements core.Device. It copies the packets behind the
// room the virtio-net header needs and writes them as one batch. Packets
// the kernel refuses (a link that is down, a malformed packet) are dropped
// and counted, as a NIC would; only Close stops it.
func (t *TUN) WritePackets(pkts [][]byte) (int, error) {
	for sent := 0; sent < len(pkts); {
		k := min(len(pkts)-sent, len(t.wbufs))
		if err := t.writeBatch(pkts[sent : sent+k]); err != nil {
			return sent, err
		}
		sent += k
	}
	return len(pkts), nil
}

func (t *TUN) writeBatch(pkts [][]byte) error {
	bufs := t.wpkts[:0]
	for i, p := range pkts {
		b := t.wbuf(i, len(p))[:writeOffset+len(p)]
		copy(b[writeOffset:], p)
		bufs = append(bufs, b)
	}
	return t.write(bufs)
}

// WritePacketsGSO implements core.OffloadDevice. On Linux with offloads a
// TCP super-segment from the stack with plain headers goes to the kernel
// whole, behind a virtio-net GSO header (TUNStats.WholeWrites); others
// are cut into wire-sized segments (gso.Split) straight into the write
// buffers, which spares gVisor making each segment a packet of its own,
// and with offloads on the kernel gets them coalesced again. A packet
// that does not match its metadata is dropped and counted.
func (t *TUN) WritePacketsGSO(pkts [][]byte, opts []gso.Options) (int, error) {
	bufs, start := t.wpkts[:0], 0
	for i, p := range pkts {
		segs := opts[i].Segments(len(p))
		if segs > 1 && t.raw != nil {
			if whole, err := t.writeSuper(bufs, p, opts[i]); whole {
				if err != nil {
					return start, err
				}
				bufs, start = t.wpkts[:0], i+1
				continue
			}
		}
		if len(bufs)+segs > len(t.wbufs) && len(bufs) > 0 {
			if err := t.write(bufs); err != nil {
				return start, err
			}
			bufs, start = t.wpkts[:0], i
		}
		if segs > len(t.wbufs) {
			t.writeErrs.Add(1)
			continue
		}
		at, size := len(bufs), len(p)
		if opts[i].Kind != gso.None {
			size = min(size, opts[i].HdrLen+opts[i].MSS)
		}
		for j := range segs {
			t.wseg[j] = t.wbuf(at+j, size)[writeOffset:]
		}
		n, err := gso.Split(p, opts[i], t.wseg[:segs], t.wsize)
		if err != nil {
			t.writeErrs.Add(1)
			continue
		}
		for j := range n {
			bufs = append(bufs, t.wbufs[at+j][:writeOffset+t.wsize[j]])
		}
	}
	if len(bufs) > 0 {
		if err := t.write(bufs); err != nil {
			return start, err
		}
	}
	return len(pkts), nil
}

// writeSuper writes the packets in bufs, then super-segment p whole (see
// rawReader.writeSuper), if the device takes it whole; it reports whether
// it did.
func (t *TUN) writeSuper(bufs [][]byte, p []byte, o gso.Options) (bool, error) {
	if !superWhole(p, o) {
		return false, nil
	}
	if len(bufs) > 0 {
		if err := t.write(bufs); err != nil {
			return true, err
		}
	}
	return true, t.wroteWhole(t.raw.writeSuper(p, o), false)
}

// wroteWhole counts the outcome err of a super-segment written whole
// (vectored: from the stack's own buffers) and returns what its writer
// reports: ErrClosed once the device is closed, nil otherwise (a failed
// write is counted and the packet lost, as any device's).
func (t *TUN) wroteWhole(err error, vectored bool) error {
	switch {
	case t.closed.Load() || isClosedErr(err):
		return ErrClosed
	case err != nil:
		t.writeErrs.Add(1)
	default:
		t.wholeOut.Add(1)
		if vectored {
			t.vecOut.Add(1)
		}
	}
	return nil
}

// WritePacketVectored implements core.VectoredWriter: on Linux with
// offloads a TCP super-segment with plain headers (those WritePacketsGSO
// writes whole) goes to the kernel from the stack's own buffers, parts,
// behind a virtio-net GSO header, in one writev (TUNStats.VectoredWrites);
// for any other it reports false.
func (t *TUN) WritePacketVectored(parts [][]byte, o gso.Options) (bool, error) {
	if t.raw == nil || len(parts) == 0 || !superWholeParts(parts, o) {
		return false, nil
	}
	return true, t.wroteWhole(t.raw.writeSuperParts(parts, o), true)
}

// wbuf returns write buffer i, with room for the headroom and a packet of
// size bytes (and, with offloads, for the packets coalesced into it).
func (t *TUN) wbuf(i, size int) []byte {
	if cap(t.wbufs[i]) < writeOffset+size {
		t.wbufs[i] = make([]byte, writeOffset+max(size, t.bufCap()))
	}
	return t.wbufs[i][:cap(t.wbufs[i])]
}

// write writes bufs (packets behind writeOffset bytes) as one batch.
func (t *TUN) write(bufs [][]byte) error {
	var err error
	if len(bufs) == 1 && t.raw != nil {
		// Nothing to coalesce: the packet goes out as wireguard-go's
		// Write would send it, without its coalescing tables (a write of
		// one packet is a round trip's reply or ACK).
		err = t.raw.writeOne(bufs[0][writeOffset-virtioHdrLen:])
		t.single.Add(1)
	} else {
		_, err = t.dev.Write(bufs, writeOffset)
	}
	clear(bufs)
	switch {
	case t.closed.Load() || isClosedErr(err):
		return ErrClosed
	case err != nil:
		t.writeErrs.Add(1)
	}
	return nil
}

// bufCap is the room a write buffer gets: a whole coalesced super-packet
// with offloads, one MTU without.
func (t *TUN) bufCap() int {
	if t.Offloads() {
		return maxPacket
	}
	return t.mtu
}

// WritesInline implements core.InlineWriter: a write hands its packets to
// the kernel, which takes or drops them without waiting, so the stack may
// write from the goroutine that sent them instead of waking its pump.
func (t *TUN) WritesInline() bool { return true }

// Close implements core.Device: it closes the device, which wakes blocked
// reads and writes, removes the interface (with its addresses and routes)
// unless it is persistent, and waits for the device's event goroutines. A
// second Close returns ErrClosed.
func (t *TUN) Close() error {
	err := error(ErrClosed)
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		err = t.dev.Close()
		<-t.drained
	})
	return err
}

// TUNStats are a TUN's error counters.
type TUNStats struct {
	// ReadErrors and WriteErrors count failed device reads and writes
	// whose packets were dropped.
	ReadErrors, WriteErrors uint64
	// WholeSuperSegments counts the TCP super-segments (TSO) the kernel
	// sent that went to the stack whole, checksum-validated, instead of
	// cut into wire-sized packets (see ReadPacketsValidated).
	WholeSuperSegments uint64
	// SingleWrites counts the writes of one packet that went to the
	// device directly, behind an empty virtio-net header, instead of
	// through wireguard-go's coalescing Write (Linux with offloads).
	SingleWrites uint64
	// WholeWrites counts the TCP super-segments from the stack written to
	// the kernel whole, behind a virtio-net GSO header, instead of cut
	// into wire-sized segments that wireguard-go's Write coalesces again
	// (Linux with offloads).
	WholeWrites uint64
	// VectoredWrites counts those of WholeWrites written from the stack's
	// own buffers (see WritePacketVectored), without a copy.
	VectoredWrites uint64
}

// Stats returns a snapshot of t's counters.
func (t *TUN) Stats() TUNStats {
	return TUNStats{ReadErrors: t.readErrs.Load(), WriteErrors: t.writeErrs.Load(), WholeSuperSegments: t.whole.Load(), SingleWrites: t.single.Load(), WholeWrites: t.wholeOut.Load(), VectoredWrites: t.vecOut.Load()}
}

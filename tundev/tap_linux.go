package tundev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/gso"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The virtio-net header (struct virtio_net_hdr, 10 bytes, host byte
// order) that precedes every frame on a TAP opened with IFF_VNET_HDR.
const (
	vnetHdrLen        = 10
	vnetNeedsCsum     = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetGSONone       = 0
	vnetGSOTCPv4      = 1
	vnetGSOTCPv6      = 4
	vnetGSOECN        = 0x80
	tapOffloads       = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	maxTAPFrame       = core.EthernetHeaderLen + maxPacket
	ethernetHeaderLen = core.EthernetHeaderLen
)

// vnetHdr is a parsed virtio_net_hdr.
type vnetHdr struct {
	flags, gsoType                         uint8
	hdrLen, gsoSize, csumStart, csumOffset uint16
}

func (h *vnetHdr) decode(b []byte) {
	h.flags, h.gsoType = b[0], b[1]&^vnetGSOECN
	h.hdrLen, h.gsoSize = binary.NativeEndian.Uint16(b[2:]), binary.NativeEndian.Uint16(b[4:])
	h.csumStart, h.csumOffset = binary.NativeEndian.Uint16(b[6:]), binary.NativeEndian.Uint16(b[8:])
}

func (h *vnetHdr) encode(b []byte) {
	b[0], b[1] = h.flags, h.gsoType
	binary.NativeEndian.PutUint16(b[2:], h.hdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.gsoSize)
	binary.NativeEndian.PutUint16(b[6:], h.csumStart)
	binary.NativeEndian.PutUint16(b[8:], h.csumOffset)
}

// tap is the Linux TAP: /dev/net/tun opened with IFF_TAP, non-blocking,
// driven through the runtime's poller.
type tap struct {
	f    *os.File
	rc   syscall.RawConn
	name string
	mtu  int
	vnet bool // IFF_VNET_HDR and offloads

	// Reader only: rbuf is the frame being read; split cuts a TCP
	// super-frame the kernel sent into wire frames, over as many reads as
	// it takes, eth being its Ethernet header.
	rbuf  []byte
	split gso.Splitter
	eth   [ethernetHeaderLen]byte

	// Writer only.
	whdrs [][vnetHdrLen]byte
	iov   [][]byte

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	dropped   atomic.Uint64
}

// OpenTAP creates (or, with Config.File, adopts) a kernel TAP device in
// the network namespace of the calling OS thread and sets up its host side
// as cfg says (Config.Up, Addrs, Routes; MTU is set on the interface); the
// TAP twin of Open. With Config.File the file must be a /dev/net/tun
// descriptor set up with IFF_TAP; its IFF_VNET_HDR flag then decides the
// offloads. Creating a device needs CAP_NET_ADMIN. The device disappears
// when the TAP is closed (unless it was made persistent elsewhere).
func OpenTAP(cfg Config) (*TAP, error) {
	if cfg.MTU <= 0 {
		cfg.MTU = defaultMTU
	}
	t, err := openTAP(cfg)
	if err != nil {
		return nil, fmt.Errorf("tundev: open TAP: %w", err)
	}
	if err := t.setMTU(); err != nil {
		t.Close()
		return nil, fmt.Errorf("tundev: set up %s: %w", t.name, err)
	}
	if err := setupHost(t.name, cfg); err != nil {
		t.Close()
		return nil, fmt.Errorf("tundev: set up %s: %w", t.name, err)
	}
	return t, nil
}

// openTAP opens the device file and reads back what the kernel made.
func openTAP(cfg Config) (*TAP, error) {
	f := cfg.File
	if f == nil {
		var err error
		if f, err = createTAP(cfg.Name, !cfg.DisableOffloads); err != nil {
			return nil, err
		}
	}
	t := &TAP{tap{f: f, mtu: cfg.MTU, rbuf: make([]byte, vnetHdrLen+maxTAPFrame)}}
	if err := t.adopt(); err != nil {
		f.Close()
		return nil, err
	}
	return t, nil
}

// createTAP opens /dev/net/tun as a TAP named name ("" lets the kernel
// pick tapN), with IFF_VNET_HDR and TSO/checksum offloads if vnet and the
// kernel has them.
func createTAP(name string, vnet bool) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if vnet {
		flags |= unix.IFF_VNET_HDR
	}
	if err = setIFF(fd, name, flags); err != nil && vnet {
		err = setIFF(fd, name, flags&^unix.IFF_VNET_HDR) // a kernel without vnet headers
	}
	if err == nil && flags&unix.IFF_VNET_HDR != 0 {
		if unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tapOffloads) != nil {
			_ = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, 0)
		}
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}

func setIFF(fd int, name string, flags uint16) error {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	ifr.SetUint16(flags)
	return unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
}

// adopt reads the device's name and flags (TUNGETIFF) and gets the file's
// poller handle.
func (t *tap) adopt() error {
	rc, err := t.f.SyscallConn()
	if err != nil {
		return err
	}
	var ifr *unix.Ifreq
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		if ifr, ierr = unix.NewIfreq(""); ierr == nil {
			ierr = unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr)
		}
	}); err != nil {
		return err
	}
	if ierr != nil {
		return fmt.Errorf("TUNGETIFF: %w", ierr)
	}
	flags := ifr.Uint16()
	if flags&unix.IFF_TAP == 0 {
		return fmt.Errorf("%s is not a TAP device: %w", ifr.Name(), core.ErrInvalid)
	}
	t.rc, t.name, t.vnet = rc, ifr.Name(), flags&unix.IFF_VNET_HDR != 0
	return nil
}

// setMTU sets the interface MTU on the host side.
func (t *tap) setMTU() error {
	link, err := netlink.LinkByName(t.name)
	if err != nil {
		return fmt.Errorf("find link: %w", err)
	}
	if err := netlink.LinkSetMTU(link, t.mtu); err != nil {
		return fmt.Errorf("set MTU %d: %w", t.mtu, err)
	}
	return nil
}

// Name returns the interface name.
func (t *tap) Name() string { return t.name }

// MTU returns the interface MTU (the largest IP packet; frames are 14
// bytes longer).
func (t *tap) MTU() int { return t.mtu }

// Offloads reports whether the device moves frames with a virtio-net
// header, and so TCP super-segments and checksum offload.
func (t *tap) Offloads() bool { return t.vnet }

// WantsGSO implements core.GSODevice: with offloads.
func (t *tap) WantsGSO() bool { return t.vnet }

// BatchSize implements core.Device.
func (t *tap) BatchSize() int { return tapBatch }

// Dropped counts the frames the device dropped: malformed reads, and
// super-frames it could not cut.
func (t *tap) Dropped() uint64 { return t.dropped.Load() }

// ReadPackets implements core.Device: it waits for a frame, then takes
// every frame the kernel has queued, up to len(bufs). A TCP super-frame
// is cut into wire-sized frames (continued by the next call if bufs are
// full), and a frame whose checksum the kernel left to the device gets it
// completed. After Close it returns an error matching net.ErrClosed.
func (t *tap) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	if err := checkBufs(bufs, sizes); err != nil {
		return 0, err
	}
	n := t.continueSplit(bufs, sizes)
	var rerr error
	err := t.rc.Read(func(fd uintptr) bool {
		for n < len(bufs) && t.split.Remaining() == 0 {
			m, err := unix.Read(int(fd), t.rbuf)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return n > 0
			case err != nil:
				rerr = err
				return true
			}
			n += t.take(t.rbuf[:m], bufs[n:], sizes[n:])
		}
		return true
	})
	return n, t.ioErr(err, rerr)
}

// take turns one frame read into wire frames in bufs and returns how many.
func (t *tap) take(b []byte, bufs [][]byte, sizes []int) int {
	if !t.vnet {
		sizes[0] = copy(bufs[0], b)
		return 1
	}
	if len(b) < vnetHdrLen+ethernetHeaderLen {
		t.dropped.Add(1)
		return 0
	}
	var h vnetHdr
	h.decode(b)
	frame := b[vnetHdrLen:]
	if h.gsoType == vnetGSONone && h.flags&vnetNeedsCsum == 0 {
		sizes[0] = copy(bufs[0], frame)
		return 1
	}
	o, ok := splitOptions(&h, frame)
	if !ok || t.split.Reset([][]byte{frame[ethernetHeaderLen:]}, o) != nil {
		t.dropped.Add(1)
		return 0
	}
	copy(t.eth[:], frame)
	return t.continueSplit(bufs, sizes)
}

// splitOptions converts a virtio-net header into the gso.Options of the
// IP packet after the frame's Ethernet header. The kernel's hdr_len is the
// length of the skb's linear part, not of the headers, so the TCP header's
// own length is read instead.
func splitOptions(h *vnetHdr, frame []byte) (gso.Options, bool) {
	start := int(h.csumStart) - ethernetHeaderLen
	o := gso.Options{NeedsCsum: true, CsumStart: start, CsumOffset: int(h.csumOffset)}
	switch h.gsoType {
	case vnetGSONone:
		return o, start > 0
	case vnetGSOTCPv4:
		o.Kind = gso.TCPv4
	case vnetGSOTCPv6:
		o.Kind = gso.TCPv6
	default:
		return o, false
	}
	tcp := int(h.csumStart)
	if start <= 0 || len(frame) < tcp+20 {
		return o, false
	}
	o.L3Len, o.MSS = start, int(h.gsoSize)
	o.HdrLen = start + int(frame[tcp+12]>>4)*4
	return o, true
}

// continueSplit writes the wire frames of the super-frame being cut into
// bufs, as many as fit, and returns how many.
func (t *tap) continueSplit(bufs [][]byte, sizes []int) int {
	k := 0
	for ; k < len(bufs) && t.split.Remaining() > 0; k++ {
		if len(bufs[k]) < ethernetHeaderLen {
			break
		}
		m, err := t.split.Next(bufs[k][ethernetHeaderLen:])
		if err != nil {
			t.dropped.Add(1)
			t.split.Clear()
			break
		}
		copy(bufs[k], t.eth[:])
		sizes[k] = ethernetHeaderLen + m
	}
	if t.split.Remaining() == 0 {
		t.split.Clear()
	}
	return k
}

// WritePackets implements core.Device: it writes whole frames, a batch per
// wake-up of the writer.
func (t *tap) WritePackets(pkts [][]byte) (int, error) {
	return t.write(pkts, nil)
}

// WritePacketsGSO implements core.OffloadDevice: TCP super-segments (and
// frames whose checksum is left to the device) go to the kernel with a
// virtio-net header saying so; opts[i] describes pkts[i] after its
// Ethernet header. Without offloads it fails with an error matching
// core.ErrInvalid.
func (t *tap) WritePacketsGSO(pkts [][]byte, opts []gso.Options) (int, error) {
	if !t.vnet {
		return 0, fmt.Errorf("tundev: TAP %s has no offloads: %w", t.name, core.ErrInvalid)
	}
	return t.write(pkts, opts)
}

// write writes pkts, each with its virtio-net header where the device has
// them.
func (t *tap) write(pkts [][]byte, opts []gso.Options) (int, error) {
	if t.closed.Load() {
		return 0, ErrClosed
	}
	if t.vnet {
		t.headers(pkts, opts)
	}
	sent := 0
	var werr error
	err := t.rc.Write(func(fd uintptr) bool {
		for sent < len(pkts) {
			var err error
			if t.vnet {
				t.iov[0], t.iov[1] = t.whdrs[sent][:], pkts[sent]
				_, err = unix.Writev(int(fd), t.iov)
			} else {
				_, err = unix.Write(int(fd), pkts[sent])
			}
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false
			case err == unix.EINVAL || err == unix.EMSGSIZE || err == unix.EIO:
				// The kernel refused this frame (EIO: the link is down, a
				// NIC without carrier): drop it, as a NIC would.
				t.dropped.Add(1)
			case err != nil:
				werr = err
				return true
			}
			sent++
		}
		return true
	})
	return sent, t.ioErr(err, werr)
}

// headers fills whdrs with the virtio-net header of each packet.
func (t *tap) headers(pkts [][]byte, opts []gso.Options) {
	if cap(t.whdrs) < len(pkts) {
		t.whdrs = make([][vnetHdrLen]byte, len(pkts))
		t.iov = make([][]byte, 2)
	}
	t.whdrs = t.whdrs[:len(pkts)]
	for i := range pkts {
		var h vnetHdr
		if opts != nil {
			h = vnetHeader(opts[i])
		}
		h.encode(t.whdrs[i][:])
	}
}

// vnetHeader is the virtio-net header for a frame whose IP packet o
// describes.
func vnetHeader(o gso.Options) vnetHdr {
	var h vnetHdr
	if o.NeedsCsum || o.Kind != gso.None {
		h.flags = vnetNeedsCsum
		h.csumStart = uint16(ethernetHeaderLen + o.CsumStart)
		h.csumOffset = uint16(o.CsumOffset)
	}
	switch o.Kind {
	case gso.TCPv4:
		h.gsoType = vnetGSOTCPv4
	case gso.TCPv6:
		h.gsoType = vnetGSOTCPv6
	default:
		return h
	}
	h.hdrLen = uint16(ethernetHeaderLen + o.HdrLen)
	h.gsoSize = uint16(o.MSS)
	return h
}

// ioErr is the error of a read or write: nil, ErrClosed once the device is
// closed, or the syscall's.
func (t *tap) ioErr(pollErr, sysErr error) error {
	switch {
	case pollErr == nil && sysErr == nil:
		return nil
	case t.closed.Load() || errors.Is(pollErr, os.ErrClosed) || isClosedErr(sysErr):
		return ErrClosed
	case pollErr != nil:
		return fmt.Errorf("tundev: TAP %s: %w", t.name, pollErr)
	}
	return fmt.Errorf("tundev: TAP %s: %w", t.name, sysErr)
}

// Close implements core.Device: it closes the device file, which wakes
// blocked reads and writes (they return ErrClosed) and removes the
// interface. A second Close returns ErrClosed.
func (t *tap) Close() error {
	first := false
	t.closeOnce.Do(func() {
		first = true
		t.closed.Store(true)
		t.closeErr = t.f.Close()
	})
	if !first {
		return ErrClosed
	}
	return t.closeErr
}

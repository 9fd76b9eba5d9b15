package tundev

import (
	"encoding/binary"
	"os"
	"syscall"

	"github.com/netcore-go/netcore/core/gso"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// rawReadSize is the largest packet a raw read takes: a whole TSO
// super-segment (the kernel's gso_max_size, 64 KiB).
const rawReadSize = 1 << 16

// rawReader reads a Linux TUN opened with IFF_VNET_HDR itself, instead of
// wireguard-go's Read, which cuts every TSO super-segment the kernel sends
// into wire-sized packets: a TCP super-segment whose headers are plain
// (IPv4 or IPv6 without extension headers) can then go to the stack whole,
// its checksum trusted because the header marks it partial (the kernel
// computes none for data that never left the machine). It only reads; the
// TUN keeps writing through wireguard-go.
type rawReader struct {
	rc      syscall.RawConn
	hdr     [virtioHdrLen]byte
	iovs    [][]byte
	scratch []byte // a read too large for the caller's buffer; one to split

	// The writer's own (one writer at a time; see writeSuper).
	whdr  [virtioHdrLen]byte
	wiovs [][]byte // the virtio-net header, then a packet's parts
}

// newRawReader returns a rawReader for dev if it is a Linux TUN with
// offloads, nil otherwise. It turns off UDP segmentation offload (USO) on
// the device, which this reader does not split: the kernel then cuts UDP
// GSO packets itself.
func newRawReader(dev tun.Device) *rawReader {
	f, ok := dev.(interface{ File() *os.File })
	if !ok || dev.BatchSize() <= 1 {
		return nil
	}
	rc, err := f.File().SyscallConn()
	if err != nil {
		return nil
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6)
	})
	if err != nil || ioErr != nil {
		return nil
	}
	return &rawReader{rc: rc, iovs: make([][]byte, 2), wiovs: make([][]byte, 2), scratch: make([]byte, rawReadSize)}
}

// virtioHdr is a decoded virtio-net header.
type virtioHdr struct {
	flags, gsoType                 uint8
	gsoSize, csumStart, csumOffset int
}

// readv reads one packet, behind its virtio-net header, into b.
func (r *rawReader) readv(b []byte) (int, virtioHdr, error) {
	r.iovs[0], r.iovs[1] = r.hdr[:], b
	var n int
	var err error
	rerr := r.rc.Read(func(fd uintptr) bool {
		n, err = unix.Readv(int(fd), r.iovs)
		return err != unix.EAGAIN
	})
	r.iovs[1] = nil
	switch {
	case rerr != nil:
		return 0, virtioHdr{}, rerr
	case err != nil:
		return 0, virtioHdr{}, err
	case n < virtioHdrLen:
		return 0, virtioHdr{}, errVirtio
	}
	h := virtioHdr{
		flags:      r.hdr[0],
		gsoType:    r.hdr[1],
		gsoSize:    int(binary.NativeEndian.Uint16(r.hdr[4:])),
		csumStart:  int(binary.NativeEndian.Uint16(r.hdr[6:])),
		csumOffset: int(binary.NativeEndian.Uint16(r.hdr[8:])),
	}
	return n - virtioHdrLen, h, nil
}

// read reads one packet from the device into bufs as wire packets, or,
// where valid is not nil and the packet is a plain TCP super-segment,
// whole into bufs[0] with valid[0] set. It reports whether it delivered
// one whole.
func (r *rawReader) read(bufs [][]byte, sizes []int, valid []bool) (int, bool, error) {
	direct := len(bufs[0]) >= rawReadSize
	into := r.scratch
	if direct {
		into = bufs[0]
	}
	n, h, err := r.readv(into)
	if err != nil {
		return 0, false, err
	}
	pkt := into[:n]
	clear(valid)
	switch h.gsoType {
	case unix.VIRTIO_NET_HDR_GSO_NONE:
		o := gso.Options{
			NeedsCsum: h.flags&unix.VIRTIO_NET_HDR_F_NEEDS_CSUM != 0,
			CsumStart: h.csumStart, CsumOffset: h.csumOffset,
		}
		if o.NeedsCsum && h.csumStart+h.csumOffset+2 > len(pkt) {
			return 0, false, errVirtio
		}
		if len(pkt) > len(bufs[0]) {
			return 0, false, errVirtio
		}
		n, err := gso.Split(pkt, o, bufs[:1], sizes)
		if n == 1 && valid != nil {
			valid[0] = h.flags&unix.VIRTIO_NET_HDR_F_DATA_VALID != 0
		}
		return n, false, err
	case unix.VIRTIO_NET_HDR_GSO_TCPV4, unix.VIRTIO_NET_HDR_GSO_TCPV6:
		o, plain, err := tcpSuper(pkt, h)
		if err != nil {
			return 0, false, err
		}
		if plain && direct && valid != nil {
			sizes[0], valid[0] = len(pkt), true
			return 1, true, nil
		}
		if direct {
			pkt = r.scratch[:copy(r.scratch, pkt)]
		}
		n, err := gso.Split(pkt, o, bufs, sizes)
		return n, false, err
	}
	return 0, false, errVirtio
}

// tcpSuper checks a TCP super-segment against its virtio-net header and
// returns its segmentation metadata, and whether it is plain: IPv4 or IPv6
// without options the stack could not take whole (no fragment, no IPv6
// extension header) and with IP lengths that match its size.
func tcpSuper(pkt []byte, h virtioHdr) (gso.Options, bool, error) {
	o := gso.Options{
		Kind: gso.TCPv4, L3Len: h.csumStart, MSS: h.gsoSize,
		NeedsCsum: true, CsumStart: h.csumStart, CsumOffset: h.csumOffset,
	}
	if h.gsoType == unix.VIRTIO_NET_HDR_GSO_TCPV6 {
		o.Kind = gso.TCPv6
	}
	if h.flags&unix.VIRTIO_NET_HDR_F_NEEDS_CSUM == 0 || h.csumOffset != header.TCPChecksumOffset ||
		len(pkt) < h.csumStart+header.TCPMinimumSize {
		return o, false, errVirtio
	}
	o.HdrLen = h.csumStart + int(header.TCP(pkt[h.csumStart:]).DataOffset())
	if o.HdrLen < h.csumStart+header.TCPMinimumSize || o.HdrLen > len(pkt) {
		return o, false, errVirtio
	}
	var plain bool
	switch o.Kind {
	case gso.TCPv4:
		ip := header.IPv4(pkt)
		plain = header.IPVersion(pkt) == header.IPv4Version && len(pkt) >= header.IPv4MinimumSize &&
			int(ip.HeaderLength()) == h.csumStart && int(ip.TotalLength()) == len(pkt) &&
			ip.Protocol() == uint8(header.TCPProtocolNumber) && ip.Flags()&header.IPv4FlagMoreFragments == 0 &&
			ip.FragmentOffset() == 0
	case gso.TCPv6:
		ip := header.IPv6(pkt)
		plain = header.IPVersion(pkt) == header.IPv6Version && h.csumStart == header.IPv6MinimumSize &&
			int(ip.PayloadLength())+header.IPv6MinimumSize == len(pkt) &&
			ip.NextHeader() == uint8(header.TCPProtocolNumber)
	}
	return o, plain, nil
}

// writeOne writes one packet, which has virtioHdrLen bytes of room in
// front of it (pkt[virtioHdrLen:] is the packet), behind an empty
// virtio-net header (no segmentation, checksums complete): what
// wireguard-go's Write writes for a packet it coalesced with none, without
// its coalescing tables, which cost a single small packet more than its
// system call's share (see TUN.write).
func (r *rawReader) writeOne(pkt []byte) error {
	clear(pkt[:virtioHdrLen])
	var err error
	werr := r.rc.Write(func(fd uintptr) bool {
		_, err = unix.Write(int(fd), pkt)
		return err != unix.EAGAIN
	})
	if werr != nil {
		return werr
	}
	return err
}

// writeSuper writes TCP super-segment pkt, as the stack made it (o: its
// IP and TCP headers, MSS, and the pseudo-header checksum in its TCP
// checksum field, CHECKSUM_PARTIAL), whole behind a virtio-net GSO header:
// the kernel takes it as one packet, as it takes the ones wireguard-go's
// Write coalesces, instead of the wire-sized segments gso.Split would cut
// and wireguard-go would coalesce again. The caller checked pkt with
// superWhole.
func (r *rawReader) writeSuper(pkt []byte, o gso.Options) error {
	return r.writeSuperParts([][]byte{pkt}, o)
}

// writeSuperParts is writeSuper for the super-segment that is parts
// joined (the caller checked it with superWholeParts).
func (r *rawReader) writeSuperParts(parts [][]byte, o gso.Options) error {
	h := &r.whdr
	h[0] = unix.VIRTIO_NET_HDR_F_NEEDS_CSUM
	h[1] = unix.VIRTIO_NET_HDR_GSO_TCPV4
	if o.Kind == gso.TCPv6 {
		h[1] = unix.VIRTIO_NET_HDR_GSO_TCPV6
	}
	binary.NativeEndian.PutUint16(h[2:], uint16(o.HdrLen))
	binary.NativeEndian.PutUint16(h[4:], uint16(o.MSS))
	binary.NativeEndian.PutUint16(h[6:], uint16(o.CsumStart))
	binary.NativeEndian.PutUint16(h[8:], uint16(o.CsumOffset))
	r.wiovs = append(append(r.wiovs[:0], h[:]), parts...)
	var err error
	werr := r.rc.Write(func(fd uintptr) bool {
		_, err = unix.Writev(int(fd), r.wiovs)
		return err != unix.EAGAIN
	})
	clear(r.wiovs)
	if werr != nil {
		return werr
	}
	return err
}

// maxWriteParts bounds the parts of a vectored write: one iovec is the
// virtio-net header's, and Linux takes 1024 (UIO_MAXIOV).
const maxWriteParts = 1024

// superWholeParts is superWhole for the super-segment that is parts
// joined, whose IP and TCP headers must all be in parts[0] (as gVisor
// builds them): false otherwise.
func superWholeParts(parts [][]byte, o gso.Options) bool {
	if len(parts) == 1 {
		return superWhole(parts[0], o)
	}
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	return len(parts) < maxWriteParts && o.HdrLen > 0 && len(parts[0]) >= o.HdrLen && superWholeSized(parts[0], size, o)
}

// superWhole reports whether TCP super-segment pkt can go to the kernel
// whole: more than one segment, its checksum left partial, plain headers
// (IPv4 without fragmentation, IPv6 without extension headers, the
// lengths matching pkt and o), and no CWR flag (which the kernel's
// segmentation wants marked as ECN).
func superWhole(pkt []byte, o gso.Options) bool {
	return superWholeSized(pkt, len(pkt), o)
}

// superWholeSized is superWhole for a super-segment of size bytes whose
// first len(pkt) bytes, its headers at least, are pkt.
func superWholeSized(pkt []byte, size int, o gso.Options) bool {
	if o.Kind != gso.TCPv4 && o.Kind != gso.TCPv6 || !o.NeedsCsum || o.MSS <= 0 ||
		size <= o.HdrLen+o.MSS || size > rawReadSize ||
		o.CsumStart != o.L3Len || o.CsumOffset != header.TCPChecksumOffset ||
		o.HdrLen < o.L3Len+header.TCPMinimumSize || o.HdrLen > len(pkt) {
		return false
	}
	tcp := header.TCP(pkt[o.L3Len:])
	if o.L3Len+int(tcp.DataOffset()) != o.HdrLen || tcp.Flags()&header.TCPFlagCwr != 0 {
		return false
	}
	if o.Kind == gso.TCPv4 {
		ip := header.IPv4(pkt)
		return header.IPVersion(pkt) == header.IPv4Version && int(ip.HeaderLength()) == o.L3Len &&
			int(ip.TotalLength()) == size && ip.Protocol() == uint8(header.TCPProtocolNumber) &&
			ip.Flags()&header.IPv4FlagMoreFragments == 0 && ip.FragmentOffset() == 0
	}
	ip := header.IPv6(pkt)
	return header.IPVersion(pkt) == header.IPv6Version && o.L3Len == header.IPv6MinimumSize &&
		int(ip.PayloadLength())+header.IPv6MinimumSize == size && ip.NextHeader() == uint8(header.TCPProtocolNumber)
}

package gso

import (
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Kind says what a packet described by Options is.
type Kind uint8

const (
	// None is a single wire-sized packet.
	None Kind = iota
	// TCPv4 is an IPv4 TCP super-segment: one IP and TCP header followed
	// by payload that Split cuts into MSS-sized segments.
	TCPv4
	// TCPv6 is the same over IPv6.
	TCPv6
)

// Options is the segmentation metadata of one packet, as a NIC with TCP
// segmentation offload receives it.
type Options struct {
	// Kind says whether the packet is a super-segment.
	Kind Kind
	// L3Len is the length of the IP header.
	L3Len int
	// HdrLen is the length of the IP and TCP headers together; the
	// payload starts there.
	HdrLen int
	// MSS is the most payload bytes in one segment.
	MSS int
	// NeedsCsum says the transport checksum is not final: Split computes
	// it (always for super-segments; for a None packet only when set).
	NeedsCsum bool
	// CsumStart is where the checksummed transport data starts, and
	// CsumOffset where its checksum field lies, counted from CsumStart.
	CsumStart, CsumOffset int
}

// Error is an error of this package; it matches its errno with errors.Is.
type Error struct {
	msg   string
	errno syscall.Errno
}

// Error implements error.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the errno the error matches.
func (e *Error) Unwrap() error { return e.errno }

// Errors of Split and Splitter.
var (
	// ErrBad means a packet does not match its Options (it matches
	// syscall.EINVAL).
	ErrBad = &Error{"gso: packet does not match its GSO metadata", syscall.EINVAL}
	// ErrBuffers means too few or too small buffers were given for the
	// segments (it matches syscall.ENOBUFS).
	ErrBuffers = &Error{"gso: too few or too small buffers for GSO segments", syscall.ENOBUFS}
)

// MaxHeaders bounds the IP and TCP headers of a super-segment a Splitter
// takes.
const MaxHeaders = 128

// Segments returns how many wire packets Split makes of a packet of pktLen
// bytes described by o.
func (o Options) Segments(pktLen int) int {
	if o.Kind == None || o.MSS <= 0 || pktLen <= o.HdrLen {
		return 1
	}
	return (pktLen - o.HdrLen + o.MSS - 1) / o.MSS
}

// Split writes the wire packets of pkt, described by o, into out: packet i
// into out[i][:sizes[i]]; it returns how many. A super-segment is cut into
// MSS-sized TCP segments with their own IP lengths, IPv4 IDs (counting up
// from the original's) and header checksums, sequence numbers, flags (CWR
// only on the first, FIN and PSH only on the last) and full TCP checksums.
// Any other packet is copied, and its TCP or UDP checksum completed when
// o.NeedsCsum is set. pkt is not modified. It fails with ErrBad or
// ErrBuffers, writing nothing meaningful.
func Split(pkt []byte, o Options, out [][]byte, sizes []int) (int, error) {
	if len(out) == 0 || len(sizes) < len(out) {
		return 0, ErrBuffers
	}
	parts := [][]byte{pkt}
	if o.Kind == None {
		n, err := finishPacket(parts, len(pkt), o, out[0])
		if err != nil {
			return 0, err
		}
		sizes[0] = n
		return 1, nil
	}
	if err := o.check(pkt, len(pkt)); err != nil {
		return 0, err
	}
	n := o.Segments(len(pkt))
	if n > len(out) {
		return 0, ErrBuffers
	}
	for i := range n {
		if len(out[i]) < o.segmentSize(i, len(pkt)) {
			return 0, ErrBuffers
		}
	}
	for i := range n {
		sizes[i] = o.segment(out[i], pkt[:o.HdrLen], parts, len(pkt), i, n)
	}
	return n, nil
}

// segmentSize is the length of segment i of a super-segment of total bytes.
func (o Options) segmentSize(i, total int) int {
	start := o.HdrLen + i*o.MSS
	return o.HdrLen + min(start+o.MSS, total) - start
}

// check reports whether a packet of total bytes that starts with pkt (its
// headers at least) is a TCP super-segment that o describes.
func (o Options) check(pkt []byte, total int) error {
	if o.MSS <= 0 || o.L3Len <= 0 || o.HdrLen < o.L3Len+header.TCPMinimumSize || total < o.HdrLen || len(pkt) < o.HdrLen {
		return ErrBad
	}
	if o.HdrLen+o.MSS > 0xffff {
		return ErrBad
	}
	switch o.Kind {
	case TCPv4:
		ip := header.IPv4(pkt)
		if o.L3Len < header.IPv4MinimumSize || header.IPVersion(pkt) != header.IPv4Version ||
			int(ip.HeaderLength()) != o.L3Len || ip.Protocol() != uint8(header.TCPProtocolNumber) {
			return ErrBad
		}
	case TCPv6:
		if o.L3Len != header.IPv6MinimumSize || header.IPVersion(pkt) != header.IPv6Version ||
			header.IPv6(pkt).NextHeader() != uint8(header.TCPProtocolNumber) {
			return ErrBad
		}
	default:
		return ErrBad
	}
	if int(header.TCP(pkt[o.L3Len:]).DataOffset()) != o.HdrLen-o.L3Len {
		return ErrBad
	}
	return nil
}

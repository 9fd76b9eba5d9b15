package gso

import (
	"github.com/netcore-go/netcore/internal/xsum"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// segment writes segment i of n of a super-segment of total bytes, whose
// headers are hdr and whose bytes are parts (laid end to end), into b and
// returns its length.
func (o Options) segment(b, hdr []byte, parts [][]byte, total, i, n int) int {
	start := o.HdrLen + i*o.MSS
	end := min(start+o.MSS, total)
	size := o.HdrLen + end - start
	b = b[:size]
	copy(b, hdr[:o.HdrLen])
	copyRange(b[o.HdrLen:], parts, start)
	var src, dst tcpip.Address
	if o.Kind == TCPv4 {
		ip := header.IPv4(b)
		ip.SetTotalLength(uint16(size))
		ip.SetID(ip.ID() + uint16(i))
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	} else {
		ip := header.IPv6(b)
		ip.SetPayloadLength(uint16(size - header.IPv6MinimumSize))
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	}
	tcp := header.TCP(b[o.L3Len:])
	tcp.SetSequenceNumber(tcp.SequenceNumber() + uint32(start-o.HdrLen))
	flags := tcp.Flags()
	if i > 0 {
		flags &^= header.TCPFlagCwr
	}
	if i < n-1 {
		flags &^= header.TCPFlagFin | header.TCPFlagPsh
	}
	tcp.SetFlags(uint8(flags))
	xsum.SetTransportChecksum(b, o.L3Len, header.TCPChecksumOffset, header.TCPProtocolNumber, src, dst)
	return size
}

// finishPacket copies a packet of total bytes that is not a super-segment,
// parts laid end to end, into b, completes its TCP or UDP checksum if o
// asks for it and returns its length.
func finishPacket(parts [][]byte, total int, o Options, b []byte) (int, error) {
	if len(b) < total {
		return 0, ErrBuffers
	}
	b = b[:total]
	copyRange(b, parts, 0)
	if o.NeedsCsum {
		if err := finishChecksum(b, o); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// copyRange fills dst from the bytes of parts, laid end to end, starting
// at off.
func copyRange(dst []byte, parts [][]byte, off int) {
	for _, p := range parts {
		if off >= len(p) {
			off -= len(p)
			continue
		}
		n := copy(dst, p[off:])
		dst, off = dst[n:], 0
		if len(dst) == 0 {
			return
		}
	}
}

// finishChecksum computes the TCP or UDP checksum of packet b in place.
func finishChecksum(b []byte, o Options) error {
	var src, dst tcpip.Address
	var proto tcpip.TransportProtocolNumber
	switch header.IPVersion(b) {
	case header.IPv4Version:
		ip := header.IPv4(b)
		if len(b) < header.IPv4MinimumSize || int(ip.HeaderLength()) != o.CsumStart {
			return ErrBad
		}
		src, dst, proto = ip.SourceAddress(), ip.DestinationAddress(), ip.TransportProtocol()
	case header.IPv6Version:
		ip := header.IPv6(b)
		if len(b) < header.IPv6MinimumSize || o.CsumStart != header.IPv6MinimumSize {
			return ErrBad
		}
		src, dst, proto = ip.SourceAddress(), ip.DestinationAddress(), ip.TransportProtocol()
	default:
		return ErrBad
	}
	switch {
	case proto == header.TCPProtocolNumber && o.CsumOffset == header.TCPChecksumOffset &&
		len(b) >= o.CsumStart+header.TCPMinimumSize:
	case proto == header.UDPProtocolNumber && o.CsumOffset == xsum.UDPChecksumOffset &&
		len(b) >= o.CsumStart+header.UDPMinimumSize:
	default:
		return ErrBad
	}
	xsum.SetTransportChecksum(b, o.CsumStart, o.CsumOffset, proto, src, dst)
	return nil
}

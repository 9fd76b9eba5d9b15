// Package xsum completes transport checksums in packet bytes: for
// core/gso when it cuts a super-segment, and for the tests of core and its
// packet packages that build IP packets by hand.
package xsum

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// UDPChecksumOffset is where a UDP header's checksum field lies.
const UDPChecksumOffset = 6

// SetTransportChecksum computes the checksum of the transport data b[start:]
// (with the pseudo-header of proto, src and dst) into the field at
// start+offset.
func SetTransportChecksum(b []byte, start, offset int, proto tcpip.TransportProtocolNumber, src, dst tcpip.Address) {
	field := b[start+offset : start+offset+2]
	field[0], field[1] = 0, 0
	xsum := header.PseudoHeaderChecksum(proto, src, dst, uint16(len(b)-start))
	xsum = ^checksum.Checksum(b[start:], xsum)
	if xsum == 0 && proto == header.UDPProtocolNumber {
		xsum = 0xffff // zero means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(field, xsum)
}

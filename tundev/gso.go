package tundev

import (
	"encoding/binary"

	"github.com/netcore-go/netcore/core"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// splitFront writes the first k segments of super-segment pkt (described by
// g, with more than k segments) into out, and returns the rest: a
// super-segment made in place in pkt's tail, its headers moved in front of
// the remaining payload with the sequence number and IPv4 ID advanced and
// CWR cleared (FIN and PSH stay with the last segment). core.SplitGSO
// recomputes every length and checksum, so they are left stale here.
func splitFront(pkt []byte, g core.GSO, k int, out [][]byte, sizes []int) (rest []byte, n int, err error) {
	cut := g.HdrLen + k*g.MSS
	if k <= 0 || g.MSS <= 0 || g.L3Len+header.TCPMinimumSize > g.HdrLen || cut >= len(pkt) {
		return pkt, 0, core.ErrBadGSO
	}
	flagsAt := g.L3Len + 13 // TCP flags byte
	flags := pkt[flagsAt]
	pkt[flagsAt] = flags &^ uint8(header.TCPFlagFin|header.TCPFlagPsh)
	n, err = core.SplitGSO(pkt[:cut], g, out[:k], sizes)
	pkt[flagsAt] = flags
	if err != nil {
		return pkt, 0, err
	}
	moved := k * g.MSS
	copy(pkt[moved:cut], pkt[:g.HdrLen])
	rest = pkt[moved:]
	rest[flagsAt] = flags &^ uint8(header.TCPFlagCwr)
	seq := rest[g.L3Len+4 : g.L3Len+8]
	binary.BigEndian.PutUint32(seq, binary.BigEndian.Uint32(seq)+uint32(moved))
	if g.Kind == core.GSOTCPv4 {
		ip := header.IPv4(rest)
		ip.SetID(ip.ID() + uint16(k))
	}
	return rest, n, nil
}

package core

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
)

// tcpWithOptions is a TCP header with options opts (a multiple of 4
// bytes), acknowledging ack with window wnd.
func tcpWithOptions(opts []byte, ack uint32, wnd uint16) header.TCP {
	t := header.TCP(make([]byte, header.TCPMinimumSize+len(opts)))
	t.Encode(&header.TCPFields{SrcPort: 1, DstPort: 2, SeqNum: 7, AckNum: ack, DataOffset: uint8(len(t)), Flags: header.TCPFlagAck, WindowSize: wnd})
	copy(t[header.TCPMinimumSize:], opts)
	return t
}

// TestRepairNoteHeaderTimestamps checks that noteHeader takes the
// acknowledgement, the window and the timestamps of a segment the stack
// sends as gVisor's option parser reads them, whatever the options'
// layout, and keeps the timestamps it had when a segment carries none.
func TestRepairNoteHeaderTimestamps(t *testing.T) {
	ts := []byte{header.TCPOptionTS, header.TCPOptionTSLength, 0, 0, 1, 2, 0xa0, 0, 0, 3}
	cases := []struct {
		name string
		opts []byte
	}{
		{"nop nop ts", append([]byte{1, 1}, ts...)},
		{"ts nop nop", append(append([]byte{}, ts...), 1, 1)},
		{"sack then ts", append(append([]byte{1, 1, header.TCPOptionSACK, 10, 0, 0, 0, 1, 0, 0, 0, 2}, 1, 1), ts...)},
		{"none", nil},
		{"eol before ts", append([]byte{0, 0}, ts...)},
		{"truncated ts", []byte{1, 1, header.TCPOptionTS, header.TCPOptionTSLength, 0, 0, 1, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seg := tcpWithOptions(c.opts, 1000, 512)
			at := time.Unix(10, 0)
			r := sentStamp{tsVal: 5, tsEcr: 6}
			r.noteHeader(seg, at)
			want := header.ParseTCPOptions(seg.Options())
			if r.ack != seqnum.Value(1000) || r.wnd != 512 || !r.hasHdr {
				t.Fatalf("ack %d wnd %d hasHdr %v; want 1000 512 true", r.ack, r.wnd, r.hasHdr)
			}
			wantVal, wantEcr, wantAt := uint32(5), uint32(6), time.Time{}
			if want.TS {
				wantVal, wantEcr, wantAt = want.TSVal, want.TSEcr, at
			}
			if r.tsVal != wantVal || r.tsEcr != wantEcr || !r.tsAt.Equal(wantAt) {
				t.Fatalf("timestamps %d %d at %v; want %d %d at %v", r.tsVal, r.tsEcr, r.tsAt, wantVal, wantEcr, wantAt)
			}
		})
	}
}

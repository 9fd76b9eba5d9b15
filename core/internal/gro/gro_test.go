package gro

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/netcore-go/netcore/internal/xsum"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// delivered is one packet a coalescer handed on.
type delivered struct {
	b         []byte
	validated bool
}

// The addresses of the test segments.
var (
	peerAddr = tcpip.AddrFrom4([4]byte{192, 0, 2, 2})
	selfAddr = tcpip.AddrFrom4([4]byte{192, 0, 2, 1})
)

// recorder is a Sink that keeps what it is given.
type recorder struct {
	pkts []delivered
}

func (r *recorder) DeliverNetworkPacket(_ tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	r.pkts = append(r.pkts, delivered{b: bytes.Clone(pkt.ToView().AsSlice()), validated: pkt.RXChecksumValidated})
}

// coalesce runs batch through a Coalescer and returns what it delivered.
func coalesce(batch [][]byte) []delivered { return coalesceLink(batch, 0) }

// coalesceLink is coalesce with a link header of link bytes in front of
// each packet: the header is checked to be the first segment's and cut
// off what is returned.
func coalesceLink(batch [][]byte, link int) []delivered {
	rec := &recorder{}
	c := Coalescer{LinkLen: link}
	c.Add(batch, rec)
	return rec.pkts
}

// linkHeader is a test link header of n bytes for packet b (different for
// each source port).
func linkHeader(b []byte, n int) []byte {
	h := bytes.Repeat([]byte{0xee}, n)
	if n > 0 {
		h[0] = b[header.IPv4MinimumSize+1] // a low byte of the source port (IPv4 without options)
	}
	return h
}

// segSpec describes one test TCP segment.
type segSpec struct {
	v6      bool
	port    uint16 // source port: the flow
	seq     uint32
	ack     uint32
	flags   header.TCPFlags
	payload []byte
	opts    []byte
	ipOpts  bool // IPv4 only: a 4-byte options field of no-ops
}

// segment builds a valid TCP segment from s.
func segment(s segSpec) []byte {
	l3 := header.IPv4MinimumSize
	if s.v6 {
		l3 = header.IPv6MinimumSize
	} else if s.ipOpts {
		l3 += 4
	}
	tcpLen := header.TCPMinimumSize + len(s.opts)
	pkt := make([]byte, l3+tcpLen+len(s.payload))
	src, dst := peerAddr, selfAddr
	if s.v6 {
		src = tcpip.AddrFrom16([16]byte{0xfd, 15: 2})
		dst = tcpip.AddrFrom16([16]byte{0xfd, 15: 1})
		header.IPv6(pkt).Encode(&header.IPv6Fields{
			PayloadLength: uint16(tcpLen + len(s.payload)), TransportProtocol: header.TCPProtocolNumber,
			HopLimit: 64, SrcAddr: src, DstAddr: dst,
		})
	} else {
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(pkt)), ID: uint16(s.seq), TTL: 64,
			Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: dst,
		})
		if s.ipOpts {
			pkt[0] = 0x46
			copy(pkt[header.IPv4MinimumSize:], []byte{1, 1, 1, 0})
		}
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	header.TCP(pkt[l3:]).Encode(&header.TCPFields{
		SrcPort: s.port, DstPort: 80, SeqNum: s.seq, AckNum: s.ack,
		DataOffset: uint8(tcpLen), Flags: s.flags, WindowSize: 1000,
	})
	copy(pkt[l3+header.TCPMinimumSize:], s.opts)
	copy(pkt[l3+tcpLen:], s.payload)
	xsum.SetTransportChecksum(pkt, l3, header.TCPChecksumOffset, header.TCPProtocolNumber, src, dst)
	return pkt
}

// summary describes a delivered TCP packet as "port:seq+len flags v"
// (v: delivered as validated), after checking its IP header is
// consistent.
func summary(t *testing.T, d delivered) string {
	t.Helper()
	b := d.b
	l3 := header.IPv6MinimumSize
	if header.IPVersion(b) == header.IPv4Version {
		ip := header.IPv4(b)
		if int(ip.TotalLength()) != len(b) || !ip.IsChecksumValid() {
			t.Fatalf("IPv4 header inconsistent: length %d of %d, checksum valid %v", ip.TotalLength(), len(b), ip.IsChecksumValid())
		}
		l3 = int(ip.HeaderLength())
	} else if int(header.IPv6(b).PayloadLength())+header.IPv6MinimumSize != len(b) {
		t.Fatalf("IPv6 payload length %d of %d", header.IPv6(b).PayloadLength(), len(b))
	}
	tcp := header.TCP(b[l3:])
	v := ""
	if d.validated {
		v = " v"
	}
	return fmt.Sprintf("%d:%d+%d %s%s", tcp.SourcePort(), tcp.SequenceNumber(), len(b)-l3-int(tcp.DataOffset()), strings.ReplaceAll(tcp.Flags().String(), " ", ""), v)
}

func TestCoalescerRuns(t *testing.T) {
	const ack = header.TCPFlagAck
	psh := header.TCPFlagAck | header.TCPFlagPsh
	data := func(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }
	seg := func(port uint16, seq uint32, flags header.TCPFlags, n int) []byte {
		return segment(segSpec{port: port, seq: seq, ack: 9, flags: flags, payload: data(n)})
	}
	corrupt := func(b []byte) []byte { b[len(b)-1] ^= 1; return b }
	tests := []struct {
		name  string
		batch [][]byte
		want  []string
	}{
		{"one segment", [][]byte{seg(1, 100, ack, 10)}, []string{"1:100+10 A v"}},
		{"run", [][]byte{seg(1, 100, ack, 10), seg(1, 110, ack, 10), seg(1, 120, psh, 5)},
			[]string{"1:100+25 PA v"}},
		{"PSH ends a run", [][]byte{seg(1, 100, psh, 10), seg(1, 110, ack, 10), seg(1, 120, ack, 10)},
			[]string{"1:100+10 PA v", "1:110+20 A v"}},
		{"gap", [][]byte{seg(1, 100, ack, 10), seg(1, 120, ack, 10), seg(1, 130, ack, 10)},
			[]string{"1:100+10 A v", "1:120+20 A v"}},
		{"other ack", [][]byte{seg(1, 100, ack, 10), segment(segSpec{port: 1, seq: 110, ack: 10, flags: ack, payload: data(10)})},
			[]string{"1:100+10 A v", "1:110+10 A v"}},
		{"other options", [][]byte{
			segment(segSpec{port: 1, seq: 100, ack: 9, flags: ack, payload: data(10), opts: []byte{8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1}}),
			segment(segSpec{port: 1, seq: 110, ack: 9, flags: ack, payload: data(10), opts: []byte{8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1}}),
			segment(segSpec{port: 1, seq: 120, ack: 9, flags: ack, payload: data(10), opts: []byte{8, 10, 0, 0, 0, 2, 0, 0, 0, 2, 1, 1}}),
		}, []string{"1:100+20 A v", "1:120+10 A v"}},
		{"two flows interleaved", [][]byte{seg(1, 100, ack, 10), seg(2, 500, ack, 10), seg(1, 110, ack, 10), seg(2, 510, ack, 10)},
			[]string{"1:100+20 A v", "2:500+20 A v"}},
		{"pure ACK flushes its flow", [][]byte{seg(1, 100, ack, 10), seg(2, 500, ack, 10), seg(1, 110, ack, 0), seg(1, 110, ack, 10)},
			[]string{"1:100+10 A v", "1:110+0 A v", "1:110+10 A v", "2:500+10 A v"}},
		{"IPv4 options alone after its run", [][]byte{seg(1, 100, ack, 10), seg(1, 110, ack, 10),
			segment(segSpec{port: 1, seq: 120, ack: 9, flags: ack, payload: data(10), ipOpts: true}), seg(1, 130, ack, 10)},
			[]string{"1:100+20 A v", "1:120+10 A v", "1:130+10 A v"}},
		{"FIN alone after its run", [][]byte{seg(1, 100, ack, 10), seg(1, 110, ack|header.TCPFlagFin, 10)},
			[]string{"1:100+10 A v", "1:110+10 FA v"}},
		{"corrupted segment", [][]byte{seg(1, 100, ack, 10), corrupt(seg(1, 110, ack, 10)), seg(1, 120, ack, 10), seg(1, 130, ack, 10)},
			[]string{"1:100+10 A v", "1:110+10 A", "1:120+20 A v"}},
		{"size limit", func() [][]byte {
			var b [][]byte
			for i := range 50 {
				b = append(b, seg(1, uint32(1400*i), ack, 1400))
			}
			return b
		}(), []string{"1:0+64400 A v", "1:64400+5600 A v"}},
		{"sequence wraps", [][]byte{seg(1, 0xfffffffa, ack, 10), seg(1, 4, ack, 10)}, []string{"1:4294967290+20 A v"}},
		{"IPv6", [][]byte{
			segment(segSpec{v6: true, port: 1, seq: 100, ack: 9, flags: ack, payload: data(10)}),
			segment(segSpec{v6: true, port: 1, seq: 110, ack: 9, flags: ack, payload: data(10)}),
			seg(1, 110, ack, 10),
		}, []string{"1:100+20 A v", "1:110+10 A v"}},
	}
	for _, link := range []int{0, 14} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("link%d/%s", link, tt.name), func(t *testing.T) {
				batch := make([][]byte, len(tt.batch))
				for i, b := range tt.batch {
					batch[i] = append(linkHeader(b, link), b...)
				}
				var got []string
				for _, d := range coalesceLink(batch, link) {
					if link > 0 && (!bytes.Equal(d.b[1:link], bytes.Repeat([]byte{0xee}, link-1)) || d.b[0] != d.b[link+header.IPv4MinimumSize+1]) {
						t.Fatalf("link header %x is not the packet's", d.b[:link])
					}
					d.b = d.b[link:]
					got = append(got, summary(t, d))
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("delivered\n\t%q\nwant\n\t%q", got, tt.want)
				}
			})
		}
	}
}

// TestCoalescerLinkHeaders: with a link header, segments of one flow whose
// link headers differ are not merged, and each packet keeps its own.
func TestCoalescerLinkHeaders(t *testing.T) {
	seg := func(seq uint32, mac byte) []byte {
		b := segment(segSpec{port: 1, seq: seq, ack: 9, flags: header.TCPFlagAck, payload: bytes.Repeat([]byte{'x'}, 10)})
		return append(bytes.Repeat([]byte{mac}, 14), b...)
	}
	got := coalesceLink([][]byte{seg(100, 1), seg(110, 1), seg(120, 2), seg(130, 2)}, 14)
	if len(got) != 2 || got[0].b[0] != 1 || got[1].b[0] != 2 {
		t.Fatalf("delivered %d packets, want 2, with link headers 1 and 2", len(got))
	}
	for i, d := range got {
		d.b = d.b[14:]
		if s, want := summary(t, d), []string{"1:100+20 A v", "1:120+20 A v"}[i]; s != want {
			t.Errorf("packet %d: %s, want %s", i, s, want)
		}
	}
	if got := coalesceLink([][]byte{{1, 2, 3}}, 14); len(got) != 0 {
		t.Errorf("a packet shorter than its link header was delivered")
	}
}

// TestCoalescerMoreFlowsThanRuns interleaves more flows than the coalescer
// keeps runs for: every byte arrives, in order within its flow.
func TestCoalescerMoreFlowsThanRuns(t *testing.T) {
	checkStreams(t, rand.New(rand.NewPCG(1, 2)), 3*maxRuns, 40, 0)
}

// FuzzCoalescer cuts random streams of several flows into segments with
// random PSH flags, corruptions and interleaving, and checks that the
// coalescer hands on exactly the valid bytes of each flow in order, with
// consistent headers and validated marks only on checked data.
func FuzzCoalescer(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(50), uint8(0))
	f.Add(uint64(7), uint8(12), uint8(200), uint8(20))
	f.Fuzz(func(t *testing.T, seed uint64, flows, segs, corruptPct uint8) {
		checkStreams(t, rand.New(rand.NewPCG(seed, seed>>1)), 1+int(flows)%16, 1+int(segs), int(corruptPct)%50)
	})
}

// checkStreams builds segs segments for each of flows flows, shuffles the
// flows together (keeping each flow's order), corrupts corruptPct percent,
// coalesces them and checks the result.
func checkStreams(t *testing.T, rng *rand.Rand, flows, segs, corruptPct int) {
	t.Helper()
	type flowState struct {
		seq  uint32
		want []byte // the valid payload bytes, in order
	}
	state := make([]flowState, flows)
	queues := make([][][]byte, flows)
	for f := range state {
		state[f].seq = rng.Uint32()
		for range segs {
			payload := make([]byte, 1+rng.IntN(1460))
			for i := range payload {
				payload[i] = byte(rng.Uint32())
			}
			flags := header.TCPFlagAck
			if rng.IntN(8) == 0 {
				flags |= header.TCPFlagPsh
			}
			b := segment(segSpec{v6: f%2 == 1, port: uint16(1000 + f), seq: state[f].seq, ack: 1, flags: flags, payload: payload})
			if rng.IntN(100) < corruptPct {
				b[len(b)-1-rng.IntN(len(payload))] ^= 0x10
			} else {
				state[f].want = append(state[f].want, payload...)
			}
			state[f].seq += uint32(len(payload))
			queues[f] = append(queues[f], b)
		}
	}
	var batch [][]byte
	for len(batch) < flows*segs {
		f := rng.IntN(flows)
		if len(queues[f]) > 0 {
			batch = append(batch, queues[f][0])
			queues[f] = queues[f][1:]
		}
	}
	got := make([][]byte, flows)
	for _, d := range coalesce(batch) {
		summary(t, d) // checks the IP header
		if len(d.b) > maxCoalesced {
			t.Fatalf("delivered a %d-byte packet", len(d.b))
		}
		info, valid := parseValidTCP(d.b)
		tcp := header.TCP(d.b[info.l3Len:])
		f := int(tcp.SourcePort()) - 1000
		if !d.validated {
			if valid {
				t.Fatalf("a valid segment of flow %d was not delivered as validated", f)
			}
			continue
		}
		got[f] = append(got[f], d.b[info.hdrLen:]...)
	}
	for f := range state {
		if !bytes.Equal(got[f], state[f].want) {
			t.Fatalf("flow %d: delivered %d validated bytes, want %d (equal: %v)", f, len(got[f]), len(state[f].want), bytes.Equal(got[f], state[f].want))
		}
	}
}

// FuzzCoalescerInput hands a coalescer arbitrary bytes cut into packets
// (each prefixed by its length byte), as a TUN or a WireGuard peer could:
// it must not panic, and every packet it delivers as validated must have a
// consistent IP header and carry only bytes of valid segments.
func FuzzCoalescerInput(f *testing.F) {
	f.Add([]byte{1, 0x45, 1, 0x60, 3, 0x45, 0, 0})
	seg := segment(segSpec{port: 1, seq: 5, ack: 1, flags: header.TCPFlagAck, payload: []byte("hello")})
	f.Add(append(append([]byte{byte(len(seg))}, seg...), append([]byte{byte(len(seg))}, seg...)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		var batch [][]byte
		valid := 0
		for len(data) > 0 {
			n := min(int(data[0]), len(data)-1)
			b := data[1 : 1+n]
			batch = append(batch, b)
			if info, ok := parseValidTCP(b); ok {
				valid += info.end - info.hdrLen
			}
			data = data[1+n:]
		}
		delivered := 0
		for _, d := range coalesce(batch) {
			if d.validated {
				summary(t, d)
				info, _ := parseValidTCP(d.b)
				delivered += len(d.b) - info.hdrLen
			}
		}
		if delivered != valid {
			t.Fatalf("delivered %d validated payload bytes of %d valid", delivered, valid)
		}
	})
}

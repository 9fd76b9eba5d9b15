package gso_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/netcore-go/netcore/core/gso"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

var (
	src4 = tcpip.AddrFrom4([4]byte{10, 0, 0, 1})
	dst4 = tcpip.AddrFrom4([4]byte{10, 0, 0, 2})
	src6 = tcpip.AddrFrom16([16]byte{0xfd, 15: 1})
	dst6 = tcpip.AddrFrom16([16]byte{0xfd, 15: 2})
)

const testSeq = 0xfffff000 // wraps during the test's larger packets

// superSegment builds a TCP super-segment (checksum left as gVisor leaves
// it: only the pseudo-header) and its GSO metadata.
func superSegment(v6 bool, payload []byte, mss int, flags header.TCPFlags, opts []byte) ([]byte, gso.Options) {
	l3 := header.IPv4MinimumSize
	kind := gso.TCPv4
	if v6 {
		l3, kind = header.IPv6MinimumSize, gso.TCPv6
	}
	tcpLen := header.TCPMinimumSize + len(opts)
	pkt := make([]byte, l3+tcpLen+len(payload))
	var src, dst tcpip.Address
	if v6 {
		src, dst = src6, dst6
		header.IPv6(pkt).Encode(&header.IPv6Fields{
			PayloadLength: uint16(tcpLen + len(payload)), TransportProtocol: header.TCPProtocolNumber,
			HopLimit: 64, SrcAddr: src, DstAddr: dst,
		})
	} else {
		src, dst = src4, dst4
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(pkt) & 0xffff), ID: 0xfffe, TTL: 64,
			Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: dst,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	tcp := header.TCP(pkt[l3:])
	tcp.Encode(&header.TCPFields{
		SrcPort: 1234, DstPort: 80, SeqNum: testSeq, AckNum: 77,
		DataOffset: uint8(tcpLen), Flags: flags, WindowSize: 1000,
	})
	copy(tcp[header.TCPMinimumSize:], opts)
	copy(pkt[l3+tcpLen:], payload)
	tcp.SetChecksum(header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen+len(payload))))
	return pkt, gso.Options{
		Kind: kind, L3Len: l3, HdrLen: l3 + tcpLen, MSS: mss,
		NeedsCsum: true, CsumStart: l3, CsumOffset: header.TCPChecksumOffset,
	}
}

func makeOut(n, size int) ([][]byte, []int) {
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, size)
	}
	return out, make([]int, n)
}

// checkSegments verifies every segment of a split and returns their
// payloads joined.
func checkSegments(t testing.TB, segs [][]byte, g gso.Options, flags header.TCPFlags) []byte {
	t.Helper()
	var joined []byte
	wantSeq := uint32(testSeq)
	for i, b := range segs {
		var tcp header.TCP
		var src, dst tcpip.Address
		if g.Kind == gso.TCPv4 {
			ip := header.IPv4(b)
			if !ip.IsValid(len(b)) || int(ip.TotalLength()) != len(b) || !ip.IsChecksumValid() {
				t.Fatalf("segment %d: bad IPv4 header %x", i, b[:20])
			}
			if ip.ID() != uint16(0xfffe+i) {
				t.Fatalf("segment %d: IPv4 ID %#x", i, ip.ID())
			}
			tcp, src, dst = ip.Payload(), ip.SourceAddress(), ip.DestinationAddress()
		} else {
			ip := header.IPv6(b)
			if !ip.IsValid(len(b)) || int(ip.PayloadLength())+header.IPv6MinimumSize != len(b) {
				t.Fatalf("segment %d: bad IPv6 header", i)
			}
			tcp, src, dst = header.TCP(b[header.IPv6MinimumSize:]), ip.SourceAddress(), ip.DestinationAddress()
		}
		payload := tcp[tcp.DataOffset():]
		if len(payload) > g.MSS {
			t.Fatalf("segment %d: %d payload bytes, MSS %d", i, len(payload), g.MSS)
		}
		if !tcp.IsChecksumValid(src, dst, checksum.Checksum(payload, 0), uint16(len(payload))) {
			t.Fatalf("segment %d: bad TCP checksum", i)
		}
		if tcp.SequenceNumber() != wantSeq {
			t.Fatalf("segment %d: seq %d, want %d", i, tcp.SequenceNumber(), wantSeq)
		}
		wantSeq += uint32(len(payload))
		want := flags
		if i > 0 {
			want &^= header.TCPFlagCwr
		}
		if i < len(segs)-1 {
			want &^= header.TCPFlagFin | header.TCPFlagPsh
		}
		if tcp.Flags() != want {
			t.Fatalf("segment %d of %d: flags %v, want %v", i, len(segs), tcp.Flags(), want)
		}
		joined = append(joined, payload...)
	}
	return joined
}

func TestSplitRoundTrip(t *testing.T) {
	const mss = 1380
	flags := header.TCPFlagAck | header.TCPFlagPsh | header.TCPFlagFin | header.TCPFlagCwr
	opts := []byte{1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8} // NOP NOP timestamps
	for _, v6 := range []bool{false, true} {
		for _, size := range []int{0, 1, mss - 1, mss, mss + 1, 10*mss + 7, 47 * mss} {
			t.Run(fmt.Sprintf("v6=%v/size=%d", v6, size), func(t *testing.T) {
				payload := make([]byte, size)
				for i := range payload {
					payload[i] = byte(i*7 + i>>8)
				}
				pkt, g := superSegment(v6, payload, mss, flags, opts)
				orig := bytes.Clone(pkt)
				out, sizes := makeOut(64, 1500)
				n, err := gso.Split(pkt, g, out, sizes)
				if err != nil {
					t.Fatal(err)
				}
				if want := g.Segments(len(pkt)); n != want {
					t.Fatalf("%d segments, Segments says %d", n, want)
				}
				segs := make([][]byte, n)
				for i := range n {
					segs[i] = out[i][:sizes[i]]
				}
				if got := checkSegments(t, segs, g, flags); !bytes.Equal(got, payload) {
					t.Fatal("reassembled payload differs")
				}
				if !bytes.Equal(pkt, orig) {
					t.Fatal("Split modified its input")
				}
			})
		}
	}
}

// plainPacket builds a TCP or UDP packet without its transport checksum.
func plainPacket(v6 bool, proto tcpip.TransportProtocolNumber, payload []byte) ([]byte, gso.Options) {
	l3 := header.IPv4MinimumSize
	if v6 {
		l3 = header.IPv6MinimumSize
	}
	l4, off := header.UDPMinimumSize, 6
	if proto == header.TCPProtocolNumber {
		l4, off = header.TCPMinimumSize, header.TCPChecksumOffset
	}
	pkt := make([]byte, l3+l4+len(payload))
	if v6 {
		header.IPv6(pkt).Encode(&header.IPv6Fields{
			PayloadLength: uint16(l4 + len(payload)), TransportProtocol: proto,
			HopLimit: 64, SrcAddr: src6, DstAddr: dst6,
		})
	} else {
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(pkt)), TTL: 64, Protocol: uint8(proto), SrcAddr: src4, DstAddr: dst4,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	if proto == header.TCPProtocolNumber {
		header.TCP(pkt[l3:]).Encode(&header.TCPFields{SrcPort: 1, DstPort: 2, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck})
	} else {
		header.UDP(pkt[l3:]).Encode(&header.UDPFields{SrcPort: 1, DstPort: 2, Length: uint16(l4 + len(payload))})
	}
	copy(pkt[l3+l4:], payload)
	return pkt, gso.Options{NeedsCsum: true, L3Len: l3, CsumStart: l3, CsumOffset: off}
}

func TestSplitFinishesChecksums(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, proto := range []tcpip.TransportProtocolNumber{header.TCPProtocolNumber, header.UDPProtocolNumber} {
			pkt, g := plainPacket(v6, proto, []byte("hello, offload"))
			out, sizes := makeOut(1, 1500)
			n, err := gso.Split(pkt, g, out, sizes)
			if err != nil || n != 1 || sizes[0] != len(pkt) {
				t.Fatalf("v6=%v proto=%d: n=%d size=%d err=%v", v6, proto, n, sizes[0], err)
			}
			b := out[0][:sizes[0]]
			l3 := g.CsumStart
			var src, dst tcpip.Address = src4, dst4
			if v6 {
				src, dst = src6, dst6
			}
			xsum := header.PseudoHeaderChecksum(proto, src, dst, uint16(len(b)-l3))
			if checksum.Checksum(b[l3:], xsum) != 0xffff {
				t.Fatalf("v6=%v proto=%d: transport checksum does not verify", v6, proto)
			}
			// Without NeedsCsum the packet is copied as it is.
			g.NeedsCsum = false
			if _, err := gso.Split(pkt, g, out, sizes); err != nil || !bytes.Equal(out[0][:sizes[0]], pkt) {
				t.Fatalf("plain copy: %v", err)
			}
		}
	}
}

func TestSplitErrors(t *testing.T) {
	pkt, g := superSegment(false, make([]byte, 5000), 1000, header.TCPFlagAck, nil)
	out, sizes := makeOut(5, 1500)
	if _, err := gso.Split(pkt, g, out[:4], sizes); !errors.Is(err, gso.ErrBuffers) {
		t.Fatalf("too few buffers: %v", err)
	}
	small, _ := makeOut(5, 500)
	if _, err := gso.Split(pkt, g, small, sizes); !errors.Is(err, gso.ErrBuffers) {
		t.Fatalf("small buffers: %v", err)
	}
	for _, bad := range []func(*gso.Options){
		func(g *gso.Options) { g.MSS = 0 },
		func(g *gso.Options) { g.HdrLen += 4 },
		func(g *gso.Options) { g.L3Len = 24 },
		func(g *gso.Options) { g.Kind = gso.TCPv6 },
		func(g *gso.Options) { g.Kind = 9 },
	} {
		b := g
		bad(&b)
		if _, err := gso.Split(pkt, b, out, sizes); !errors.Is(err, gso.ErrBad) {
			t.Fatalf("%+v: %v", b, err)
		}
	}
	if _, err := gso.Split(pkt[:30], g, out, sizes); !errors.Is(err, gso.ErrBad) {
		t.Fatalf("truncated: %v", err)
	}
}

// FuzzSplit splits arbitrary packets with arbitrary metadata: it must
// never panic, and whatever it splits must verify and keep every payload
// byte.
func FuzzSplit(f *testing.F) {
	for _, v6 := range []bool{false, true} {
		for _, size := range []int{0, 1, 100, 3000} {
			pkt, g := superSegment(v6, bytes.Repeat([]byte{0xab}, size), 536, header.TCPFlagAck|header.TCPFlagPsh, nil)
			f.Add(pkt, uint8(g.Kind), g.L3Len, g.HdrLen, g.MSS)
		}
		pkt, g := plainPacket(v6, header.UDPProtocolNumber, []byte("x"))
		f.Add(pkt, uint8(g.Kind), g.L3Len, g.HdrLen, g.MSS)
	}
	f.Fuzz(func(t *testing.T, pkt []byte, kind uint8, l3, hdr, mss int) {
		g := gso.Options{
			Kind: gso.Kind(kind % 4), L3Len: l3, HdrLen: hdr, MSS: mss,
			NeedsCsum: true, CsumStart: l3, CsumOffset: header.TCPChecksumOffset,
		}
		if g.Kind == gso.None && len(pkt) > 0 && pkt[0]&1 == 1 {
			g.CsumOffset = 6
		}
		out, sizes := makeOut(16, 1<<16)
		n, err := gso.Split(pkt, g, out, sizes)
		if err != nil || g.Kind == gso.None {
			return
		}
		var joined []byte
		for i := range n {
			b := out[i][:sizes[i]]
			if sizes[i] != g.HdrLen+min(g.MSS, len(pkt)-g.HdrLen-i*g.MSS) && len(pkt) > g.HdrLen {
				t.Fatalf("segment %d: size %d", i, sizes[i])
			}
			var src, dst tcpip.Address
			if g.Kind == gso.TCPv4 {
				src, dst = header.IPv4(b).SourceAddress(), header.IPv4(b).DestinationAddress()
			} else {
				src, dst = header.IPv6(b).SourceAddress(), header.IPv6(b).DestinationAddress()
			}
			xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(b)-g.L3Len))
			if checksum.Checksum(b[g.L3Len:], xsum) != 0xffff {
				t.Fatalf("segment %d: bad TCP checksum", i)
			}
			joined = append(joined, b[g.HdrLen:]...)
		}
		if !bytes.Equal(joined, pkt[g.HdrLen:]) {
			t.Fatal("payload lost")
		}
	})
}

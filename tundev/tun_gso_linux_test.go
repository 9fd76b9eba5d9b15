package tundev_test

import (
	"bytes"
	"testing"

	"github.com/netcore-go/netcore/core/gso"
	"github.com/netcore-go/netcore/tundev"
	"github.com/netcore-go/netcore/tundev/tundevtest"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// gsoSegment builds a TCP super-segment as gVisor hands one to an
// OffloadDevice (pseudo-header checksum only) and its metadata.
func gsoSegment(v6 bool, seq uint32, payload []byte, mss int) ([]byte, gso.Options) {
	l3, kind := header.IPv4MinimumSize, gso.TCPv4
	src, dst := tcpip.AddrFrom4([4]byte{10, 9, 0, 1}), tcpip.AddrFrom4([4]byte{10, 9, 0, 2})
	if v6 {
		l3, kind = header.IPv6MinimumSize, gso.TCPv6
		src, dst = tcpip.AddrFrom16([16]byte{0xfd, 9, 15: 1}), tcpip.AddrFrom16([16]byte{0xfd, 9, 15: 2})
	}
	hdr := l3 + header.TCPMinimumSize
	pkt := make([]byte, hdr+len(payload))
	if v6 {
		header.IPv6(pkt).Encode(&header.IPv6Fields{
			PayloadLength: uint16(len(pkt) - l3), TransportProtocol: header.TCPProtocolNumber,
			HopLimit: 64, SrcAddr: src, DstAddr: dst,
		})
	} else {
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(min(len(pkt), 0xffff)), TTL: 64,
			Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: dst,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	tcp := header.TCP(pkt[l3:])
	tcp.Encode(&header.TCPFields{
		SrcPort: 5000, DstPort: 80, SeqNum: seq, AckNum: 1,
		DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck | header.TCPFlagPsh, WindowSize: 1000,
	})
	copy(pkt[hdr:], payload)
	tcp.SetChecksum(header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(pkt)-l3)))
	return pkt, gso.Options{
		Kind: kind, L3Len: l3, HdrLen: hdr, MSS: mss,
		NeedsCsum: true, CsumStart: l3, CsumOffset: header.TCPChecksumOffset,
	}
}

// checkWire checks that p is a wire packet of at most mtu bytes with valid
// checksums, and returns its TCP sequence number and payload.
func checkWire(t *testing.T, p []byte, mtu int) (uint32, []byte) {
	t.Helper()
	if len(p) > mtu {
		t.Fatalf("wrote a %d-byte packet, MTU %d", len(p), mtu)
	}
	var src, dst tcpip.Address
	var seg []byte
	if header.IPVersion(p) == header.IPv4Version {
		ip := header.IPv4(p)
		if !ip.IsValid(len(p)) || !ip.IsChecksumValid() {
			t.Fatal("bad IPv4 header")
		}
		src, dst, seg = ip.SourceAddress(), ip.DestinationAddress(), ip.Payload()
	} else {
		ip := header.IPv6(p)
		src, dst, seg = ip.SourceAddress(), ip.DestinationAddress(), ip.Payload()
	}
	tcp := header.TCP(seg)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(seg)))
	if checksum.Checksum(seg, xsum) != 0xffff {
		t.Fatal("bad TCP checksum")
	}
	return tcp.SequenceNumber(), tcp.Payload()
}

// TestTUNWritePacketsGSO hands a TUN super-segments (more segments than
// it has write buffers in all, over IPv4 and IPv6) and one packet that
// does not match its metadata: the device gets MTU-sized segments with
// valid checksums carrying every payload byte in order, and the bad one is
// dropped and counted.
func TestTUNWritePacketsGSO(t *testing.T) {
	const mtu, mss, mss6 = 576, 536, 516
	dev := tundevtest.NewTUN(1024)
	dev.MTUValue = mtu
	tn, err := tundev.Wrap(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	payloads := [][]byte{make([]byte, 60000), make([]byte, 3*mss+7), make([]byte, 60000)}
	var pkts [][]byte
	var gsos []gso.Options
	seq := uint32(0xffff0000)
	for i, p := range payloads {
		for j := range p {
			p[j] = byte(i*7 + j)
		}
		pkt, g := gsoSegment(i == 1, seq, p, mss)
		if i == 1 {
			pkt, g = gsoSegment(true, seq, p, mss6)
		}
		pkts, gsos = append(pkts, pkt), append(gsos, g)
		seq += uint32(len(p))
	}
	bad, badGSO := gsoSegment(false, 0, make([]byte, 3000), mss)
	badGSO.HdrLen += 4 // does not match the TCP header
	pkts = append(pkts[:1], append([][]byte{bad}, pkts[1:]...)...)
	gsos = append(gsos[:1], append([]gso.Options{badGSO}, gsos[1:]...)...)

	if n, err := tn.WritePacketsGSO(pkts, gsos); n != len(pkts) || err != nil {
		t.Fatalf("WritePacketsGSO = %d, %v", n, err)
	}
	var got []byte
	next := uint32(0xffff0000)
	for len(got) < 60000+3*mss+7+60000 {
		seq, payload := checkWire(t, <-dev.Outbound, mtu)
		if seq != next {
			t.Fatalf("segment at %#x, want %#x", seq, next)
		}
		next += uint32(len(payload))
		got = append(got, payload...)
	}
	if want := bytes.Join(payloads, nil); !bytes.Equal(got, want) {
		t.Fatal("payload bytes differ")
	}
	if len(dev.Outbound) != 0 {
		t.Fatalf("%d packets more than the segments", len(dev.Outbound))
	}
	if s := tn.Stats(); s.WriteErrors != 1 {
		t.Fatalf("WriteErrors = %d, want 1 (the mismatched packet)", s.WriteErrors)
	}
}

package core

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// keptTestSegment is an IPv4 TCP data segment as gVisor's sender builds
// one: seq 1000, ack 1, window 100, timestamps 7 and 8, and 100 bytes of
// payload, its headers pushed in front of the payload.
func keptTestSegment() *stack.PacketBuffer {
	payload := buffer.MakeWithData(bytes.Repeat([]byte{'p'}, 100))
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{ReserveHeaderBytes: 80, Payload: payload})
	tcpLen := header.TCPMinimumSize + 2 + header.TCPOptionTSLength
	th := header.TCP(pkt.TransportHeader().Push(tcpLen))
	th.Encode(&header.TCPFields{SrcPort: 1234, DstPort: 80, SeqNum: 1000, AckNum: 1, DataOffset: uint8(tcpLen), Flags: header.TCPFlagAck | header.TCPFlagPsh, WindowSize: 100})
	opts := th[header.TCPMinimumSize:]
	opts[0], opts[1] = header.TCPOptionNOP, header.TCPOptionNOP
	header.EncodeTSOption(7, 8, opts[2:])
	ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(header.IPv4MinimumSize + tcpLen + 100), TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
		SrcAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 1}), DstAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 2}),
	})
	pkt.NetworkProtocolNumber, pkt.TransportProtocolNumber = header.IPv4ProtocolNumber, header.TCPProtocolNumber
	return pkt
}

// A repair of a kept segment carries the stack's newest acknowledgement,
// window and timestamps, with a valid checksum and the same payload; and
// making repairs while the outbound pump reads the kept packet is no race
// (the header lengths are read when the segment is kept: read later
// through PacketHeader.Slice, the pull-up gave the header's shared chunk
// a private copy under the pump's feet, which the race detector saw in
// TestJoinTCP/reorder/ipv6).
func TestRepairCopyStampsAndShares(t *testing.T) {
	pkt := keptTestSegment()
	defer pkt.DecRef()
	var r repairState
	r.keep(pkt, 1000, 1100, 1000, time.Now(), false)
	defer r.segs[0].pkt.DecRef()
	opts := tsOption(50)
	binary.BigEndian.PutUint32(opts[8:], 60)
	newer := tcpWithOptions(opts, 777, 300)
	sentAt := time.Now()
	r.noteHeader(newer, sentAt)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the outbound pump, copying the packet to the device
		defer wg.Done()
		for range 200 {
			packetInto(pkt, nil)
		}
	}()
	for range 200 {
		cp := r.repairCopy(&r.segs[0], sentAt.Add(5*time.Millisecond))
		if cp == nil {
			t.Fatal("repairCopy: nil")
		}
		b := packetInto(cp, nil)
		cp.DecRef()
		c, ok := parseTCP(b)
		if !ok {
			t.Fatal("the repair does not parse")
		}
		th := header.TCP(c.tcp)
		o := header.ParseTCPOptions(th.Options())
		if th.SequenceNumber() != 1000 || th.AckNumber() != 777 || th.WindowSize() != 300 || o.TSVal != 55 || o.TSEcr != 60 {
			t.Fatalf("repair seq %d ack %d wnd %d ts %d/%d; want 1000 777 300 55/60",
				th.SequenceNumber(), th.AckNumber(), th.WindowSize(), o.TSVal, o.TSEcr)
		}
		xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, c.src, c.dst, uint16(len(c.tcp)))
		if checksum.Checksum(c.tcp, xsum) != 0xffff {
			t.Fatal("the repair's TCP checksum is wrong")
		}
		if !bytes.Equal(th.Payload(), bytes.Repeat([]byte{'p'}, 100)) {
			t.Fatalf("payload %q", th.Payload())
		}
	}
	wg.Wait()
	if got := seqnum.Value(binary.BigEndian.Uint32(packetInto(pkt, nil)[header.IPv4MinimumSize+8:])); got != 1 {
		t.Fatalf("the kept segment's own ack changed to %d", got)
	}
}

package core

import (
	"encoding/binary"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// hdrLens are the header lengths of a TCP segment the link keeps to send
// again (a recovery probe's or a loss repair's), read when it is kept, on
// the writer's goroutine before the packet is queued. Read later through
// PacketHeader.Slice they would race with the outbound pump: Slice pulls
// the header up, and buffer.PullUp gives a view whose chunk is shared (by
// the copies made for earlier resends) a private chunk of its own, a
// write to the packet the pump may be reading at the same time.
type hdrLens struct{ link, net, tcp int }

// hdrLensOf reads pkt's header lengths; only the packet's writer calls it,
// before anyone else can read the packet.
func hdrLensOf(pkt *stack.PacketBuffer) hdrLens {
	return hdrLens{
		link: len(pkt.LinkHeader().Slice()),
		net:  len(pkt.NetworkHeader().Slice()),
		tcp:  len(pkt.TransportHeader().Slice()),
	}
}

// sentStamp is what the newest segment the stack sent on a connection
// says, which the link's copies of its older segments carry.
type sentStamp struct {
	ack          seqnum.Value
	wnd          uint16
	tsVal, tsEcr uint32
	tsAt         time.Time // when the timestamps were seen; zero: none
	hasHdr       bool
}

// noteHeader takes the acknowledgement, window and timestamps of t, a
// segment the stack sends.
func (st *sentStamp) noteHeader(t header.TCP, now time.Time) {
	st.ack, st.wnd, st.hasHdr = seqnum.Value(t.AckNumber()), t.WindowSize(), true
	// (Only the timestamps are wanted: a full ParseTCPOptions per segment
	// sent was 2% of the process's CPU at 5% loss.)
	if o := t.Options(); len(o) > 0 {
		if at := tsEcrOffset(o); at >= 4 {
			st.tsVal, st.tsEcr, st.tsAt = binary.BigEndian.Uint32(o[at-4:]), binary.BigEndian.Uint32(o[at:]), now
		}
	}
}

// stampedCopy copies kept segment pkt (its headers h) into a new packet
// that carries ack (if setAck), st's window (once st has seen a header) and st's
// timestamps (the timestamp value moved on by the milliseconds since),
// with its TCP checksum computed again; nil if pkt does not parse.
func (st *sentStamp) stampedCopy(pkt *stack.PacketBuffer, h hdrLens, ack seqnum.Value, setAck bool, now time.Time) *stack.PacketBuffer {
	buf := pkt.ToBuffer()
	frame := buf.Flatten()
	buf.Release()
	if len(frame) < h.link {
		return nil
	}
	c, ok := parseTCP(frame[h.link:])
	if !ok || len(c.net) != h.net {
		return nil
	}
	ct := header.TCP(c.tcp)
	if setAck {
		ct.SetAckNumber(uint32(ack))
	}
	if st.hasHdr {
		ct.SetWindowSize(st.wnd)
	}
	if at := tsEcrOffset(ct.Options()); at >= 4 && !st.tsAt.IsZero() {
		o := ct[header.TCPMinimumSize:]
		binary.BigEndian.PutUint32(o[at-4:], st.tsVal+uint32(now.Sub(st.tsAt)/time.Millisecond))
		binary.BigEndian.PutUint32(o[at:], st.tsEcr)
	}
	ct.SetChecksum(0)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, c.src, c.dst, uint16(len(c.tcp)))
	ct.SetChecksum(^checksum.Checksum(c.tcp, xsum))
	cp := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	cp.NetworkProtocolNumber, cp.TransportProtocolNumber = pkt.NetworkProtocolNumber, header.TCPProtocolNumber
	cp.LinkHeader().Consume(h.link)
	cp.NetworkHeader().Consume(h.net)
	cp.TransportHeader().Consume(h.tcp)
	return cp
}

package pcap

import (
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Endpoint is a link endpoint that records, in its Writer, every packet
// gVisor and the endpoint it wraps hand each other, as gVisor sees them: an
// outbound packet when gVisor writes it to the link (before the link's
// queue, so a packet a full queue drops is in the capture), a TCP
// super-segment whole; an inbound packet when the link delivers it, before
// gVisor parses it (a run of segments the link coalesced, as one packet).
// Everything else is the wrapped endpoint's (gVisor's nested.Endpoint
// forwards it). A failing Writer stops recording, never the packets.
type Endpoint struct {
	nested.Endpoint
	w *Writer
}

var (
	_ stack.LinkEndpoint      = (*Endpoint)(nil)
	_ stack.GSOEndpoint       = (*Endpoint)(nil)
	_ stack.NetworkDispatcher = (*Endpoint)(nil)
)

// NewEndpoint wraps lower so that its packets are recorded in w.
func NewEndpoint(lower stack.LinkEndpoint, w *Writer) *Endpoint {
	e := &Endpoint{w: w}
	e.Endpoint.Init(lower, e)
	return e
}

// DeliverNetworkPacket implements stack.NetworkDispatcher: it records an
// inbound packet, then hands it to gVisor.
func (e *Endpoint) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	_ = e.w.WritePacket(pkt) // a failed capture is reported by Writer.Err
	e.Endpoint.DeliverNetworkPacket(proto, pkt)
}

// WritePackets implements stack.LinkWriter: it records the outbound
// packets, then writes them to the wrapped endpoint.
func (e *Endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	for _, pkt := range pkts.AsSlice() {
		_ = e.w.WritePacket(pkt) // a failed capture is reported by Writer.Err
	}
	return e.Endpoint.WritePackets(pkts)
}

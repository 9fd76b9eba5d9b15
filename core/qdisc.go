package core

import (
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// linkQDisc is the NIC's queueing discipline: it hands each packet the
// NIC writes straight to the link's queue. gVisor's default discipline
// wraps every packet in a new one-element PacketBufferList before calling
// the link's WritePackets, one allocation per packet sent (four per 1-byte
// RR); this one passes a slice on its own stack. Order, the queue's bound
// (a full queue drops and reports ErrNoBufferSpace) and the delivery to a
// joined peer are the link's, unchanged.
type linkQDisc struct {
	l *linkEP
}

var _ stack.QueueingDiscipline = (*linkQDisc)(nil)

// WritePacket implements stack.QueueingDiscipline.
func (q *linkQDisc) WritePacket(pkt *stack.PacketBuffer) tcpip.Error {
	one := [1]*stack.PacketBuffer{pkt}
	_, err := q.l.writePkts(one[:])
	return err
}

// Close implements stack.QueueingDiscipline: the link is closed with the
// stack, not through its NIC's discipline.
func (*linkQDisc) Close() {}

// nicQDisc returns the queueing discipline for a NIC that writes to nicEP,
// or nil (gVisor's default, which calls nicEP's WritePackets) where a
// wrapper between the NIC and the link does work of its own on the way
// out (a packet capture). gVisor's Ethernet endpoint only delegates
// WritePackets to its child: its header is added before the discipline.
func (ns *Netstack) nicQDisc(nicEP stack.LinkEndpoint) stack.QueueingDiscipline {
	switch ep := nicEP.(type) {
	case *linkEP:
		return &linkQDisc{l: ep}
	case *ethernet.Endpoint:
		if ns.capture == nil {
			return &linkQDisc{l: ns.link}
		}
	}
	return nil
}

package core

import (
	"github.com/netcore-go/netcore/core/gso"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// OffloadDevice is a Device that takes TCP super-segments, as a NIC with
// TSO does, and whose inbound packets the stack may coalesce, as GRO does.
// When one is attached the stack hands it packets of up to 64 KiB with
// WritePacketsGSO instead of WritePackets; it must cut them into wire-sized
// packets (gso.Split does that) before anything sees them that needs them.
// Inbound TCP segments read from it are validated and coalesced per batch.
// An OffloadDevice that is also a GSODevice gets all this only while its
// WantsGSO reports true; a PullDevice needs no WritePacketsGSO (see
// GSODevice).
type OffloadDevice interface {
	Device
	// WritePacketsGSO is WritePackets with the segmentation metadata of
	// each packet: opts[i] describes pkts[i] (on MediumEthernet, the IP
	// packet after its 14-byte Ethernet header: offsets count from there,
	// and each segment cut from it takes the same header). To spare a copy it may keep
	// a packet's slice if it puts another slice in its place, pkts[i],
	// which the stack then owns (and may reuse); it must keep nothing
	// else after it returns.
	WritePacketsGSO(pkts [][]byte, opts []gso.Options) (int, error)
}

// A VectoredWriter is an OffloadDevice that can write a TCP super-segment
// from the pieces the stack holds it in (gVisor's views: its headers, then
// its payload's chunks), with one vectored system call, instead of the
// stack first copying it into one buffer for WritePacketsGSO: a 64 KiB
// copy per super-segment saved. The stack offers it every packet of more
// than one segment, in its place among the others (those before it are
// written first).
type VectoredWriter interface {
	OffloadDevice
	// WritePacketVectored writes the packet that is parts joined, with
	// segmentation metadata o, or reports false, having written nothing,
	// for the stack to copy it and write it through WritePacketsGSO. It
	// must keep nothing of parts after it returns. An error reported with
	// true is a failure of the device (as from WritePacketsGSO).
	WritePacketVectored(parts [][]byte, o gso.Options) (bool, error)
}

// A GSODevice is a Device that says whether it wants TCP super-segments:
// whether the stack, once it is attached, hands it TCP segments of up to
// 64 KiB (host GSO, as to a NIC with TSO) and validates and coalesces the
// TCP segments it delivers from it (GRO, whether the stack reads them or
// the device pushes them through a Receiver). A device that wants them
// must be able to take them: a PullDevice, whose Source cuts them into
// wire-sized segments in the reader's buffers, or an OffloadDevice, whose
// WritePacketsGSO gets them whole; AttachDevice refuses any other with
// ErrInvalid. A device that is not a GSODevice wants them if it is an
// OffloadDevice. tundev.Virtual is one: wireguard-go's reads cut them.
type GSODevice interface {
	Device
	// WantsGSO reports whether the device wants TCP super-segments (and
	// GRO). AttachDevice asks once.
	WantsGSO() bool
}

// A ValidatedReader is a Device that says, per packet read, whether the
// host vouched for its checksums: a TCP super-segment a kernel TUN reads
// whole, whose virtio-net header marks its checksum partial (computed by
// no one, because the data never left the machine), must reach gVisor as
// one packet trusted as it is, not be cut into wire-sized segments and
// coalesced again. The stack uses ReadPacketsValidated instead of
// ReadPackets on a device that wants GSO (see GSODevice): packets marked
// valid are delivered whole as checksum-validated, in their place in the
// batch; all others are checked (and coalesced) as any read packet is.
type ValidatedReader interface {
	Device
	// ReadPacketsValidated is ReadPackets that also sets valid[i] for each
	// packet i read whose IP and transport checksums need no check (and
	// clears it for the others).
	ReadPacketsValidated(bufs [][]byte, sizes []int, valid []bool) (int, error)
}

// wantsGSO reports whether dev wants TCP super-segments and GRO.
func wantsGSO(dev Device) bool {
	if g, ok := dev.(GSODevice); ok {
		return g.WantsGSO()
	}
	_, ok := dev.(OffloadDevice)
	return ok
}

// takesGSO reports whether dev can take TCP super-segments: through its
// Source (a PullDevice) or WritePacketsGSO (an OffloadDevice).
func takesGSO(dev Device) bool {
	_, pull := dev.(PullDevice)
	_, off := dev.(OffloadDevice)
	return pull || off
}

// gsoOf converts a gVisor packet's GSO options into gso.Options.
func gsoOf(pkt *stack.PacketBuffer) gso.Options {
	o := pkt.GSOOptions
	var kind gso.Kind
	switch o.Type {
	case stack.GSOTCPv4:
		kind = gso.TCPv4
	case stack.GSOTCPv6:
		kind = gso.TCPv6
	default:
		return gso.Options{}
	}
	l3 := len(pkt.NetworkHeader().Slice())
	return gso.Options{
		Kind:       kind,
		L3Len:      l3,
		HdrLen:     l3 + len(pkt.TransportHeader().Slice()),
		MSS:        int(o.MSS),
		NeedsCsum:  o.NeedsCsum,
		CsumStart:  l3,
		CsumOffset: int(o.CsumOffset),
	}
}

package tundev

import (
	"github.com/netcore-go/netcore/core"
)

// TAP is a kernel TAP device driven by a Netstack on core.MediumEthernet:
// the TAP twin of TUN, moving Ethernet frames instead of IP packets. The
// kernel's end is an Ethernet interface (it can join a bridge, or live in
// another network namespace); the stack's end has the stack's MAC
// (core.Config.MAC) and resolves the kernel's with ARP and NDP. Attach it
// with core.Netstack.AttachDevice to a stack whose Config.Medium is
// core.MediumEthernet (any other stack refuses it with an error matching
// core.ErrMediumMismatch); the stack then owns it and closes it on Close.
//
// Reads and writes are batched: one wake-up of the reader takes every
// frame the kernel has queued (up to the batch size), and one write call
// hands the kernel a whole batch. With offloads on (Linux, the default),
// the device moves frames with a virtio-net header: the stack hands it TCP
// super-segments, which the kernel segments (or passes whole to a bridge
// or a local socket), and TCP super-frames the kernel sends are cut into
// wire-sized frames, whose checksums are completed, before the stack
// coalesces them again. TAP devices exist on Linux only: elsewhere OpenTAP
// fails with an error matching errors.ErrUnsupported.
type TAP struct {
	tap // the system's part
}

var (
	_ core.Device           = (*TAP)(nil)
	_ core.LinkMediumDevice = (*TAP)(nil)
	_ core.GSODevice        = (*TAP)(nil)
	_ core.OffloadDevice    = (*TAP)(nil)
)

// LinkMedium implements core.LinkMediumDevice: a TAP carries Ethernet
// frames.
func (*TAP) LinkMedium() core.Medium { return core.MediumEthernet }

// tapBatch is the most frames one ReadPackets or WritePackets call moves.
const tapBatch = 128

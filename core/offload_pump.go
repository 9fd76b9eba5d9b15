package core

import (
	"sync"
	"sync/atomic"

	"github.com/netcore-go/netcore/core/gso"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// offloadState is the link's side of an attached device that wants TCP
// super-segments (see GSODevice).
//
// gVisor's NIC marks every inbound packet checksum-validated or not from
// the link's CapabilityRXChecksumOffload, read per packet. Coalesced
// segments (see coalescer) carry the first segment's TCP checksum, so they
// must be delivered as validated; anything not checked must not be. So the
// link reports the capability only while trusted is set, and trusted is
// only set by a coalescing delivery holding rxMu's write side, for packets
// it validated itself; every other delivery into the NIC holds the read
// side.
type offloadState struct {
	gso     atomic.Bool // the attached device wants TCP super-segments (and GRO)
	trusted atomic.Bool // the packets being delivered now are validated
	rxMu    sync.RWMutex
}

// rxCaps is the link's receive capability now.
func (o *offloadState) rxCaps() stack.LinkEndpointCapabilities {
	if o.trusted.Load() {
		return stack.CapabilityRXChecksumOffload
	}
	return 0
}

// pumpOutGSO is pumpOut for an OffloadDevice: packets go out whole, with
// their GSO metadata.
func (ns *Netstack) pumpOutGSO(dev OffloadDevice) {
	batch := make([]*stack.PacketBuffer, max(1, dev.BatchSize()))
	pkts := make([][]byte, len(batch))
	gsos := make([]gso.Options, len(batch))
	send := func(batch []*stack.PacketBuffer) error {
		for i, p := range batch {
			pkts[i] = packetBytes(p)
			gsos[i] = gsoOf(p)
			p.DecRef()
		}
		_, err := dev.WritePacketsGSO(pkts[:len(batch)], gsos[:len(batch)])
		for i := range pkts[:len(batch)] {
			recyclePacket(pkts[i])
			pkts[i] = nil
		}
		return err
	}
	for ns.waitOut() {
		if ns.link.drainTo(batch, send) != nil {
			return
		}
	}
}

// pumpInGRO is pumpIn for a device that wants GSO: the TCP segments of each batch
// read are validated and coalesced (a coalescer is the stack's GRO).
func (ns *Netstack) pumpInGRO(dev Device) {
	bufs, sizes := makeBufs(max(1, dev.BatchSize()), max(ns.cfg.MTU, 1<<16))
	read := readFunc(dev)
	pkts := make([][]byte, len(bufs))
	var c coalescer
	for ns.link.in.wait() {
		n, err := read(bufs, sizes)
		for i := range n {
			pkts[i] = bufs[i][:sizes[i]]
		}
		if ns.link.in.enter(true) != nil {
			return
		}
		ns.link.deliverGRO(&c, pkts[:n])
		ns.link.in.leave()
		if err != nil {
			return
		}
	}
}

// deliverGRO hands a batch of inbound packets to gVisor: TCP segments whose
// IP and TCP checksums are valid through c (coalesced, and delivered as
// validated), all others as deliver does (gVisor checks them).
func (l *linkEP) deliverGRO(c *coalescer, pkts [][]byte) {
	l.dispMu.RLock()
	d := l.dispatcher
	l.dispMu.RUnlock()
	if d == nil || len(pkts) == 0 {
		return
	}
	c.d, c.trusted = d, &l.off.trusted
	l.off.rxMu.Lock()
	defer l.off.rxMu.Unlock()
	taken, invalid := c.addBatch(pkts)
	l.packetsIn.Add(uint64(taken))
	l.invalidIn.Add(uint64(invalid))
	l.off.trusted.Store(false)
	var spent int64
	for _, p := range pkts {
		spent += cost(len(p))
	}
	l.in.charge(spent)
}

// networkProto is the network protocol of IP packet b.
func networkProto(b []byte) (tcpip.NetworkProtocolNumber, bool) {
	switch header.IPVersion(b) {
	case header.IPv4Version:
		return header.IPv4ProtocolNumber, true
	case header.IPv6Version:
		return header.IPv6ProtocolNumber, true
	}
	return 0, false
}

// parseValidTCP reports whether b is an unfragmented TCP segment with
// valid IP header and TCP checksums, and where its parts lie.
func parseValidTCP(b []byte) (segInfo, bool) {
	var info segInfo
	var src, dst tcpip.Address
	switch header.IPVersion(b) {
	case header.IPv4Version:
		ip := header.IPv4(b)
		if !ip.IsValid(len(b)) || !ip.IsChecksumValid() || ip.TransportProtocol() != header.TCPProtocolNumber ||
			ip.More() || ip.FragmentOffset() != 0 {
			return info, false
		}
		info = segInfo{proto: header.IPv4ProtocolNumber, l3Len: int(ip.HeaderLength()), end: int(ip.TotalLength())}
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	case header.IPv6Version:
		ip := header.IPv6(b)
		if len(b) < header.IPv6MinimumSize || ip.TransportProtocol() != header.TCPProtocolNumber {
			return info, false
		}
		info = segInfo{proto: header.IPv6ProtocolNumber, l3Len: header.IPv6MinimumSize,
			end: header.IPv6MinimumSize + int(ip.PayloadLength())}
		if info.end > len(b) {
			return info, false
		}
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	default:
		return info, false
	}
	seg := b[info.l3Len:info.end]
	if len(seg) < header.TCPMinimumSize {
		return info, false
	}
	off := int(header.TCP(seg).DataOffset())
	if off < header.TCPMinimumSize || off > len(seg) {
		return info, false
	}
	info.hdrLen = info.l3Len + off
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(seg)))
	return info, checksum.Checksum(seg, xsum) == 0xffff
}

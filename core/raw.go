package core

import (
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/waiter"
)

// rawOpen opens a cooked packet endpoint for the IP version; receives are
// filtered to the transport protocol.
func (ns *Netstack) rawOpen(c RawOpen) (Response, error, bool) {
	var proto tcpip.NetworkProtocolNumber
	switch c.Version {
	case 4:
		proto = header.IPv4ProtocolNumber
	case 6:
		proto = header.IPv6ProtocolNumber
	default:
		return nil, ErrAddrFamily, false
	}
	wq := new(waiter.Queue)
	ep, terr := ns.s.NewPacketEndpoint(true, proto, wq)
	if terr != nil {
		return nil, fromTCPIP(terr), false
	}
	ep.SocketOptions().SetReceiveBufferSize(int64(ns.cfg.UDPRecvBuffer), true)
	s, err := ns.newSocket(kindRaw, ep, wq, proto)
	if err != nil {
		return nil, err, false
	}
	s.rawProto = c.Protocol
	return RawOpened{Handle: s.h}, nil, false
}

// rawSend writes a whole IP packet of the socket's version to the device.
func (s *socket) rawSend(pkt []byte) (Response, error, bool) {
	if len(pkt) > 65535 {
		return nil, ErrMessageTooLong, false
	}
	if !s.validIPHeader(pkt) {
		return nil, ErrInvalid, false
	}
	if terr := s.ns.s.WriteRawPacket(nicID, s.netProto, buffer.MakeWithData(pkt)); terr != nil {
		return nil, fromTCPIP(terr), false
	}
	return RawSent{N: len(pkt)}, nil, false
}

func (s *socket) validIPHeader(pkt []byte) bool {
	if s.netProto == header.IPv4ProtocolNumber {
		return len(pkt) >= header.IPv4MinimumSize && header.IPVersion(pkt) == header.IPv4Version
	}
	return len(pkt) >= header.IPv6MinimumSize && header.IPVersion(pkt) == header.IPv6Version
}

// rawRecv reads the next inbound packet of the socket's protocol, dropping
// others.
func (s *socket) rawRecv(buf []byte) (Response, error, bool) {
	if len(buf) == 0 {
		return nil, ErrEmptyBuffer, false
	}
	for {
		s.sw = buf
		res, terr := s.ep.Read(&s.sw, tcpip.ReadOptions{NeedLinkPacketInfo: true})
		s.sw = nil
		switch terr.(type) {
		case nil:
		case *tcpip.ErrWouldBlock:
			return nil, nil, true
		default:
			return nil, fromTCPIP(terr), false
		}
		if res.LinkPacketInfo.PktType != tcpip.PacketOutgoing && s.protoOf(buf[:res.Count]) == s.rawProto {
			return RawRecvd{N: res.Count, Truncated: res.Total > res.Count}, nil, false
		}
	}
}

// protoOf returns the transport protocol of an IP packet's fixed header.
func (s *socket) protoOf(pkt []byte) uint8 {
	if s.netProto == header.IPv4ProtocolNumber && len(pkt) >= header.IPv4MinimumSize {
		return header.IPv4(pkt).Protocol()
	}
	if len(pkt) >= header.IPv6MinimumSize {
		return header.IPv6(pkt).NextHeader()
	}
	return 0
}

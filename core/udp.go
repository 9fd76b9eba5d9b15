package core

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// maxDatagram is the largest UDP payload over IPv4 (65535 - 20 - 8); IPv6
// allows 65527 without jumbograms.
const maxDatagram = 65535 - 8

func (ns *Netstack) udpBind(c UDPBind) (Response, error, bool) {
	if !c.Local.Addr().IsValid() {
		return nil, ErrInvalidAddr, false
	}
	wq := new(waiter.Queue)
	proto := netProto(c.Local.Addr())
	ep, terr := ns.s.NewEndpoint(udp.ProtocolNumber, proto, wq)
	if terr != nil {
		return nil, fromTCPIP(terr), false
	}
	ep.SocketOptions().SetReceiveBufferSize(int64(ns.cfg.UDPRecvBuffer), true)
	s, err := ns.newSocket(kindUDP, ep, wq, proto)
	if err != nil {
		return nil, err, false
	}
	s.dgrams = new(udpQueue)
	fa, err := s.toFull(c.Local)
	if err == nil {
		err = fromTCPIP(s.ep.Bind(fa))
	}
	if err != nil {
		ns.closeSocket(s, false)
		return nil, err, false
	}
	return UDPBound{Handle: s.h, Local: s.addrs().Local}, nil, false
}

func (s *socket) udpConnect(remote netip.AddrPort) (Response, error, bool) {
	if s.kind != kindUDP && s.kind != kindPing {
		return nil, ErrWrongKind, false
	}
	if s.kind == kindPing && remote.Port() == 0 {
		remote = netip.AddrPortFrom(remote.Addr(), 1) // gVisor wants a port; ping ignores it
	}
	if remote.Port() == 0 || remote.Addr().IsUnspecified() {
		return nil, ErrInvalidAddr, false
	}
	fa, err := s.toFull(remote)
	if err != nil {
		return nil, err, false
	}
	if terr := s.ep.Connect(fa); terr != nil {
		return nil, fromTCPIP(terr), false
	}
	return s.addrs(), nil, false
}

func (s *socket) udpSend(to netip.AddrPort, buf []byte) (Response, error, bool) {
	if len(buf) > maxDatagram {
		return nil, ErrMessageTooLong, false
	}
	var opts tcpip.WriteOptions
	if to.IsValid() {
		if s.kind == kindPing && to.Port() == 0 {
			to = netip.AddrPortFrom(to.Addr(), 1)
		}
		if to.Port() == 0 || to.Addr().IsUnspecified() {
			return nil, ErrInvalidAddr, false
		}
		fa, err := s.toFull(to)
		if err != nil {
			return nil, err, false
		}
		opts.To = &fa
	}
	s.rd.Reset(buf)
	n, terr := s.ep.Write(&s.rd, opts)
	s.rd.Reset(nil)
	switch terr.(type) {
	case nil:
		return UDPSent{N: int(n)}, nil, false
	case *tcpip.ErrWouldBlock:
		return nil, nil, true
	}
	return nil, fromTCPIP(terr), false
}

func (s *socket) udpRecv(buf []byte) (Response, error, bool) {
	if len(buf) == 0 {
		return nil, ErrEmptyBuffer, false
	}
	if resp, err, ok := s.recvQueued(buf); ok {
		return resp, err, false
	}
	s.sw = buf
	res, terr := s.ep.Read(&s.sw, tcpip.ReadOptions{NeedRemoteAddr: true})
	s.sw = nil
	switch terr.(type) {
	case nil:
		s.dgrams.taken++
		return UDPRecvd{N: res.Count, From: fromFull(res.RemoteAddr), Truncated: res.Total > res.Count}, nil, false
	case *tcpip.ErrWouldBlock:
		return nil, nil, true
	}
	return nil, fromTCPIP(terr), false
}

func (ns *Netstack) pingOpen(c PingOpen) (Response, error, bool) {
	if !c.Local.IsValid() {
		return nil, ErrInvalidAddr, false
	}
	proto, trans := header.IPv4ProtocolNumber, icmp.ProtocolNumber4
	if !c.Local.Is4() && !c.Local.Is4In6() {
		proto, trans = header.IPv6ProtocolNumber, icmp.ProtocolNumber6
	}
	wq := new(waiter.Queue)
	ep, terr := ns.s.NewEndpoint(trans, proto, wq)
	if terr != nil {
		return nil, fromTCPIP(terr), false
	}
	ep.SocketOptions().SetReceiveBufferSize(int64(ns.cfg.UDPRecvBuffer), true)
	s, err := ns.newSocket(kindPing, ep, wq, proto)
	if err != nil {
		return nil, err, false
	}
	s.dgrams = new(udpQueue)
	fa := tcpip.FullAddress{Addr: tcpAddr(c.Local.Unmap())}
	if terr := s.ep.Bind(fa); terr != nil {
		ns.closeSocket(s, false)
		return nil, fromTCPIP(terr), false
	}
	return PingOpened{Handle: s.h, Local: s.addrs().Local.Addr()}, nil, false
}

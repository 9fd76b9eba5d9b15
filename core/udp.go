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
	s.fastRegister()
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
	s.connectRoutes(fa)
	s.fastRegister()
	return s.addrs(), nil, false
}

// connectRoutes makes s's sends without a destination go to peer through
// s's route cache: the routes cached while s was unconnected (with its
// source as it was) go, and its first send fills the peer's.
func (s *socket) connectRoutes(peer tcpip.FullAddress) {
	q := s.dgrams
	if q == nil || s.kind != kindUDP {
		return
	}
	if q.routes != nil {
		q.routes.clear()
	}
	q.peer, q.connected = peer, true
}

// dropRoutes lets go of s's cached routes for good (see routeCache): s is
// closed.
func (s *socket) dropRoutes() {
	if s.dgrams == nil {
		return
	}
	s.dgrams.noRoutes = true
	if s.dgrams.routes != nil {
		s.dgrams.routes.clear()
	}
}

func (s *socket) udpSend(c *UDPSend) (Response, error, bool) {
	n, err, wait := s.sendDatagram(c.To, c.Buf)
	if err != nil || wait {
		return nil, err, wait
	}
	if c.Result != nil {
		*c.Result = UDPSent{N: n}
		return c.Result, nil, false
	}
	return UDPSent{N: n}, nil, false
}

// sendDatagram sends buf as one datagram to to (the zero AddrPort: the
// connected peer) and returns its size. wait reports that gVisor has no
// room for it now.
func (s *socket) sendDatagram(to netip.AddrPort, buf []byte) (n int, err error, wait bool) {
	if len(buf) > maxDatagram {
		return 0, ErrMessageTooLong, false
	}
	f := &s.dgrams.flat
	f.reset(buf)
	n, err, wait = s.writeDatagram(to, f)
	f.reset(nil)
	return n, err, wait
}

// writeDatagram sends what p holds as one datagram, as sendDatagram does.
func (s *socket) writeDatagram(to netip.AddrPort, p tcpip.Payloader) (n int, err error, wait bool) {
	var opts tcpip.WriteOptions
	if !to.IsValid() && s.dgrams != nil && s.dgrams.connected {
		if terr := s.ep.LastError(); terr != nil {
			return 0, fromTCPIP(terr), false // an ICMP error, reported once (as gVisor's Write does)
		}
		if n, err, wait, ok := s.sendCached(&s.dgrams.peer, p); ok {
			return n, err, wait
		}
	}
	if to.IsValid() {
		if s.kind == kindPing && to.Port() == 0 {
			to = netip.AddrPortFrom(to.Addr(), 1)
		}
		if to.Port() == 0 || to.Addr().IsUnspecified() {
			return 0, ErrInvalidAddr, false
		}
		fa, err := s.toFull(to)
		if err != nil {
			return 0, err, false
		}
		s.dgrams.to = fa // WriteOptions takes a pointer: no allocation per send
		if n, err, wait, ok := s.sendCached(&s.dgrams.to, p); ok {
			return n, err, wait
		}
		opts.To = &s.dgrams.to
	}
	w, terr := s.ep.Write(p, opts)
	switch terr.(type) {
	case nil:
		return int(w), nil, false
	case *tcpip.ErrWouldBlock:
		return 0, nil, true
	}
	return 0, fromTCPIP(terr), false
}

func (s *socket) udpRecv(c *UDPRecv) (Response, error, bool) {
	v, err, wait := s.recvDatagram(c.Buf)
	if err != nil || wait {
		return nil, err, wait
	}
	if c.Result != nil {
		*c.Result = v
		return c.Result, nil, false
	}
	return v, nil, false
}

// recvDatagram takes the next datagram into buf, from the socket's queue
// or from gVisor. wait reports that there is none.
func (s *socket) recvDatagram(buf []byte) (v UDPRecvd, err error, wait bool) {
	if len(buf) == 0 {
		return v, ErrEmptyBuffer, false
	}
	if v, ok := s.recvFast(buf, false); ok {
		return v, nil, false
	}
	if v, err, ok := s.recvQueued(buf); ok {
		return v, err, false
	}
	s.sw = buf
	res, terr := s.ep.Read(&s.sw, tcpip.ReadOptions{NeedRemoteAddr: true})
	s.sw = nil
	switch terr.(type) {
	case nil:
		s.dgrams.taken++
		return UDPRecvd{N: res.Count, From: fromFull(res.RemoteAddr), Truncated: res.Total > res.Count}, nil, false
	case *tcpip.ErrWouldBlock:
		if v, ok := s.recvFast(buf, true); ok {
			return v, nil, false
		}
		return v, nil, true
	}
	return v, fromTCPIP(terr), false
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

package core

import (
	"io"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// newTCP makes a TCP endpoint for proto, registered in the socket table.
// The socket and the endpoint's waiter queue are one allocation.
func (ns *Netstack) newTCP(kind sockKind, proto tcpip.NetworkProtocolNumber) (*socket, error) {
	b := new(socketWithQueue)
	ep, terr := ns.s.NewEndpoint(tcp.ProtocolNumber, proto, &b.wq)
	if terr != nil {
		return nil, fromTCPIP(terr)
	}
	return ns.addSocket(&b.s, kind, ep, &b.wq, proto)
}

// socketWithQueue is a socket with the waiter queue of an endpoint made
// for it (accepted streams come with gVisor's).
type socketWithQueue struct {
	s  socket
	wq waiter.Queue
}

func (ns *Netstack) tcpListen(c TCPListen) (Response, error, bool) {
	if !c.Local.Addr().IsValid() {
		return nil, ErrInvalidAddr, false
	}
	s, err := ns.newTCP(kindListener, netProto(c.Local.Addr()))
	if err != nil {
		return nil, err, false
	}
	backlog := c.Backlog
	if backlog <= 0 || backlog > ns.cfg.MaxBacklog {
		backlog = ns.cfg.MaxBacklog
	}
	s.ep.SocketOptions().SetReuseAddress(true)
	if err := ns.bindListen(s, c.Local, backlog); err != nil {
		ns.closeSocket(s, true)
		return nil, err, false
	}
	return TCPListening{Handle: s.h, Local: s.addrs().Local}, nil, false
}

func (ns *Netstack) bindListen(s *socket, local netip.AddrPort, backlog int) error {
	fa, err := s.toFull(local)
	if err != nil {
		return err
	}
	if terr := s.ep.Bind(fa); terr != nil {
		return fromTCPIP(terr)
	}
	return fromTCPIP(s.ep.Listen(backlog))
}

// tcpConnect starts a handshake and parks r until it ends.
func (ns *Netstack) tcpConnect(r *Request, c *TCPConnect) (Response, error, bool) {
	remote := netip.AddrPortFrom(c.Remote.Addr().Unmap(), c.Remote.Port())
	if !remote.Addr().IsValid() || remote.Addr().IsUnspecified() || remote.Port() == 0 {
		return nil, ErrInvalidAddr, false
	}
	if l := c.Local.Addr(); l.IsValid() && !l.IsUnspecified() && netProto(l) != netProto(remote.Addr()) {
		return nil, ErrAddrFamily, false
	}
	s, err := ns.newTCP(kindStream, netProto(remote.Addr()))
	if err != nil {
		return nil, err, false
	}
	s.setKeepAlive(c.KeepAlive)
	if err := s.connect(c.Local, remote); err != nil {
		ns.closeSocket(s, true)
		return nil, err, false
	}
	s.connecting = true
	ns.park(s, &s.writers, r)
	ns.markReady(s) // the handshake may already be over
	return nil, nil, true
}

func (s *socket) connect(local, remote netip.AddrPort) error {
	if err := s.bindLocal(local); err != nil {
		return err
	}
	ra, err := s.toFull(remote)
	if err != nil {
		return err
	}
	switch terr := s.ep.Connect(ra); terr.(type) {
	case nil, *tcpip.ErrConnectStarted:
		return nil
	default:
		return fromTCPIP(terr)
	}
}

// bindLocal binds a connecting socket to local, if it names an address or
// a port. An unspecified address of either family keeps only the port, so
// [::]:5000 connecting to an IPv4 peer binds port 5000 (a dual-stack
// socket, as the kernel has it).
func (s *socket) bindLocal(local netip.AddrPort) error {
	if !local.Addr().IsValid() || (local.Addr().IsUnspecified() && local.Port() == 0) {
		return nil
	}
	fa := tcpip.FullAddress{Port: local.Port()}
	if !local.Addr().IsUnspecified() {
		var err error
		if fa, err = s.toFull(local); err != nil {
			return err
		}
	}
	return fromTCPIP(s.ep.Bind(fa))
}

// connectDone finishes r, a parked connect, once the handshake is over.
// It answers with the reply in r's own room (see connCmds).
func (s *socket) connectDone(r *Request) (Response, error, bool) {
	if s.ep.Readiness(waiter.WritableEvents|waiter.EventErr|waiter.EventHUp) == 0 {
		return nil, nil, true
	}
	s.connecting = false
	if terr := s.ep.LastError(); terr != nil {
		s.connFailed = true
		return nil, fromTCPIP(terr), false
	}
	a := s.addrs()
	if !a.Remote.IsValid() {
		s.connFailed = true
		return nil, ErrConnRefused, false
	}
	r.conn.connected = TCPConnected{Handle: s.h, Local: a.Local, Remote: a.Remote}
	return &r.conn.connected, nil, false
}

// tcpAccept answers r with the next connection, in r's own room (see
// connCmds), or parks it.
func (s *socket) tcpAccept(r *Request, ka KeepAlive) (Response, error, bool) {
	ep, wq, terr := s.ep.Accept(nil)
	if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
		return nil, nil, true
	}
	if terr != nil {
		return nil, fromTCPIP(terr), false
	}
	c, err := s.ns.newSocket(kindStream, ep, wq, s.netProto)
	if err != nil {
		return nil, err, false
	}
	c.setKeepAlive(ka)
	a := c.addrs()
	r.conn.accepted = TCPAccepted{Handle: c.h, Local: a.Local, Remote: a.Remote}
	return &r.conn.accepted, nil, false
}

// tcpSend writes buf from r.progress on; it parks until all of buf is taken.
func (s *socket) tcpSend(r *Request, buf []byte) (Response, error, bool) {
	if len(buf) == 0 {
		return nil, ErrEmptyBuffer, false
	}
	for r.progress < len(buf) {
		s.rd.Reset(buf[r.progress:])
		n, terr := s.ep.Write(&s.rd, tcpip.WriteOptions{})
		r.progress += int(n)
		s.bytesWritten += uint64(n)
		s.rd.Reset(nil)
		switch terr.(type) {
		case nil:
		case *tcpip.ErrWouldBlock:
			return nil, nil, true
		default:
			return TCPSent{N: r.progress}, fromTCPIP(terr), false
		}
	}
	return TCPSent{N: r.progress}, nil, false
}

// tcpRecv reads what is there into buf; it parks while nothing is.
func (s *socket) tcpRecv(buf []byte) (Response, error, bool) {
	if len(buf) == 0 {
		return nil, ErrEmptyBuffer, false
	}
	s.sw = buf
	res, terr := s.ep.Read(&s.sw, tcpip.ReadOptions{})
	s.sw = nil
	switch terr.(type) {
	case nil:
		s.bytesRead += uint64(res.Count)
		return TCPRecvd{N: res.Count}, nil, false
	case *tcpip.ErrWouldBlock:
		return nil, nil, true
	case *tcpip.ErrClosedForReceive:
		return nil, io.EOF, false
	default:
		return nil, fromTCPIP(terr), false
	}
}

func (s *socket) tcpShutdown(c TCPShutdown) (Response, error, bool) {
	if s.kind != kindStream {
		return nil, ErrWrongKind, false
	}
	var flags tcpip.ShutdownFlags
	if c.Read {
		flags |= tcpip.ShutdownRead
	}
	if c.Write {
		flags |= tcpip.ShutdownWrite
	}
	if flags == 0 {
		return nil, ErrInvalid, false
	}
	if terr := s.ep.Shutdown(flags); terr != nil {
		return nil, fromTCPIP(terr), false
	}
	s.ns.markReady(s) // parked reads end now
	return OK{}, nil, false
}

package netconn

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/netcore-go/netcore/core"
)

// TCPConn is a TCP stream of a netcore stack. It implements net.Conn and
// offers the methods of *net.TCPConn (MultipathTCP excepted). It is safe
// for concurrent use: Reads are served one at a time, as are Writes, so the
// bytes of one Write are never interleaved with another's.
type TCPConn struct {
	sock
	local      netip.AddrPort
	remote     netip.AddrPort
	lingerZero atomic.Bool // SetLinger(0): Close resets

	rmu  sync.Mutex   // serializes Reads; guards rcmd
	rcmd core.TCPRecv // +checklocks:rmu
	wmu  sync.Mutex   // serializes Writes; guards wcmd
	wcmd core.TCPSend // +checklocks:wmu
	imu  sync.Mutex   // serializes Info; guards info
	// info is Info's reply, made on its first call (most conns never ask).
	// +checklocks:imu
	info *core.TCPInfo
}

var _ net.Conn = (*TCPConn)(nil)

// NewTCPConn wraps a connected stream handle h (from core.TCPConnected or
// core.TCPAccepted) of the stack behind ch. The TCPConn owns h from now on
// and frees it on Close.
func NewTCPConn(ch core.Channel, h core.Handle, local, remote netip.AddrPort) *TCPConn {
	return newTCPConn(ch, h, "tcp", local, remote)
}

// tcpConnBlock is a TCPConn with what it always needs, made in one
// allocation: its addresses as *net.TCPAddr (their IP bytes included) and
// its two deadlines. The conn keeps the block alive.
type tcpConnBlock struct {
	c        TCPConn
	src, dst net.TCPAddr
	ip       [2][16]byte
	dl       [2]deadline
}

func newTCPConn(ch core.Channel, h core.Handle, network string, local, remote netip.AddrPort) *TCPConn {
	b := new(tcpConnBlock)
	b.src, b.dst = tcpAddrIn(&b.ip[0], local), tcpAddrIn(&b.ip[1], remote)
	c := &b.c
	c.local, c.remote = local, remote
	c.sock = sock{ch: ch, h: h, net: network, src: &b.src, dst: &b.dst, rd: &b.dl[0], wd: &b.dl[1]}
	return c
}

// tcpAddrIn is net.TCPAddrFromAddrPort(ap) with the IP's bytes in buf.
func tcpAddrIn(buf *[16]byte, ap netip.AddrPort) net.TCPAddr {
	a := ap.Addr()
	var ip net.IP
	switch {
	case a.Is4():
		v4 := a.As4()
		ip = buf[:copy(buf[:4], v4[:])]
	case a.Is6():
		*buf = a.As16()
		ip = buf[:]
	}
	return net.TCPAddr{IP: ip, Port: int(ap.Port()), Zone: a.Zone()}
}

// Handle returns the engine handle of the stream.
func (c *TCPConn) Handle() core.Handle { return c.h }

// LocalAddr returns the local address, a *net.TCPAddr; never nil.
func (c *TCPConn) LocalAddr() net.Addr { return c.src }

// RemoteAddr returns the peer's address, a *net.TCPAddr; never nil.
func (c *TCPConn) RemoteAddr() net.Addr { return c.dst }

// LocalAddrPort returns the local address as a netip.AddrPort.
func (c *TCPConn) LocalAddrPort() netip.AddrPort { return c.local }

// RemoteAddrPort returns the peer's address as a netip.AddrPort.
func (c *TCPConn) RemoteAddrPort() netip.AddrPort { return c.remote }

// Read reads what the stream has, waiting for at least one byte. It
// returns io.EOF, unwrapped, once the peer ended the stream cleanly (or
// after CloseRead). A Read cut by the read deadline or by Close returns no
// bytes, and loses none: bytes the engine already copied are returned.
func (c *TCPConn) Read(b []byte) (int, error) {
	n, err := c.read(b)
	return n, c.opErr("read", err)
}

func (c *TCPConn) read(b []byte) (int, error) {
	if err := c.ready(c.rd); err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := c.ready(c.rd); err != nil {
		return 0, err
	}
	c.rcmd.Buf = b
	resp, err := c.request(c.rd, &c.rcmd)
	c.rcmd.Buf = nil
	if r, ok := resp.(core.TCPRecvd); ok {
		return r.N, nil
	}
	return 0, err
}

// Write writes all of b unless an error cuts it short; then it returns how
// many bytes the stack took, exactly, with the error. Concurrent Writes do
// not interleave.
func (c *TCPConn) Write(b []byte) (int, error) {
	n, err := c.write(b)
	return n, c.opErr("write", err)
}

func (c *TCPConn) write(b []byte) (int, error) {
	if err := c.ready(c.wd); err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ready(c.wd); err != nil {
		return 0, err
	}
	c.wcmd.Buf = b
	resp, err := c.request(c.wd, &c.wcmd)
	c.wcmd.Buf = nil
	n := 0
	if s, ok := resp.(core.TCPSent); ok {
		n = s.N
	}
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return n, err
}

// Close closes the stream: the peer sees a clean end (FIN), or a reset
// after SetLinger(0). Every call blocked on the conn returns an error
// matching net.ErrClosed, as does every later call and a second Close.
func (c *TCPConn) Close() error {
	var cmd core.Command = core.CloseSocket{}
	if c.lingerZero.Load() {
		cmd = core.Abort{}
	}
	return c.opErr("close", c.closeWith(cmd))
}

// CloseRead shuts down the reading side: later Reads return io.EOF.
func (c *TCPConn) CloseRead() error {
	return c.opErr("close", c.shutdown(core.TCPShutdown{Read: true}))
}

// CloseWrite shuts down the writing side: the peer reads io.EOF once it
// has what was written. Later Writes fail (EPIPE).
func (c *TCPConn) CloseWrite() error {
	return c.opErr("close", c.shutdown(core.TCPShutdown{Write: true}))
}

func (c *TCPConn) shutdown(cmd core.TCPShutdown) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	_, err := c.ch.Request(context.Background(), c.h, cmd)
	return c.mapErr(err)
}

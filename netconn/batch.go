package netconn

import (
	"net"
	"net/netip"
	"slices"
	"syscall"

	"github.com/netcore-go/netcore/core"
	"golang.org/x/net/ipv4"
)

// ReadBatch reads datagrams into ms, as golang.org/x/net/ipv4's
// PacketConn.ReadBatch does on Linux, so code written for it ports
// unchanged: it waits for at least one datagram, then fills as many more
// of ms as have already arrived, in one request to the engine, and returns
// how many it filled. Each filled message gets N (its bytes, copied into
// Buffers in order), Addr (the sender, a *net.UDPAddr shared by datagrams
// from one sender, see ReadFrom) and Flags (the system's MSG_TRUNC if the
// datagram was longer than Buffers: the rest is discarded); OOB is not
// used (NN is 0). flags must be 0. Every message needs room for one byte
// at least. Errors are *net.OpError with Op "read", as for ReadFrom
// (deadlines, Close).
func (c *UDPConn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	if flags != 0 || len(ms) == 0 {
		return 0, c.opErr("read", syscall.EINVAL)
	}
	n, err := c.readBatch(ms)
	return n, c.opErr("read", err)
}

func (c *UDPConn) readBatch(ms []ipv4.Message) (int, error) {
	if err := c.ready(c.rd); err != nil {
		return 0, err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := c.ready(c.rd); err != nil {
		return 0, err
	}
	c.rmsgs = slices.Grow(c.rmsgs[:0], len(ms))[:len(ms)]
	for i := range ms {
		c.rmsgs[i] = core.Datagram{Buffers: ms[i].Buffers}
	}
	c.rbcmd = core.UDPRecvBatch{Msgs: c.rmsgs, Result: &c.rbres}
	resp, err := c.request(c.rd, &c.rbcmd)
	c.rbcmd = core.UDPRecvBatch{}
	defer clear(c.rmsgs) // keep none of the caller's buffers
	if resp == nil {
		return 0, err
	}
	for i := range c.rbres.N {
		d := &c.rmsgs[i]
		m := &ms[i]
		m.N, m.NN, m.Flags = d.N, 0, 0
		if d.Truncated {
			m.Flags = msgTrunc
		}
		m.Addr = c.from.get(d.Addr)
	}
	return c.rbres.N, nil
}

// WriteBatch sends each message of ms as one datagram, in order, as
// golang.org/x/net/ipv4's PacketConn.WriteBatch does on Linux, in one
// request to the engine, and returns how many it sent; each sent message
// gets N. Buffers are sent in order as one datagram. Addr is the
// destination, a *net.UDPAddr; on a connected socket it must be nil or the
// peer. flags must be 0.
//
// It stops at the first message that cannot go (too long for a datagram:
// an error matching syscall.EMSGSIZE; a bad address: EINVAL): the returned
// count is of the messages before it, which were sent, and the error is
// about it; the ones after it were not tried. A write cut by its deadline
// returns the count sent so far with the timeout error. Errors are
// *net.OpError with Op "write".
func (c *UDPConn) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	if flags != 0 {
		return 0, c.opErr("write", syscall.EINVAL)
	}
	if len(ms) == 0 {
		return 0, nil
	}
	n, err := c.writeBatch(ms)
	if err != nil && n < len(ms) {
		return n, c.opErrTo("write", c.batchErrAddr(ms[n].Addr), err)
	}
	return n, c.opErr("write", err)
}

// batchErrAddr is the OpError.Addr for a failed message to addr.
func (c *UDPConn) batchErrAddr(addr net.Addr) net.Addr {
	if addr == nil {
		return c.dst
	}
	return addr
}

func (c *UDPConn) writeBatch(ms []ipv4.Message) (int, error) {
	if err := c.ready(c.wd); err != nil {
		return 0, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ready(c.wd); err != nil {
		return 0, err
	}
	c.wmsgs = slices.Grow(c.wmsgs[:0], len(ms))[:len(ms)]
	defer clear(c.wmsgs) // keep none of the caller's buffers
	valid := len(ms)     // messages before the first bad address
	var bad error
	for i := range ms {
		to, err := c.batchDest(ms[i].Addr)
		if err != nil {
			valid, bad = i, err
			break
		}
		c.wmsgs[i] = core.Datagram{Buffers: ms[i].Buffers, Addr: to}
	}
	if valid == 0 {
		return 0, bad
	}
	n, err := c.sendBatchLocked(c.wmsgs[:valid])
	for i := range n {
		ms[i].N = c.wmsgs[i].N
	}
	if err == nil && n == valid {
		err = bad
	}
	return n, err
}

// sendBatchLocked sends msgs with as many requests as the engine needs (it
// answers early while the stack's outbound queue is full) and returns how
// many went out.
//
// +checklocks:c.wmu
func (c *UDPConn) sendBatchLocked(msgs []core.Datagram) (int, error) {
	n := 0
	for n < len(msgs) {
		c.wbcmd = core.UDPSendBatch{Msgs: msgs[n:], Result: &c.wbres}
		resp, err := c.request(c.wd, &c.wbcmd)
		c.wbcmd = core.UDPSendBatch{}
		if resp != nil {
			n += c.wbres.N
		}
		if err != nil || resp == nil || c.wbres.N == 0 {
			return n, err
		}
	}
	return n, nil
}

// batchDest is the core destination of a message to addr: the zero
// AddrPort (the peer) on a connected socket.
func (c *UDPConn) batchDest(addr net.Addr) (netip.AddrPort, error) {
	if addr == nil {
		return netip.AddrPort{}, nil // the peer, or ENOTCONN from the engine
	}
	a, ok := addr.(*net.UDPAddr)
	if !ok || a == nil {
		return netip.AddrPort{}, syscall.EINVAL
	}
	to := a.AddrPort()
	if !to.IsValid() {
		return netip.AddrPort{}, syscall.EINVAL
	}
	if c.connected() {
		if to != c.remote {
			return netip.AddrPort{}, net.ErrWriteToConnected
		}
		return netip.AddrPort{}, nil
	}
	return to, nil
}

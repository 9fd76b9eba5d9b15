package netconn

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/netcore-go/netcore/core"
)

// dgram is the datagram socket UDPConn and PingConn share: one datagram
// per request, reads and writes each serialized so that their commands can
// live in the struct (no allocation per call).
type dgram struct {
	sock
	local  netip.AddrPort
	remote netip.AddrPort // zero when unconnected

	rmu  sync.Mutex    // serializes reads; guards rcmd, rres, scratch and from
	rcmd core.UDPRecv  // +checklocks:rmu
	rres core.UDPRecvd // +checklocks:rmu
	wmu  sync.Mutex    // serializes writes; guards wcmd and wres
	wcmd core.UDPSend  // +checklocks:wmu
	wres core.UDPSent  // +checklocks:wmu
	// +checklocks:rmu
	scratch [1]byte // the buffer of a zero-length read
	// +checklocks:rmu
	from addrCache // the last senders ReadFrom and ReadBatch returned

	// UDPConn's ReadBatch and WriteBatch: their commands and messages,
	// reused from call to call (no allocation once they have grown).
	rbcmd core.UDPRecvBatch // +checklocks:rmu
	rbres core.UDPBatchDone // +checklocks:rmu
	rmsgs []core.Datagram   // +checklocks:rmu
	wbcmd core.UDPSendBatch // +checklocks:wmu
	wbres core.UDPBatchDone // +checklocks:wmu
	wmsgs []core.Datagram   // +checklocks:wmu
}

// recv reads one datagram into b. A longer datagram fills b and the rest
// is discarded.
func (d *dgram) recv(b []byte) (int, netip.AddrPort, error) {
	if err := d.ready(d.rd); err != nil {
		return 0, netip.AddrPort{}, err
	}
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if err := d.ready(d.rd); err != nil {
		return 0, netip.AddrPort{}, err
	}
	return d.recvLocked(b)
}

// recvLocked is recv with d.rmu held.
//
// +checklocks:d.rmu
func (d *dgram) recvLocked(b []byte) (int, netip.AddrPort, error) {
	d.rcmd.Buf, d.rcmd.Result = b, &d.rres
	if len(b) == 0 {
		d.rcmd.Buf = d.scratch[:]
	}
	resp, err := d.request(d.rd, &d.rcmd)
	d.rcmd.Buf = nil
	if resp == nil {
		return 0, netip.AddrPort{}, err
	}
	return min(d.rres.N, len(b)), d.rres.From, nil
}

// recvFrom is recv returning the sender as a *net.UDPAddr, the same one
// as for the previous datagram when the sender is the same (see addrCache).
func (d *dgram) recvFrom(b []byte) (int, *net.UDPAddr, error) {
	if err := d.ready(d.rd); err != nil {
		return 0, nil, err
	}
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if err := d.ready(d.rd); err != nil {
		return 0, nil, err
	}
	n, from, err := d.recvLocked(b)
	if err != nil {
		return n, nil, err
	}
	return n, d.from.get(from), nil
}

// send sends b as one datagram to to, or to the connected peer when to is
// the zero AddrPort.
func (d *dgram) send(b []byte, to netip.AddrPort) (int, error) {
	if err := d.ready(d.wd); err != nil {
		return 0, err
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if err := d.ready(d.wd); err != nil {
		return 0, err
	}
	d.wcmd.To, d.wcmd.Buf, d.wcmd.Result = to, b, &d.wres
	resp, err := d.request(d.wd, &d.wcmd)
	d.wcmd.Buf = nil
	if resp == nil {
		return 0, err
	}
	return d.wres.N, nil
}

// connected reports whether the socket has a default peer.
func (d *dgram) connected() bool { return d.remote.IsValid() }

// remoteAddr returns d.dst, which is nil when unconnected.
func (d *dgram) remoteAddr() net.Addr { return d.dst }

// bindDgram makes a datagram socket with open (core.UDPBind or
// core.PingOpen) and, when remote is valid, connects it. On failure no
// socket is left behind.
func bindDgram(ctx context.Context, ch core.Channel, open core.Command, remote netip.AddrPort) (core.Handle, netip.AddrPort, error) {
	resp, err := ch.Request(ctx, core.NoHandle, open)
	if err != nil {
		return core.NoHandle, netip.AddrPort{}, err
	}
	var h core.Handle
	var local netip.AddrPort
	switch r := resp.(type) {
	case core.UDPBound:
		h, local = r.Handle, r.Local
	case core.PingOpened:
		h, local = r.Handle, netip.AddrPortFrom(r.Local, 0)
	}
	if err := connectDgram(ctx, ch, h, remote, &local); err != nil {
		closeHandle(ch, h)
		return core.NoHandle, netip.AddrPort{}, err
	}
	return h, local, nil
}

// connectDgram connects h to remote if remote is valid and updates local
// to the address the stack chose.
func connectDgram(ctx context.Context, ch core.Channel, h core.Handle, remote netip.AddrPort, local *netip.AddrPort) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !remote.IsValid() {
		return nil
	}
	resp, err := ch.Request(ctx, h, core.UDPConnect{Remote: remote})
	if err != nil {
		return err
	}
	if a, ok := resp.(core.Addrs); ok && a.Local.IsValid() {
		*local = a.Local
	}
	return ctx.Err()
}

// addrCache keeps the *net.UDPAddr made for the last few senders, so that
// flows of datagrams from a few peers cost one allocation each, not one
// per datagram. Callers of ReadFrom get the same pointer for datagrams
// from one sender; one who modifies it gets a fresh one next time (get
// checks that the kept address still says what it did).
type addrCache struct {
	e    [addrCacheSize]addrEntry
	next int // the entry to replace next
}

// addrCacheSize is how many senders an addrCache remembers.
const addrCacheSize = 16

type addrEntry struct {
	ap netip.AddrPort
	ua *net.UDPAddr
}

// get returns a *net.UDPAddr for ap.
func (c *addrCache) get(ap netip.AddrPort) *net.UDPAddr {
	for i := range c.e {
		if e := &c.e[i]; e.ua != nil && e.ap == ap {
			if e.intact() {
				return e.ua
			}
			e.ua = net.UDPAddrFromAddrPort(ap)
			return e.ua
		}
	}
	e := &c.e[c.next]
	c.next = (c.next + 1) % addrCacheSize
	e.ap, e.ua = ap, net.UDPAddrFromAddrPort(ap)
	return e.ua
}

// intact reports whether the kept *net.UDPAddr still holds e.ap.
func (e *addrEntry) intact() bool {
	a := e.ap.Addr()
	if e.ua.Port != int(e.ap.Port()) || e.ua.Zone != a.Zone() {
		return false
	}
	if a.Is4() {
		return len(e.ua.IP) == 4 && [4]byte(e.ua.IP) == a.As4()
	}
	return len(e.ua.IP) == 16 && [16]byte(e.ua.IP) == a.As16()
}

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

	rmu  sync.Mutex   // serializes reads; guards rcmd and scratch
	rcmd core.UDPRecv // +checklocks:rmu
	// +checklocks:rmu
	scratch [1]byte      // the buffer of a zero-length read
	wmu     sync.Mutex   // serializes writes; guards wcmd
	wcmd    core.UDPSend // +checklocks:wmu
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
	d.rcmd.Buf = b
	if len(b) == 0 {
		d.rcmd.Buf = d.scratch[:]
	}
	resp, err := d.request(d.rd, &d.rcmd)
	d.rcmd.Buf = nil
	r, ok := resp.(core.UDPRecvd)
	if !ok {
		return 0, netip.AddrPort{}, err
	}
	return min(r.N, len(b)), r.From, nil
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
	d.wcmd.To, d.wcmd.Buf = to, b
	resp, err := d.request(d.wd, &d.wcmd)
	d.wcmd.Buf = nil
	if s, ok := resp.(core.UDPSent); ok {
		return s.N, nil
	}
	return 0, err
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

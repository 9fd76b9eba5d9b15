package tundev_test

// A small net.Conn over core's TCP commands, for these tests only (the
// netconn package is the real one).

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"go.uber.org/goleak"
)

func leakCheck(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// request sends cmd with a timeout and returns the typed response.
func request[T core.Response](ctx context.Context, ch core.Channel, h core.Handle, cmd core.Command) (T, error) {
	var zero T
	resp, err := ch.Request(ctx, h, cmd)
	if err != nil {
		return zero, err
	}
	r, ok := resp.(T)
	if !ok {
		return zero, errors.New("unexpected response type")
	}
	return r, nil
}

func must[T core.Response](tb testing.TB, ch core.Channel, h core.Handle, cmd core.Command) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := request[T](ctx, ch, h, cmd)
	if err != nil {
		tb.Fatalf("%T: %v", cmd, err)
	}
	return r
}

// stackListener is a net.Listener on a netcore stack.
type stackListener struct {
	ch    core.Channel
	h     core.Handle
	local netip.AddrPort
	ctx   context.Context
	stop  context.CancelFunc
}

func listenStack(tb testing.TB, ch core.Channel, local netip.AddrPort) *stackListener {
	tb.Helper()
	l := must[core.TCPListening](tb, ch, core.NoHandle, core.TCPListen{Local: local})
	ctx, stop := context.WithCancel(context.Background())
	sl := &stackListener{ch: ch, h: l.Handle, local: l.Local, ctx: ctx, stop: stop}
	tb.Cleanup(func() { sl.Close() })
	return sl
}

func (l *stackListener) Accept() (net.Conn, error) {
	a, err := request[core.TCPAccepted](l.ctx, l.ch, l.h, core.TCPAccept{})
	if err != nil {
		return nil, err
	}
	return newStackConn(l.ch, a.Handle, a.Local, a.Remote), nil
}

func (l *stackListener) Close() error {
	l.stop()
	_, err := l.ch.Request(context.Background(), l.h, core.Close{})
	return err
}

func (l *stackListener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.local) }

func dialStack(ctx context.Context, ch core.Channel, remote netip.AddrPort) (net.Conn, error) {
	c, err := request[core.TCPConnected](ctx, ch, core.NoHandle, core.TCPConnect{Remote: remote})
	if err != nil {
		return nil, err
	}
	return newStackConn(ch, c.Handle, c.Local, c.Remote), nil
}

// stackConn is a net.Conn over a core TCP stream handle, with deadlines as
// per-direction contexts cancelled by a timer.
type stackConn struct {
	ch            core.Channel
	h             core.Handle
	local, remote netip.AddrPort
	life          context.Context
	kill          context.CancelCauseFunc
	rd, wd        deadline
	closeOnce     sync.Once
}

func newStackConn(ch core.Channel, h core.Handle, local, remote netip.AddrPort) *stackConn {
	c := &stackConn{ch: ch, h: h, local: local, remote: remote}
	c.life, c.kill = context.WithCancelCause(context.Background())
	c.rd.init(c.life)
	c.wd.init(c.life)
	return c
}

func (c *stackConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, c.opErr("read", c.life.Err())
	}
	ctx := c.rd.context()
	if ctx.Err() != nil { // a past deadline fails at once
		return 0, c.opErr("read", context.Cause(ctx))
	}
	r, err := request[core.TCPRecvd](ctx, c.ch, c.h, &core.TCPRecv{Buf: b})
	if err == io.EOF {
		return r.N, io.EOF
	}
	return r.N, c.opErr("read", err)
}

func (c *stackConn) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, c.opErr("write", c.life.Err())
	}
	ctx := c.wd.context()
	if ctx.Err() != nil {
		return 0, c.opErr("write", context.Cause(ctx))
	}
	resp, err := c.ch.Request(ctx, c.h, &core.TCPSend{Buf: b})
	n := 0
	if s, ok := resp.(core.TCPSent); ok {
		n = s.N
	}
	return n, c.opErr("write", err)
}

// opErr maps err to what net.Conn callers expect.
func (c *stackConn) opErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case c.life.Err() != nil:
		err = net.ErrClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = os.ErrDeadlineExceeded
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

func (c *stackConn) Close() error {
	err := error(net.ErrClosed)
	c.closeOnce.Do(func() {
		c.kill(net.ErrClosed)
		c.rd.stop()
		c.wd.stop()
		_, err = c.ch.Request(context.Background(), c.h, core.Close{})
	})
	return err
}

func (c *stackConn) CloseWrite() error {
	_, err := c.ch.Request(context.Background(), c.h, core.TCPShutdown{Write: true})
	return err
}

func (c *stackConn) LocalAddr() net.Addr  { return net.TCPAddrFromAddrPort(c.local) }
func (c *stackConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

func (c *stackConn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}
func (c *stackConn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *stackConn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// deadline is a context cancelled (with os.ErrDeadlineExceeded) when the
// deadline passes; setting a deadline again after it fired makes a new one.
type deadline struct {
	mu     sync.Mutex
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
}

func (d *deadline) init(parent context.Context) {
	d.parent = parent
	d.ctx, d.cancel = context.WithCancelCause(parent)
}

func (d *deadline) context() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ctx
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() || d.ctx.Err() != nil {
		d.ctx, d.cancel = context.WithCancelCause(d.parent)
	}
	d.timer = nil
	if t.IsZero() {
		return
	}
	cancel := d.cancel
	if dur := time.Until(t); dur > 0 {
		d.timer = time.AfterFunc(dur, func() { cancel(os.ErrDeadlineExceeded) })
		return
	}
	cancel(os.ErrDeadlineExceeded)
}

func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
	d.cancel(net.ErrClosed)
}

package tundev_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
	"go.uber.org/goleak"
)

func leakCheck(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// request sends cmd and returns the typed response.
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

// must sends cmd with a timeout and fails tb on error.
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

// listenStack listens on a stack; the listener is closed when tb ends.
func listenStack(tb testing.TB, ch core.Channel, local netip.AddrPort) net.Listener {
	tb.Helper()
	l, err := netconn.ListenTCP(context.Background(), ch, "tcp", local, 0)
	if err != nil {
		tb.Fatalf("ListenTCP %v: %v", local, err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// dialStack dials from a stack.
func dialStack(ctx context.Context, ch core.Channel, remote netip.AddrPort) (net.Conn, error) {
	c, err := netconn.DialTCP(ctx, ch, "tcp", netip.AddrPort{}, remote)
	if err != nil {
		return nil, err // not c: a nil *TCPConn in a net.Conn is not nil
	}
	return c, nil
}

// listenUDP binds a UDP socket on a stack; it is closed when tb ends.
func listenUDP(tb testing.TB, ch core.Channel, local netip.AddrPort) net.PacketConn {
	tb.Helper()
	pc, err := listener.ListenPacket(ch, "udp", local.String())
	if err != nil {
		tb.Fatalf("ListenPacket %v: %v", local, err)
	}
	tb.Cleanup(func() { pc.Close() })
	return pc
}

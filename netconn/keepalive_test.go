package netconn_test

import (
	"context"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
)

// TestSetKeepAlivePeriod checks that SetKeepAlivePeriod does what
// *net.TCPConn's does: it sets the idle time only (rounded up to a whole
// second), zero means Go's 15s, a negative period changes nothing, and the
// probe interval and count are left as they were.
func TestSetKeepAlivePeriod(t *testing.T) {
	p := testnet.NewPair(t)
	cli, _ := tcpConns(t, p, testnet.AddrB)
	ch := p.A.CommandChannel()
	intvl, count := keepAliveOpt(t, ch, cli, core.OptKeepAliveInterval), keepAliveOpt(t, ch, cli, core.OptKeepAliveCount)
	for _, tc := range []struct {
		period, wantIdle time.Duration
	}{
		{30 * time.Second, 30 * time.Second},
		{1500 * time.Millisecond, 2 * time.Second},
		{-1, 2 * time.Second},
		{0, 15 * time.Second},
	} {
		if err := cli.SetKeepAlivePeriod(tc.period); err != nil {
			t.Fatalf("SetKeepAlivePeriod(%v): %v", tc.period, err)
		}
		if got := time.Duration(keepAliveOpt(t, ch, cli, core.OptKeepAliveIdle)); got != tc.wantIdle {
			t.Errorf("SetKeepAlivePeriod(%v): idle %v, want %v", tc.period, got, tc.wantIdle)
		}
		if got := keepAliveOpt(t, ch, cli, core.OptKeepAliveInterval); got != intvl {
			t.Errorf("SetKeepAlivePeriod(%v): interval %v, want it unchanged (%v)", tc.period, time.Duration(got), time.Duration(intvl))
		}
		if got := keepAliveOpt(t, ch, cli, core.OptKeepAliveCount); got != count {
			t.Errorf("SetKeepAlivePeriod(%v): count %d, want it unchanged (%d)", tc.period, got, count)
		}
	}
}

func keepAliveOpt(t *testing.T, ch core.Channel, c *netconn.TCPConn, opt core.SockOpt) int64 {
	t.Helper()
	resp, err := ch.Request(context.Background(), c.Handle(), core.GetSockOpt{Opt: opt})
	if err != nil {
		t.Fatalf("GetSockOpt(%d): %v", opt, err)
	}
	return resp.(core.SockOptValue).Value
}

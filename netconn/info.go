package netconn

import (
	"context"
	"net"

	"github.com/netcore-go/netcore/core"
)

// Info returns the stream's TCP state and counters, as Linux's TCP_INFO
// gives them (ss -ti): state, RTT, RTO, congestion window, segments and
// retransmissions from gVisor, and the bytes written and read through the
// conn counted by netcore. core.TCPInfo documents each field and the ones
// gVisor does not expose. It is one round trip to the engine and, after
// the first call, allocates nothing. After Close it fails with an error matching
// net.ErrClosed.
func (c *TCPConn) Info() (core.TCPInfo, error) {
	if c.closed.Load() {
		return core.TCPInfo{}, c.opErr("info", net.ErrClosed)
	}
	c.imu.Lock()
	defer c.imu.Unlock()
	if c.info == nil {
		c.info = new(core.TCPInfo)
	}
	_, err := c.ch.Request(context.Background(), c.h, core.GetTCPInfo{Info: c.info})
	if err != nil {
		return core.TCPInfo{}, c.opErr("info", c.mapErr(err))
	}
	return *c.info, nil
}

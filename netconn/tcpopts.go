package netconn

import (
	"net"
	"time"

	"github.com/netcore-go/netcore/core"
)

// Keep-alive defaults, as Go's net package chooses them.
const (
	defaultKeepAliveIdle     = 15 * time.Second
	defaultKeepAliveInterval = 15 * time.Second
	defaultKeepAliveCount    = 9
)

// SetNoDelay controls Nagle's algorithm, as *net.TCPConn does. No delay
// (true), Go's default, is also the stack's.
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	return c.setOpt(core.OptNoDelay, boolInt(noDelay))
}

// SetKeepAlive turns keep-alive probes on or off.
func (c *TCPConn) SetKeepAlive(keepalive bool) error {
	return c.setOpt(core.OptKeepAlive, boolInt(keepalive))
}

// SetKeepAlivePeriod sets the idle time before the first probe, as
// *net.TCPConn does: rounded up to a whole second, zero means 15s, and a
// negative period changes nothing. The interval between probes and their
// count stay as they are (see SetKeepAliveConfig).
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	return c.setKeepAliveStep(core.OptKeepAliveIdle, int64(d), int64(defaultKeepAliveIdle), true)
}

// SetKeepAliveConfig configures keep-alive as *net.TCPConn does: with
// Enable false it turns probes off; otherwise a zero Idle, Interval or
// Count picks Go's default (15s, 15s, 9) and a negative one leaves that
// setting unchanged.
func (c *TCPConn) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	if !cfg.Enable {
		return c.SetKeepAlive(false)
	}
	if err := c.SetKeepAlive(true); err != nil {
		return err
	}
	steps := []struct {
		opt  core.SockOpt
		v    int64
		dflt int64
	}{
		{core.OptKeepAliveIdle, int64(cfg.Idle), int64(defaultKeepAliveIdle)},
		{core.OptKeepAliveInterval, int64(cfg.Interval), int64(defaultKeepAliveInterval)},
		{core.OptKeepAliveCount, int64(cfg.Count), defaultKeepAliveCount},
	}
	for i, st := range steps {
		if err := c.setKeepAliveStep(st.opt, st.v, st.dflt, i < 2); err != nil {
			return err
		}
	}
	return nil
}

// setKeepAliveStep sets one keep-alive option: negative leaves it, zero
// takes dflt; durations are rounded up to whole seconds.
func (c *TCPConn) setKeepAliveStep(opt core.SockOpt, v, dflt int64, isDuration bool) error {
	switch {
	case v < 0:
		return nil
	case v == 0:
		v = dflt
	case isDuration:
		v = int64(roundKeepAlive(time.Duration(v)))
	}
	return c.setOpt(opt, v)
}

// keepAliveCmd turns cfg into the engine's KeepAlive with the meaning
// SetKeepAliveConfig gives it on a new stream: zero fields take Go's
// defaults, negative ones keep the stack's, durations round up to whole
// seconds.
func keepAliveCmd(cfg net.KeepAliveConfig) core.KeepAlive {
	if !cfg.Enable {
		return core.KeepAlive{}
	}
	return core.KeepAlive{
		Enable:   true,
		Idle:     keepAliveDur(cfg.Idle, defaultKeepAliveIdle),
		Interval: keepAliveDur(cfg.Interval, defaultKeepAliveInterval),
		Count:    int(max(0, keepAliveValue(int64(cfg.Count), defaultKeepAliveCount))),
	}
}

func keepAliveDur(d, dflt time.Duration) time.Duration {
	v := keepAliveValue(int64(d), int64(dflt))
	if v <= 0 {
		return 0
	}
	return roundKeepAlive(time.Duration(v))
}

// keepAliveValue is v with SetKeepAliveConfig's rules: 0 takes dflt, a
// negative v means "keep" (returned as 0).
func keepAliveValue(v, dflt int64) int64 {
	switch {
	case v < 0:
		return 0
	case v == 0:
		return dflt
	}
	return v
}

// roundKeepAlive rounds a positive d up to a whole second, as the kernel's
// keep-alive options (in seconds) make Go do.
func roundKeepAlive(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}

// SetLinger sets what Close does with unsent data, as *net.TCPConn does:
// sec < 0 (the default) closes gracefully in the background; sec == 0
// discards unsent data and resets the connection; sec > 0 lingers up to
// sec seconds.
func (c *TCPConn) SetLinger(sec int) error {
	v := int64(-1)
	if sec >= 0 {
		v = int64(sec) * int64(time.Second)
	}
	if err := c.setOpt(core.OptLinger, v); err != nil {
		return err
	}
	c.lingerZero.Store(sec == 0)
	return nil
}

// SetReadBuffer sets the size of the stack's receive buffer for the
// stream.
func (c *TCPConn) SetReadBuffer(bytes int) error { return c.setBuffer(core.OptRecvBuffer, bytes) }

// SetWriteBuffer sets the size of the stack's send buffer for the stream.
func (c *TCPConn) SetWriteBuffer(bytes int) error { return c.setBuffer(core.OptSendBuffer, bytes) }

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

package main

import (
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/netconn"
)

// lastConn is a listener that remembers the stream it accepted last: the
// one that served the download, whose TCP info ends the table.
type lastConn struct {
	net.Listener
	last atomic.Pointer[netconn.TCPConn]
}

// Accept accepts the next connection and remembers it.
func (l *lastConn) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*netconn.TCPConn); ok {
		l.last.Store(tc)
	}
	return c, err
}

// info returns the TCP info of the last accepted stream, or nil.
func (l *lastConn) info() *core.TCPInfo {
	c := l.last.Load()
	if c == nil {
		return nil
	}
	ti, err := c.Info()
	if err != nil {
		return nil
	}
	return &ti
}

// connInfo prints the serving connection's TCP info (ss -ti style).
func connInfo(w io.Writer, name string, ti *core.TCPInfo) {
	fmt.Fprintf(w, "  %s's sending connection at the end: %v, rtt %v/%v, rto %v,\n"+
		"    cwnd %d segments; %d segments out, %d retransmitted (%d fast, %d RTO\n"+
		"    expirations); %s written\n",
		name, ti.State, ti.RTT.Round(time.Microsecond), ti.RTTVar.Round(time.Microsecond), ti.RTO, ti.SendCwnd,
		ti.SegmentsSent, ti.SegmentsRetransmitted, ti.FastRetransmits, ti.RTOExpirations, formatSize(int64(ti.BytesWritten)))
}

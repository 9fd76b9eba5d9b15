package dialer

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/netname"
)

// defaultFallbackDelay is net.Dialer's Happy Eyeballs delay.
const defaultFallbackDelay = 300 * time.Millisecond

// A Dialer dials connections through one netcore stack. Set Channel (the
// stack's CommandChannel); every other field's zero value is a working
// default, as with net.Dialer. A Dialer may be used by many goroutines at
// once; its fields must not change while dials are under way.
type Dialer struct {
	// Channel is the command channel of the stack to dial through. It is
	// required: a Dialer whose Channel is the zero value fails every dial.
	Channel core.Channel

	// Timeout is the longest a dial (name resolution included) may take.
	// With Deadline too, the earlier of the two applies. Default: none,
	// though TCP's own handshake timeout still ends a dial.
	Timeout time.Duration

	// Deadline is the time after which a dial fails. Zero means none.
	Deadline time.Time

	// LocalAddr is the local address to dial from. The zero value (or an
	// unspecified address with port 0) lets the stack pick. An address of
	// one family restricts the dial to remote addresses of that family.
	// For ping networks the port is ignored.
	LocalAddr netip.AddrPort

	// FallbackDelay is how long a dial to a name with both IPv6 and IPv4
	// addresses waits for IPv6 before racing IPv4 too (RFC 8305 Happy
	// Eyeballs). Zero means 300ms; a negative value disables the race, and
	// the addresses are then tried one after the other, IPv6 first.
	FallbackDelay time.Duration

	// KeepAlive is the idle time before TCP keep-alive probes start, as in
	// net.Dialer: zero means 15s, a negative value leaves keep-alive off.
	// It is ignored when KeepAliveConfig.Enable is true.
	KeepAlive time.Duration

	// KeepAliveConfig, when Enable is true, sets TCP keep-alive as
	// net.TCPConn.SetKeepAliveConfig does: zero fields take the defaults
	// (15s idle, 15s interval, 9 probes).
	KeepAliveConfig net.KeepAliveConfig

	// DNSServers are the DNS servers, asked over the stack. Each query the
	// resolver sends goes to the next one in turn, so its retries reach
	// the others when one fails. With none, names that Hosts does not hold
	// fail to resolve.
	DNSServers []netip.AddrPort

	// Hosts maps host names to addresses, like /etc/hosts. Names here win
	// over DNS, for dials and for the Resolver's A and AAAA lookups; they
	// match case-insensitively, with or without a trailing dot.
	Hosts map[string][]netip.Addr
}

// Dial connects to address on the named network. See DialContext.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address on the named network through the stack,
// as net.Dialer.DialContext does. Networks are "tcp", "tcp4", "tcp6",
// "udp", "udp4", "udp6" (address "host:port"), "ping4" and "ping6"
// (address "host", an ICMP echo conn). The host may be a literal IP or a
// name, resolved through Hosts and then DNS over the stack.
//
// If ctx ends before the connection is made, the dial fails and leaves no
// socket behind; once connected, ctx no longer matters. Errors are
// *net.OpError with Op "dial"; a failed lookup wraps a *net.DNSError, a
// timeout matches os.ErrDeadlineExceeded and has Timeout() true.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if ctx == nil {
		panic("dialer: nil context")
	}
	if err := d.check(network); err != nil {
		return nil, err
	}
	ctx, cancel := d.withDeadline(ctx)
	defer cancel()
	if ap, ok := d.literal(network, address); ok {
		return d.dialLiteral(ctx, network, ap)
	}
	addrs, err := d.resolve(ctx, network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Source: d.sourceAddr(network), Err: mapErr(err)}
	}
	primaries, fallbacks := d.split(addrs)
	return d.dialParallel(ctx, network, primaries, fallbacks)
}

// check validates the network and the Dialer before any work is done.
func (d *Dialer) check(network string) error {
	if _, ok := netname.Parse(network); !ok {
		return &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if d.Channel == (core.Channel{}) {
		return &net.OpError{Op: "dial", Net: network, Err: errNoChannel}
	}
	return nil
}

// withDeadline bounds ctx by Timeout and Deadline.
func (d *Dialer) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline := d.deadline(time.Now())
	if deadline.IsZero() {
		return ctx, func() {}
	}
	if old, ok := ctx.Deadline(); ok && old.Before(deadline) {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline)
}

// deadline returns the earlier of now+Timeout and Deadline; zero if none.
func (d *Dialer) deadline(now time.Time) time.Time {
	var t time.Time
	if d.Timeout != 0 {
		t = now.Add(d.Timeout)
	}
	if !d.Deadline.IsZero() && (t.IsZero() || d.Deadline.Before(t)) {
		t = d.Deadline
	}
	return t
}

// fallbackDelay returns FallbackDelay with its default applied.
func (d *Dialer) fallbackDelay() time.Duration {
	if d.FallbackDelay == 0 {
		return defaultFallbackDelay
	}
	return d.FallbackDelay
}

// keepAliveConfig returns the keep-alive settings for a new TCP conn, and
// false when keep-alive stays off. Zero fields are left for
// netconn.DialTCPKeepAlive, which applies Go's defaults.
func (d *Dialer) keepAliveConfig() (net.KeepAliveConfig, bool) {
	if d.KeepAliveConfig.Enable {
		return d.KeepAliveConfig, true
	}
	if d.KeepAlive < 0 {
		return d.KeepAliveConfig, false
	}
	return net.KeepAliveConfig{Enable: true, Idle: d.KeepAlive}, true
}

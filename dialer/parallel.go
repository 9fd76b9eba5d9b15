package dialer

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/netcore-go/netcore/internal/netname"
	"github.com/netcore-go/netcore/netconn"
)

// dialResult is what one racer of dialParallel reports.
type dialResult struct {
	conn    net.Conn
	err     error
	primary bool
}

// dialParallel races primaries against fallbacks (RFC 8305): the fallback
// racer starts after FallbackDelay, or at once if the primaries all fail.
// The first connection wins; the other racer is cancelled and waited for,
// and whatever it connected is closed, so no socket outlives the call.
// With no fallbacks it is dialSerial.
func (d *Dialer) dialParallel(ctx context.Context, network string, primaries, fallbacks []netip.AddrPort) (net.Conn, error) {
	if len(fallbacks) == 0 {
		return d.dialSerial(ctx, network, primaries)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan dialResult, 2) // room for both racers: they never block
	go d.race(ctx, network, primaries, true, results)
	timer := time.NewTimer(d.fallbackDelay())
	defer timer.Stop()
	running, fallbackStarted := 1, false
	var primaryErr, fallbackErr error
	for running > 0 || !fallbackStarted {
		select {
		case <-timer.C:
			running, fallbackStarted = running+1, true
			go d.race(ctx, network, fallbacks, false, results)
		case res := <-results:
			running--
			if res.err == nil {
				cancel()
				closeLosers(results, running)
				return res.conn, nil
			}
			if res.primary {
				primaryErr = res.err
				if !fallbackStarted {
					timer.Reset(0) // the primaries failed: fall back now
				}
			} else {
				fallbackErr = res.err
			}
		}
	}
	return nil, cmp.Or(primaryErr, fallbackErr)
}

// race runs one racer and reports its result.
func (d *Dialer) race(ctx context.Context, network string, addrs []netip.AddrPort, primary bool, out chan<- dialResult) {
	c, err := d.dialSerial(ctx, network, addrs)
	out <- dialResult{conn: c, err: err, primary: primary}
}

// closeLosers waits for the n racers still running (already cancelled, so
// they end soon) and closes any connection they made.
func closeLosers(results <-chan dialResult, n int) {
	for ; n > 0; n-- {
		if res := <-results; res.conn != nil {
			res.conn.Close()
		}
	}
}

// dialLiteral dials the one address of a literal (see literal), without
// the lists of addresses a name needs: nothing of its own escapes.
func (d *Dialer) dialLiteral(ctx context.Context, network string, ap netip.AddrPort) (net.Conn, error) {
	one := [1]netip.AddrPort{ap}
	return d.dialSerial(ctx, network, one[:])
}

// dialSerial tries addrs one after the other, giving each a share of the
// time left as net.Dialer does, and returns the first connection. On
// failure it returns the first address's error, the most relevant one.
func (d *Dialer) dialSerial(ctx context.Context, network string, addrs []netip.AddrPort) (net.Conn, error) {
	var firstErr error
	for i, ra := range addrs {
		c, err := d.dialPartial(ctx, network, ra, len(addrs)-i)
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if firstErr == nil {
		firstErr = opError(network, d.sourceAddr(network), nil, errMissingAddress)
	}
	return nil, firstErr
}

// dialPartial dials ra with a deadline that leaves time for the remaining
// addresses.
func (d *Dialer) dialPartial(ctx context.Context, network string, ra netip.AddrPort, remaining int) (net.Conn, error) {
	n, _ := netname.Parse(network)
	kind := n.Transport
	if err := ctx.Err(); err != nil {
		return nil, opError(network, d.sourceAddr(network), netAddr(kind, ra), err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		partial := partialDeadline(time.Now(), deadline, remaining)
		if partial.Before(deadline) {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, partial)
			defer cancel()
		}
	}
	c, err := d.dialOne(ctx, kind, network, ra)
	if err != nil {
		return nil, opError(network, d.sourceAddr(network), netAddr(kind, ra), err)
	}
	return c, nil
}

// partialDeadline gives each of the remaining addresses an equal share of
// the time left, but at least 2s (or all of it, if less is left).
func partialDeadline(now, deadline time.Time, remaining int) time.Time {
	left := deadline.Sub(now)
	share := left / time.Duration(remaining)
	const saneMinimum = 2 * time.Second
	if share < saneMinimum {
		share = min(left, saneMinimum)
	}
	return now.Add(share)
}

// dialOne makes one connection of kind to ra.
func (d *Dialer) dialOne(ctx context.Context, kind netname.Transport, network string, ra netip.AddrPort) (net.Conn, error) {
	switch kind {
	case netname.TCP:
		return d.dialTCP(ctx, network, ra)
	case netname.UDP:
		c, err := netconn.DialUDP(ctx, d.Channel, network, d.LocalAddr, ra)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	c, err := netconn.DialPing(ctx, d.Channel, network, d.LocalAddr.Addr(), ra.Addr())
	if err != nil {
		return nil, err
	}
	return c, nil
}

// dialTCP makes a TCP connection with its keep-alive set in the connect
// request. Like net.Dialer the engine ignores a failure to set keep-alive:
// the connection is good.
func (d *Dialer) dialTCP(ctx context.Context, network string, ra netip.AddrPort) (net.Conn, error) {
	cfg, _ := d.keepAliveConfig() // Enable false when off
	c, err := netconn.DialTCPKeepAlive(ctx, d.Channel, network, d.LocalAddr, ra, cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

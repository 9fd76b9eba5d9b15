package dialer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/netcore-go/netcore/internal/netname"
	"github.com/netcore-go/netcore/netconn"
)

// Resolver returns Go's own DNS resolver (PreferGo) with its queries
// travelling over the stack. Its Dial ignores the name server Go picks
// from the host's /etc/resolv.conf: A and AAAA questions for names in the
// Dialer's Hosts are answered in memory, and every other query goes to the
// Dialer's DNSServers over netcore, UDP first and TCP when an answer is
// truncated. Go brings the rest: A and AAAA, CNAME chains, SRV, TXT, MX, NS
// and PTR lookups, and the search domains, ndots, timeout and attempts of
// /etc/resolv.conf (and /etc/hosts, which Go reads before DNS for host
// lookups).
//
// Each call returns a new *net.Resolver, cheap to make. The resolver reads
// Hosts and DNSServers at each query.
//
// Go's resolver fills the Server field of the *net.DNSError its methods
// return with the name server it read from /etc/resolv.conf ("lookup x on
// 127.0.0.53:53: …"), though the query went to DNSServers over the stack;
// a Resolver cannot change that. The Dialer's own lookups (Dial and
// DialContext) name the DNS server actually asked.
func (d *Dialer) Resolver() *net.Resolver {
	r, _ := d.resolver()
	return r
}

// resolver returns a Resolver and the dnsDialer behind it.
func (d *Dialer) resolver() (*net.Resolver, *dnsDialer) {
	dd := &dnsDialer{d: d}
	return &net.Resolver{PreferGo: true, Dial: dd.dial}, dd
}

// dnsDialer dials the DNS servers of one Resolver in turn.
type dnsDialer struct {
	d    *Dialer
	next atomic.Uint32
	last atomic.Pointer[netip.AddrPort] // the server dialled last, if any
}

// serverAsked returns err with a *net.DNSError in it naming the DNS server
// dialled last (none: no server), instead of the one Go's resolver named.
func (dd *dnsDialer) serverAsked(err error) error {
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		return err
	}
	cp := *dnsErr
	cp.Server = ""
	if s := dd.last.Load(); s != nil {
		cp.Server = s.String()
	}
	return &cp
}

// dial returns the conn for one exchange of Go's resolver: a hostsConn
// when there are Hosts to answer from, else a conn to the next DNS server.
// network is "udp" or "tcp" (perhaps with a family digit); the address Go
// passes is ignored. The conn is closed when ctx ends, so an abandoned
// lookup frees its socket at once rather than at its read deadline.
func (dd *dnsDialer) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var c net.Conn
	if len(dd.d.Hosts) > 0 {
		c = newHostsConn(ctx, dd, network)
	} else {
		var err error
		if c, err = dd.dialNext(ctx, network); err != nil {
			return nil, err
		}
	}
	context.AfterFunc(ctx, func() { c.Close() })
	return c, nil
}

// newHostsConn returns a hostsConn for network: a stream for the "tcp"
// networks, else a datagram conn.
func newHostsConn(ctx context.Context, dd *dnsDialer, network string) net.Conn {
	if n, _ := netname.Parse(network); n.Transport == netname.TCP {
		return &hostsConn{dd: dd, ctx: ctx, stream: true}
	}
	return hostsPacketConn{&hostsConn{dd: dd, ctx: ctx}}
}

// dialNext connects to the next DNS server in turn, so that the
// resolver's retries reach the others when one fails.
func (dd *dnsDialer) dialNext(ctx context.Context, network string) (net.Conn, error) {
	servers := dd.d.DNSServers
	if len(servers) == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errNoDNSServers}
	}
	server := servers[int(dd.next.Add(1)-1)%len(servers)]
	dd.last.Store(&server)
	return dd.dialServer(ctx, network, server)
}

// dialServer dials one DNS server, over TCP for the "tcp" networks and
// over UDP otherwise.
func (dd *dnsDialer) dialServer(ctx context.Context, network string, server netip.AddrPort) (net.Conn, error) {
	if n, _ := netname.Parse(network); n.Transport == netname.TCP {
		c, err := netconn.DialTCP(ctx, dd.d.Channel, "tcp", netip.AddrPort{}, server)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	c, err := netconn.DialUDP(ctx, dd.d.Channel, "udp", netip.AddrPort{}, server)
	if err != nil {
		return nil, err
	}
	return c, nil
}

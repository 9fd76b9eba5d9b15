package dialer

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/netcore-go/netcore/netconn"
)

// Resolver returns Go's own DNS resolver (PreferGo) with its queries
// travelling over the stack: its Dial ignores the name server Go picks
// from the host's /etc/resolv.conf and dials the Dialer's DNSServers over
// netcore instead, UDP first and TCP when an answer is truncated. Go brings
// the rest: A and AAAA, CNAME chains, SRV, TXT, MX, NS and PTR lookups, and
// the search domains, ndots, timeout and attempts of /etc/resolv.conf (and
// /etc/hosts, which Go reads before DNS for host lookups).
//
// Each call returns a new *net.Resolver, cheap to make; the Dialer's Hosts
// are consulted by the Dialer, not by this resolver. The resolver reads
// DNSServers at each query.
func (d *Dialer) Resolver() *net.Resolver {
	dd := &dnsDialer{d: d}
	return &net.Resolver{PreferGo: true, Dial: dd.dial}
}

// dnsDialer dials the DNS servers of one Resolver in turn.
type dnsDialer struct {
	d    *Dialer
	next atomic.Uint32
}

// dial connects to the next DNS server over netcore. network is "udp" or
// "tcp" (Go's resolver may add a family digit); the address Go passes is
// ignored. The conn is closed when ctx ends, so an abandoned lookup frees
// its socket at once rather than at its read deadline.
func (dd *dnsDialer) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	servers := dd.d.DNSServers
	if len(servers) == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errNoDNSServers}
	}
	server := servers[int(dd.next.Add(1)-1)%len(servers)]
	c, err := dd.dialServer(ctx, network, server)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { c.Close() })
	return c, nil
}

// dialServer dials one DNS server, over TCP for the "tcp" networks and
// over UDP otherwise.
func (dd *dnsDialer) dialServer(ctx context.Context, network string, server netip.AddrPort) (net.Conn, error) {
	if kind, _, _ := parseNetwork(network); kind == kindTCP {
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

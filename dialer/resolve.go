package dialer

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/netcore-go/netcore/internal/netname"
)

// resolve turns address into the list of remote addresses to try, in the
// order they are tried: literal IPs as they are, names from Hosts first,
// then from DNS. Only addresses of the network's family (and LocalAddr's)
// remain.
func (d *Dialer) resolve(ctx context.Context, network, address string) ([]netip.AddrPort, error) {
	n, _ := netname.Parse(network)
	kind, family := n.Transport, n.Family
	host, port, err := d.splitHostPort(ctx, kind, network, address)
	if err != nil {
		return nil, err
	}
	if l := d.LocalAddr.Addr(); l.IsValid() && !l.IsUnspecified() {
		if family != 0 && netname.FamilyOf(l) != family {
			return nil, &net.AddrError{Err: errNoSuitableAddress, Addr: d.LocalAddr.String()}
		}
		family = netname.FamilyOf(l)
	}
	ips, err := d.lookupHost(ctx, family, host)
	if err != nil {
		return nil, err
	}
	return withPort(filterFamily(ips, family), port, host)
}

// literal returns address as the one remote address to dial when it is a
// literal IP and a numeric port that fit the network's family (and
// LocalAddr's), as resolve would return it. For anything else (a name, a
// service, an empty or unspecified host, a ping network, a family that
// does not fit) it reports false: resolve gives the answer or the error.
func (d *Dialer) literal(network, address string) (netip.AddrPort, bool) {
	n, _ := netname.Parse(network)
	if n.Transport == netname.Ping {
		return netip.AddrPort{}, false
	}
	host, service, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(service, 10, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.IsUnspecified() {
		return netip.AddrPort{}, false
	}
	ip, family := ip.Unmap(), n.Family
	if l := d.LocalAddr.Addr(); l.IsValid() && !l.IsUnspecified() {
		family = netname.FamilyOf(l)
	}
	if (family != 0 && netname.FamilyOf(ip) != family) || (n.Family != 0 && family != n.Family) {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip, uint16(port)), true
}

// splitHostPort splits address into host and port; ping addresses are a
// host alone. Service names are looked up as net.LookupPort does.
func (d *Dialer) splitHostPort(ctx context.Context, kind netname.Transport, network, address string) (string, uint16, error) {
	if kind == netname.Ping {
		return strings.TrimSuffix(strings.TrimPrefix(address, "["), "]"), 0, nil
	}
	host, service, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, err
	}
	if p, err := strconv.ParseUint(service, 10, 16); err == nil {
		return host, uint16(p), nil
	}
	p, err := d.Resolver().LookupPort(ctx, network, service)
	if err != nil {
		return "", 0, err
	}
	return host, uint16(p), nil
}

// lookupHost returns host's addresses: a literal IP (an empty or
// unspecified host means the stack itself, over loopback), Hosts, or DNS.
func (d *Dialer) lookupHost(ctx context.Context, family int, host string) ([]netip.Addr, error) {
	if host == "" {
		return []netip.Addr{loopback(family)}, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.IsUnspecified() {
			return []netip.Addr{loopback(netname.FamilyOf(ip))}, nil
		}
		return []netip.Addr{ip.Unmap()}, nil
	}
	if ips, ok := d.lookupStatic(host); ok {
		return ips, nil
	}
	r, dd := d.resolver()
	ips, err := r.LookupNetIP(ctx, netname.IPNetwork(family), host)
	if err != nil {
		return nil, dd.serverAsked(err)
	}
	return ips, nil
}

// lookupStatic looks host up in Hosts.
func (d *Dialer) lookupStatic(host string) ([]netip.Addr, bool) {
	if ips, ok := d.Hosts[host]; ok {
		return ips, true
	}
	if len(d.Hosts) == 0 {
		return nil, false
	}
	want := canonicalName(host)
	for name, ips := range d.Hosts {
		if canonicalName(name) == want {
			return ips, true
		}
	}
	return nil, false
}

// canonicalName lower-cases a host name and drops its trailing dot.
func canonicalName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

func loopback(family int) netip.Addr {
	if family == 6 {
		return netip.IPv6Loopback()
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// filterFamily keeps the addresses of family (all for 0), unmapped.
func filterFamily(ips []netip.Addr, family int) []netip.Addr {
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if family == 0 || netname.FamilyOf(ip) == family {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// withPort pairs each address with port; an empty list is an error.
func withPort(ips []netip.Addr, port uint16, host string) ([]netip.AddrPort, error) {
	if len(ips) == 0 {
		return nil, &net.AddrError{Err: errNoSuitableAddress, Addr: host}
	}
	out := make([]netip.AddrPort, len(ips))
	for i, ip := range ips {
		out[i] = netip.AddrPortFrom(ip, port)
	}
	return out, nil
}

// split orders addrs for Happy Eyeballs: IPv6 addresses are the primaries
// and IPv4 the fallbacks when both families are present; otherwise all are
// primaries. Each family keeps the resolver's order.
func (d *Dialer) split(addrs []netip.AddrPort) (primaries, fallbacks []netip.AddrPort) {
	for _, a := range addrs {
		if a.Addr().Is6() {
			primaries = append(primaries, a)
		} else {
			fallbacks = append(fallbacks, a)
		}
	}
	if len(primaries) == 0 {
		return fallbacks, nil
	}
	if d.FallbackDelay < 0 {
		return append(primaries, fallbacks...), nil
	}
	return primaries, fallbacks
}

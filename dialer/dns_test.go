package dialer_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/internal/testnet"
)

// dnsFixture is a pair with a DNS server and a TCP echo server on B, and a
// Dialer on A that uses the DNS server.
type dnsFixture struct {
	p    testnet.Pair
	dns  *dnsServer
	echo netip.AddrPort // port of the echo server, on every address of B
	d    *dialer.Dialer
}

func newDNSFixture(t *testing.T) *dnsFixture {
	t.Helper()
	p := newPair(t)
	f := &dnsFixture{p: p}
	f.echo = echoServer(t, p.B.CommandChannel(), "tcp", ":0")
	f.dns = startDNS(t, p.B.CommandChannel(), testnet.AddrB, map[string]record{
		"svc.test.":    {addrs: []netip.Addr{testnet.AddrB, testnet.Addr6B}},
		"v4only.test.": {addrs: []netip.Addr{testnet.AddrB}},
		"_echo._tcp.svc.test.": {srv: []dnsmessage.SRVResource{{
			Priority: 10, Weight: 5, Port: f.echo.Port(), Target: dnsmessage.MustNewName("svc.test."),
		}}},
		"txt.test.":  {txt: []string{"v=netcore", "hello"}},
		"big.test.":  {addrs: []netip.Addr{testnet.Addr6B}, truncate: true},
		"dual.test.": {addrs: []netip.Addr{silent6, testnet.AddrB}},
	})
	f.d = newDialer(p)
	f.d.DNSServers = []netip.AddrPort{f.dns.addr}
	return f
}

func (f *dnsFixture) port() string { return itoa(f.echo.Port()) }

func TestResolverLookups(t *testing.T) {
	f := newDNSFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := f.d.Resolver()
	t.Run("AandAAAA", func(t *testing.T) {
		ips, err := r.LookupNetIP(ctx, "ip", "svc.test")
		if err != nil {
			t.Fatalf("LookupNetIP: %v", err)
		}
		wantAddrs(t, ips, testnet.AddrB, testnet.Addr6B)
	})
	t.Run("SRV", func(t *testing.T) {
		cname, srvs, err := r.LookupSRV(ctx, "echo", "tcp", "svc.test")
		if err != nil {
			t.Fatalf("LookupSRV: %v", err)
		}
		if cname != "_echo._tcp.svc.test." || len(srvs) != 1 || srvs[0].Target != "svc.test." || srvs[0].Port != f.echo.Port() {
			t.Fatalf("LookupSRV = %q, %+v; want one record for svc.test.:%d", cname, srvs, f.echo.Port())
		}
	})
	t.Run("TXT", func(t *testing.T) {
		txt, err := r.LookupTXT(ctx, "txt.test")
		if err != nil || !slices.Equal(txt, []string{"v=netcore", "hello"}) {
			t.Fatalf("LookupTXT = %q, %v", txt, err)
		}
	})
	t.Run("TruncatedRetriesOverTCP", func(t *testing.T) {
		before := f.dns.tcpCount.Load()
		ips, err := r.LookupNetIP(ctx, "ip6", "big.test")
		if err != nil {
			t.Fatalf("LookupNetIP: %v", err)
		}
		wantAddrs(t, ips, testnet.Addr6B)
		if f.dns.tcpCount.Load() == before {
			t.Errorf("no query came over TCP")
		}
	})
	t.Run("NXDOMAIN", func(t *testing.T) {
		_, err := r.LookupNetIP(ctx, "ip", "nosuch.test")
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			t.Fatalf("err = %v, want a *net.DNSError with IsNotFound", err)
		}
	})
}

func TestDialByName(t *testing.T) {
	f := newDNSFixture(t)
	for _, tc := range []struct {
		name, network, host string
		want                netip.Addr
	}{
		{"IPv6First", "tcp", "svc.test", testnet.Addr6B},
		{"tcp4", "tcp4", "svc.test", testnet.AddrB},
		{"tcp6", "tcp6", "svc.test", testnet.Addr6B},
		{"V4Only", "tcp", "v4only.test", testnet.AddrB},
		{"FQDN", "tcp", "svc.test.", testnet.Addr6B},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.d.Dial(tc.network, net.JoinHostPort(tc.host, f.port()))
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if got := remote(c).Addr(); got != tc.want {
				t.Errorf("dialled %v, want %v", got, tc.want)
			}
			roundTrip(t, c, "by name")
		})
	}
}

func TestDialBySRV(t *testing.T) {
	f := newDNSFixture(t)
	_, srvs, err := f.d.Resolver().LookupSRV(context.Background(), "echo", "tcp", "svc.test")
	if err != nil || len(srvs) == 0 {
		t.Fatalf("LookupSRV = %v, %v", srvs, err)
	}
	c, err := f.d.Dial("tcp", net.JoinHostPort(srvs[0].Target, itoa(srvs[0].Port)))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	roundTrip(t, c, "found by SRV")
}

func TestHostsWinOverDNS(t *testing.T) {
	f := newDNSFixture(t)
	f.d.Hosts = map[string][]netip.Addr{"SVC.test": {testnet.AddrB}}
	before := f.dns.udpCount.Load() + f.dns.tcpCount.Load()
	c, err := f.d.Dial("tcp", net.JoinHostPort("svc.test", f.port()))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if got := remote(c).Addr(); got != testnet.AddrB {
		t.Errorf("dialled %v, want the static %v", got, testnet.AddrB)
	}
	if n := f.dns.udpCount.Load() + f.dns.tcpCount.Load(); n != before {
		t.Errorf("DNS server got %d queries, want none", n-before)
	}
}

func TestDialUnknownName(t *testing.T) {
	f := newDNSFixture(t)
	c, err := f.d.Dial("tcp", "nosuch.test:80")
	op := wantOpError(t, c, err, "tcp")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound || dnsErr.Name != "nosuch.test" {
		t.Fatalf("err = %v (%T), want a not-found *net.DNSError for nosuch.test", err, op.Err)
	}
}

// TestDNSServerFailover checks that the resolver's retries reach the second
// server when the first does not answer (its port is closed).
func TestDNSServerFailover(t *testing.T) {
	f := newDNSFixture(t)
	dead := netip.AddrPortFrom(testnet.AddrB, 1)
	f.d.DNSServers = []netip.AddrPort{dead, f.dns.addr}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ips, err := f.d.Resolver().LookupNetIP(ctx, "ip4", "v4only.test")
	if err != nil {
		t.Fatalf("LookupNetIP: %v", err)
	}
	wantAddrs(t, ips, testnet.AddrB)
}

// TestLookupCancelFreesSockets checks that an abandoned lookup closes its
// DNS sockets when its context ends, though the server never answers.
func TestLookupCancelFreesSockets(t *testing.T) {
	p := newPair(t)
	ch := p.A.CommandChannel()
	base := sockets(t, ch)
	d := newDialer(p)
	d.DNSServers = []netip.AddrPort{netip.AddrPortFrom(silent4, 53)}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", "svc.test:80")
	wantOpError(t, c, err, "tcp")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Errorf("err = %v, want a *net.DNSError", err)
	}
	wantSockets(t, ch, base, 5*time.Second)
}

func wantAddrs(t *testing.T, got []netip.Addr, want ...netip.Addr) {
	t.Helper()
	got = slices.Clone(got)
	for i := range got {
		got[i] = got[i].Unmap()
	}
	slices.SortFunc(got, netip.Addr.Compare)
	want = slices.Clone(want)
	slices.SortFunc(want, netip.Addr.Compare)
	if !slices.Equal(got, want) {
		t.Fatalf("addresses = %v, want %v", got, want)
	}
}

// TestResolverHosts checks that the Resolver answers A and AAAA questions
// for Hosts names itself and sends every other query on to DNS, over UDP
// and, for truncated answers, TCP.
func TestResolverHosts(t *testing.T) {
	f := newDNSFixture(t)
	f.d.Hosts = map[string][]netip.Addr{"svc.test": {testnet.AddrB}, "static.test": {testnet.Addr6B, testnet.AddrB}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := f.d.Resolver()
	queries := func() int64 { return f.dns.udpCount.Load() + f.dns.tcpCount.Load() }
	before := queries()
	for _, tc := range []struct {
		network, host string
		want          []netip.Addr
	}{
		{"ip", "svc.test", []netip.Addr{testnet.AddrB}},
		{"ip", "static.test", []netip.Addr{testnet.AddrB, testnet.Addr6B}},
		{"ip6", "Static.Test.", []netip.Addr{testnet.Addr6B}},
	} {
		ips, err := r.LookupNetIP(ctx, tc.network, tc.host)
		if err != nil {
			t.Fatalf("LookupNetIP(%q, %q): %v", tc.network, tc.host, err)
		}
		wantAddrs(t, ips, tc.want...)
	}
	if n := queries() - before; n != 0 {
		t.Errorf("DNS server got %d queries for Hosts names, want none", n)
	}
	if _, srvs, err := r.LookupSRV(ctx, "echo", "tcp", "svc.test"); err != nil || len(srvs) != 1 {
		t.Errorf("LookupSRV through the hosts conn = %v, %v", srvs, err)
	}
	ips, err := r.LookupNetIP(ctx, "ip6", "big.test")
	if err != nil {
		t.Fatalf("LookupNetIP(big.test) through the hosts conn: %v", err)
	}
	wantAddrs(t, ips, testnet.Addr6B)
}

// TestResolverHostsOnly: with Hosts and no DNS servers the resolver still
// answers Hosts names, and fails others with a *net.DNSError.
func TestResolverHostsOnly(t *testing.T) {
	p := newPair(t)
	d := newDialer(p)
	d.Hosts = map[string][]netip.Addr{"static.test": {testnet.AddrB}}
	ips, err := d.Resolver().LookupNetIP(context.Background(), "ip4", "static.test")
	if err != nil {
		t.Fatalf("LookupNetIP: %v", err)
	}
	wantAddrs(t, ips, testnet.AddrB)
	_, err = d.Resolver().LookupNetIP(context.Background(), "ip4", "other.test")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Fatalf("err = %v, want a *net.DNSError", err)
	}
}

// TestDNSErrorNamesServerAsked checks that a failed lookup's *net.DNSError
// names the DNS server the query went to over the stack, not the host's
// name server from /etc/resolv.conf that Go's resolver would name.
func TestDNSErrorNamesServerAsked(t *testing.T) {
	f := newDNSFixture(t)
	silent := netip.AddrPortFrom(silent4, 53)
	for _, tc := range []struct {
		name    string
		servers []netip.AddrPort
		hosts   map[string][]netip.Addr
		timeout time.Duration
		want    string
	}{
		{"NotFound", []netip.AddrPort{f.dns.addr}, nil, 30 * time.Second, f.dns.addr.String()},
		{"NotFoundWithHosts", []netip.AddrPort{f.dns.addr}, map[string][]netip.Addr{"other.test": {testnet.AddrB}}, 30 * time.Second, f.dns.addr.String()},
		{"Timeout", []netip.AddrPort{silent}, nil, 300 * time.Millisecond, silent.String()},
		{"NoServers", nil, nil, 30 * time.Second, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDialer(f.p)
			d.DNSServers, d.Hosts = tc.servers, tc.hosts
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", "nosuch.test:80")
			wantOpError(t, c, err, "tcp")
			var dnsErr *net.DNSError
			if !errors.As(err, &dnsErr) {
				t.Fatalf("err = %v, want a *net.DNSError", err)
			}
			if dnsErr.Server != tc.want || dnsErr.Name != "nosuch.test" {
				t.Fatalf("DNSError{Name: %q, Server: %q} (%v), want name nosuch.test, server %q", dnsErr.Name, dnsErr.Server, err, tc.want)
			}
		})
	}
}

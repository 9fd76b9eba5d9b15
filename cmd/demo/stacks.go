package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/listener"
)

// The two stacks' addresses: documentation ranges, inside the process only.
var (
	addrA = netip.MustParsePrefix("192.0.2.1/24")
	addrB = netip.MustParsePrefix("192.0.2.2/24")
)

// serverName is what A asks B's DNS responder for.
const serverName = "demo.netcore.test"

// runTwoStacks runs stacks A and B joined by WireGuard or a pipe, serves
// HTTP on B and fetches it from A by name.
func runTwoStacks(ctx context.Context, o options, r *reporter) error {
	cfgA := core.Config{Addrs: []netip.Prefix{addrA}, MTU: 1420}
	cfgB := core.Config{Addrs: []netip.Prefix{addrB}, MTU: 1420}
	closePCAP, err := openPCAP(o, &cfgA)
	if err != nil {
		return err
	}
	defer closePCAP()
	a, err := startStack(ctx, cfgA)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := startStack(ctx, cfgB)
	if err != nil {
		return err
	}
	defer b.Close()
	r.step("stacks up: A %v, B %v (MTU %d)", addrA.Addr(), addrB.Addr(), cfgA.MTU)

	if o.mode == "pipe" {
		if err := core.JoinPipe(a, b, 0); err != nil {
			return err
		}
		r.step("joined by an in-memory pipe")
	} else {
		tunnel, err := joinWireGuard(a, b)
		if err != nil {
			return err
		}
		defer tunnel.Close()
		if err := tunnel.waitHandshake(ctx, 10*time.Second); err != nil {
			return err
		}
		r.step("WireGuard handshake done (127.0.0.1:%d <-> 127.0.0.1:%d)", tunnel.ports[0], tunnel.ports[1])
	}
	return serveAndFetch(ctx, o, r, a, b)
}

// openPCAP creates the -pcap file, if one is asked for, as cfg's PCAP, and
// returns what closes it.
func openPCAP(o options, cfg *core.Config) (func(), error) {
	if o.pcap == "" {
		return func() {}, nil
	}
	f, err := os.Create(o.pcap)
	if err != nil {
		return nil, fmt.Errorf("-pcap: %w", err)
	}
	cfg.PCAP = f
	return func() { f.Close() }, nil
}

// startStack makes a stack and runs it until ctx ends or it is closed.
func startStack(ctx context.Context, cfg core.Config) (*core.Netstack, error) {
	ns, err := core.New(cfg)
	if err != nil {
		return nil, err
	}
	go ns.Run(ctx)
	return ns, nil
}

// serveAndFetch starts DNS and HTTP on B, then resolves, GETs and downloads
// from A.
func serveAndFetch(ctx context.Context, o options, r *reporter, a, b *core.Netstack) error {
	dns, err := serveDNS(b.CommandChannel(), netip.AddrPortFrom(addrB.Addr(), 53), serverName, addrB.Addr())
	if err != nil {
		return err
	}
	defer dns.Close()
	l, err := listener.Listen(b.CommandChannel(), "tcp", ":80")
	if err != nil {
		return err
	}
	ln := &lastConn{Listener: l}
	srv := &http.Server{Handler: newHandler()}
	go srv.Serve(ln)
	defer srv.Close()
	r.step("B serves DNS on %v and HTTP on %v", dns.LocalAddr(), ln.Addr())

	d := &dialer.Dialer{
		Channel:    a.CommandChannel(),
		DNSServers: []netip.AddrPort{netip.AddrPortFrom(addrB.Addr(), 53)},
	}
	addrs, err := d.Resolver().LookupNetIP(ctx, "ip4", serverName)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", serverName, err)
	}
	r.step("name resolved through the stack: %s -> %v", serverName, addrs)

	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer client.CloseIdleConnections()
	base := "http://" + serverName
	if err := getHello(ctx, client, "A", base, r); err != nil {
		return err
	}
	res, err := download(ctx, client, base, o.size, r)
	if err != nil {
		return err
	}
	res.stacks = []stackStats{{"A", a.Stats()}, {"B", b.Stats()}}
	res.server, res.conn = "B", ln.info()
	r.table(res)
	return nil
}

// getHello fetches base's / as who and prints its status and body.
func getHello(ctx context.Context, c *http.Client, who, base string, r *reporter) error {
	body, status, err := get(ctx, c, base+"/")
	if err != nil {
		return fmt.Errorf("%s GET %s/: %w", who, base, err)
	}
	r.step("%s GET %s/ -> %s: %q", who, base, status, body)
	return nil
}

// dialAddr formats a host and port for URLs.
func dialAddr(a netip.Addr, port int) string {
	return net.JoinHostPort(a.String(), fmt.Sprint(port))
}

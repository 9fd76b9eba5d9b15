//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/netns"
	"github.com/netcore-go/netcore/tundev"
)

// -mode proxy's namespace: its addresses on the TUN, every route through
// it, and the gateway address at which it reaches the host's loopback.
var (
	proxyClient  = netip.MustParsePrefix("10.99.0.2/24")
	proxyClient6 = netip.MustParsePrefix("fd00:99::2/64")
	proxyGateway = netip.MustParseAddr("10.99.0.1")
)

// runProxy routes a new network namespace's traffic through a TUN into a
// forwarding netcore stack, whose forwarder (tun2socks) dials every flow
// again with Go's net; clients in the namespace (Go's, then curl and dig
// if installed) fetch from servers on the host's loopback through it.
func runProxy(ctx context.Context, o options, r *reporter) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("-mode proxy makes a network namespace and a TUN and needs root (CAP_NET_ADMIN); try: sudo go run ./cmd/demo -mode proxy")
	}
	httpPort, dnsPort, stopServers, err := hostServers(r)
	if err != nil {
		return err
	}
	defer stopServers()
	nsn, err := netns.New()
	if err != nil {
		return err
	}
	defer nsn.Close()
	ns, err := proxyStack(ctx, nsn, r)
	if err != nil {
		return err
	}
	defer ns.Close()
	fwCtx, stopFw := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- tun2socks(proxyGateway).Serve(fwCtx, ns.CommandChannel()) }()
	defer func() { stopFw(); <-served }()
	base := "http://" + net.JoinHostPort(serverName, strconv.Itoa(int(httpPort)))
	if err := proxyClients(ctx, nsn, o, r, base, dnsPort); err != nil {
		return err
	}
	st := ns.Stats().Forward
	r.step("forwarded %d TCP and %d UDP flows", st.TCPOffered, st.UDPOffered)
	if o.serve {
		r.step("serving until Ctrl-C; from another shell: nsenter --net=%s curl http://%v:%d/", nsPath(nsn), proxyGateway, httpPort)
		<-ctx.Done()
	}
	return nil
}

// hostServers serves HTTP and DNS (serverName answered with the gateway)
// on the host's loopback.
func hostServers(r *reporter) (httpPort, dnsPort uint16, stop func(), err error) {
	hl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, 0, nil, err
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		hl.Close()
		return 0, 0, nil, err
	}
	srv := &http.Server{Handler: newHandler()}
	go srv.Serve(hl)
	d := &dnsResponder{PacketConn: pc, name: serverName + ".", addr: proxyGateway}
	go d.serve()
	httpPort, dnsPort = uint16(hl.Addr().(*net.TCPAddr).Port), uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	r.step("the host serves HTTP on 127.0.0.1:%d and DNS on 127.0.0.1:%d", httpPort, dnsPort)
	return httpPort, dnsPort, func() { srv.Close(); pc.Close() }, nil
}

// proxyStack opens the TUN in the namespace, routes everything there
// through it, and attaches it to a forwarding stack.
func proxyStack(ctx context.Context, nsn *netns.NS, r *reporter) (*core.Netstack, error) {
	var dev *tundev.TUN
	err := nsn.Do(func() (err error) {
		dev, err = tundev.Open(tundev.Config{MTU: 1500, Addrs: []netip.Prefix{proxyClient, proxyClient6},
			Routes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open TUN in the namespace: %w", err)
	}
	ns, err := startStack(ctx, core.Config{MTU: dev.MTU(), Forward: &core.ForwardConfig{AnswerEcho: true}})
	if err != nil {
		dev.Close()
		return nil, err
	}
	if err := ns.AttachDevice(dev); err != nil {
		dev.Close()
		ns.Close()
		return nil, err
	}
	r.step("namespace: %v and %v on TUN %s, every route through it into a forwarding netcore stack", proxyClient, proxyClient6, dev.Name())
	return ns, nil
}

// proxyClients resolves serverName and downloads from it inside the
// namespace with Go's clients, then runs curl and dig there if installed.
func proxyClients(ctx context.Context, nsn *netns.NS, o options, r *reporter, base string, dnsPort uint16) error {
	dns := netip.AddrPortFrom(proxyGateway, dnsPort).String()
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = nsn.Do(func() error { c, err = (&net.Dialer{}).DialContext(ctx, network, addr); return err })
		return c, err
	}
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) { return dial(ctx, network, dns) }}
	ips, err := res.LookupNetIP(ctx, "ip4", serverName)
	if err != nil || len(ips) == 0 || ips[0] != proxyGateway {
		return fmt.Errorf("resolve %s through the forwarder: %v %v", serverName, ips, errors.Join(err))
	}
	r.step("resolved %s = %v in the namespace (DNS to %s, forwarded to the host's loopback)", serverName, ips[0], dns)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, _ := net.SplitHostPort(addr)
		if host == serverName {
			addr = net.JoinHostPort(ips[0].String(), port)
		}
		return dial(ctx, network, addr)
	}}}
	defer hc.CloseIdleConnections()
	if _, err := download(ctx, hc, base, o.size, r); err != nil {
		return err
	}
	runTool(nsn, r, "curl", "-sS", "-o", "/dev/null", "-w", "curl: HTTP %{http_code}, %{size_download} bytes\n", "http://"+net.JoinHostPort(proxyGateway.String(), portOf(base))+"/")
	runTool(nsn, r, "dig", "+short", "-p", strconv.Itoa(int(dnsPort)), "@"+proxyGateway.String(), serverName)
	return nil
}

// runTool runs a command in the namespace, if it is installed: a child
// forked from the namespace's thread starts in its namespace.
func runTool(nsn *netns.NS, r *reporter, name string, args ...string) {
	if _, err := exec.LookPath(name); err != nil {
		r.step("%s not installed: skipped", name)
		return
	}
	var out []byte
	err := nsn.Do(func() (err error) { out, err = exec.Command(name, args...).CombinedOutput(); return err })
	r.step("%s in the namespace: %q %v", name, out, errors.Join(err))
}

func portOf(base string) string {
	_, port, _ := net.SplitHostPort(base[len("http://"):])
	return port
}

// nsPath names the namespace for nsenter: its thread's.
func nsPath(nsn *netns.NS) string {
	var tid int
	nsn.Do(func() error { tid = unix.Gettid(); return nil })
	return fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), tid)
}

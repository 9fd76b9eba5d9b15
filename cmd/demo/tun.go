//go:build linux

package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/tundev"
)

// The TUN link: the host kernel's end and netcore's end, in the
// benchmarking range (RFC 2544), which hosts rarely route elsewhere.
var (
	tunHost  = netip.MustParsePrefix("198.18.88.1/24")
	tunStack = netip.MustParsePrefix("198.18.88.2/24")
)

// runTUN serves HTTP from a netcore stack behind a real TUN device and
// fetches it with the host kernel's TCP/IP.
func runTUN(ctx context.Context, o options, r *reporter) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("-mode tun creates a TUN device and needs root (CAP_NET_ADMIN); try: sudo go run ./cmd/demo -mode tun")
	}
	dev, err := tundev.Open(tundev.Config{Name: "netcore0", MTU: 1500, Addrs: []netip.Prefix{tunHost}})
	if err != nil {
		return fmt.Errorf("open TUN: %w", err)
	}
	cfg := core.Config{Addrs: []netip.Prefix{tunStack}, MTU: dev.MTU()}
	closePCAP, err := openPCAP(o, &cfg)
	if err != nil {
		dev.Close()
		return err
	}
	defer closePCAP()
	ns, err := startStack(ctx, cfg)
	if err != nil {
		dev.Close()
		return err
	}
	defer ns.Close() // closes dev too, which removes the interface
	if err := ns.AttachDevice(dev); err != nil {
		dev.Close()
		return err
	}
	r.step("TUN %s up: host %v, netcore %v (offloads %v)", dev.Name(), tunHost, tunStack.Addr(), dev.Offloads())

	l, err := listener.Listen(ns.CommandChannel(), "tcp", ":80")
	if err != nil {
		return err
	}
	ln := &lastConn{Listener: l}
	srv := &http.Server{Handler: newHandler()}
	go srv.Serve(ln)
	defer srv.Close()
	r.step("netcore serves HTTP on %v", ln.Addr())
	return checkFromHost(ctx, o, r, "http://"+dialAddr(tunStack.Addr(), 80), ns, ln)
}

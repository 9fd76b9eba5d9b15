package tundev

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// checkHostSetup accepts every config: Linux sets up the host side.
func checkHostSetup(Config) error { return nil }

// setupHost brings the link up and adds cfg's addresses and routes, in the
// calling thread's network namespace, through rtnetlink.
func setupHost(name string, cfg Config) error {
	if !cfg.Up && len(cfg.Addrs) == 0 && len(cfg.Routes) == 0 {
		return nil
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link: %w", err)
	}
	for _, p := range cfg.Addrs {
		if err := addAddr(link, p); err != nil {
			return err
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("link up: %w", err)
	}
	for _, p := range cfg.Routes {
		if err := addRoute(link, p); err != nil {
			return err
		}
	}
	return nil
}

// addAddr adds p to link; IPv6 addresses skip duplicate address detection
// so that they are usable at once.
func addAddr(link netlink.Link, p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("add address %v: invalid prefix", p)
	}
	addr := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() && !p.Addr().Is4In6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("add address %v: %w", p, err)
	}
	return nil
}

func addRoute(link netlink.Link, p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("add route %v: invalid prefix", p)
	}
	r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(p.Masked()), Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteAdd(r); err != nil {
		return fmt.Errorf("add route %v: %w", p, err)
	}
	return nil
}

// ipNet converts p (address and prefix length, not masked) to a net.IPNet.
func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr().Unmap()
	bits := a.BitLen()
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

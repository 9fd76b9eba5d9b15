package netname

import (
	"net/netip"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Network
		ok   bool
	}{
		{"tcp", Network{TCP, 0}, true}, {"tcp4", Network{TCP, 4}, true}, {"tcp6", Network{TCP, 6}, true},
		{"udp", Network{UDP, 0}, true}, {"udp4", Network{UDP, 4}, true}, {"udp6", Network{UDP, 6}, true},
		{"ping4", Network{Ping, 4}, true}, {"ping6", Network{Ping, 6}, true},
		{"ping", Network{}, false}, {"ip4", Network{}, false}, {"", Network{}, false}, {"TCP", Network{}, false},
		{"unix", Network{}, false}, {"tcp5", Network{}, false},
	} {
		if got, ok := Parse(tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFits(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	for _, tc := range []struct {
		family int
		a      netip.Addr
		want   bool
	}{
		{0, v4, true}, {0, v6, true}, {0, mapped, true},
		{4, v4, true}, {4, mapped, true}, {4, v6, false},
		{6, v6, true}, {6, v4, false}, {6, mapped, false},
	} {
		if got := (Network{TCP, tc.family}).Fits(tc.a); got != tc.want {
			t.Errorf("family %d Fits(%v) = %v, want %v", tc.family, tc.a, got, tc.want)
		}
	}
}

func TestUnspecifiedAndIPNetwork(t *testing.T) {
	for _, tc := range []struct {
		family int
		unspec netip.Addr
		lookup string
	}{
		{0, netip.IPv6Unspecified(), "ip"}, {4, netip.IPv4Unspecified(), "ip4"}, {6, netip.IPv6Unspecified(), "ip6"},
	} {
		n := Network{UDP, tc.family}
		if got := n.Unspecified(); got != tc.unspec {
			t.Errorf("family %d: Unspecified = %v, want %v", tc.family, got, tc.unspec)
		}
		if got := IPNetwork(tc.family); got != tc.lookup {
			t.Errorf("IPNetwork(%d) = %q, want %q", tc.family, got, tc.lookup)
		}
	}
}

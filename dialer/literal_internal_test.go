package dialer

import (
	"context"
	"net/netip"
	"slices"
	"testing"
)

// The literal fast path answers exactly what resolve answers, and leaves
// to resolve everything it does not answer (names, services, families
// that do not fit, where resolve gives the error).
func TestLiteralMatchesResolve(t *testing.T) {
	v4, v6 := netip.MustParseAddrPort("192.0.2.1:0"), netip.MustParseAddrPort("[2001:db8::1]:0")
	for _, tc := range []struct {
		network, address string
		local            netip.AddrPort
		literal          bool
	}{
		{"tcp", "192.0.2.2:80", netip.AddrPort{}, true},
		{"tcp4", "192.0.2.2:80", netip.AddrPort{}, true},
		{"tcp6", "192.0.2.2:80", netip.AddrPort{}, false},
		{"tcp", "[2001:db8::2]:443", netip.AddrPort{}, true},
		{"tcp4", "[2001:db8::2]:443", netip.AddrPort{}, false},
		{"tcp", "[::ffff:192.0.2.2]:80", netip.AddrPort{}, true},
		{"tcp6", "[::ffff:192.0.2.2]:80", netip.AddrPort{}, false},
		{"tcp", "192.0.2.2:80", v4, true},
		{"tcp", "192.0.2.2:80", v6, false},
		{"tcp6", "[2001:db8::2]:80", v4, false},
		{"udp", "192.0.2.2:53", netip.AddrPort{}, true},
		{"tcp", "0.0.0.0:80", netip.AddrPort{}, false},
		{"tcp", ":80", netip.AddrPort{}, false},
		{"tcp", "192.0.2.2:http", netip.AddrPort{}, false},
		{"tcp", "192.0.2.2:99999", netip.AddrPort{}, false},
		{"tcp", "192.0.2.2", netip.AddrPort{}, false},
		{"tcp", "localhost:80", netip.AddrPort{}, false},
		{"ping4", "192.0.2.2", netip.AddrPort{}, false},
	} {
		d := &Dialer{LocalAddr: tc.local, Hosts: map[string][]netip.Addr{"localhost": {netip.MustParseAddr("127.0.0.1")}}}
		ap, ok := d.literal(tc.network, tc.address)
		if ok != tc.literal {
			t.Errorf("%s %s from %v: literal %v, want %v", tc.network, tc.address, tc.local, ok, tc.literal)
			continue
		}
		if !ok {
			continue
		}
		addrs, err := d.resolve(context.Background(), tc.network, tc.address)
		if err != nil || !slices.Equal(addrs, []netip.AddrPort{ap}) {
			t.Errorf("%s %s from %v: literal %v, resolve %v, %v", tc.network, tc.address, tc.local, ap, addrs, err)
		}
	}
}

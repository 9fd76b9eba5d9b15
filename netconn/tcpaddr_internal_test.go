package netconn

import (
	"net"
	"net/netip"
	"reflect"
	"testing"
)

// tcpAddrIn gives what net.TCPAddrFromAddrPort gives, with the IP's bytes
// in the conn's own block.
func TestTCPAddrIn(t *testing.T) {
	for _, s := range []string{"192.0.2.1:80", "[2001:db8::1]:443", "[fe80::1%eth0]:22", "[::ffff:192.0.2.1]:8080", "0.0.0.0:0"} {
		ap := netip.MustParseAddrPort(s)
		var buf [16]byte
		got, want := tcpAddrIn(&buf, ap), *net.TCPAddrFromAddrPort(ap)
		if !reflect.DeepEqual(got, want) || got.String() != want.String() {
			t.Errorf("%s: got %#v, want %#v", s, got, want)
		}
	}
	var buf [16]byte
	if got := tcpAddrIn(&buf, netip.AddrPort{}); got.IP != nil || got.Port != 0 {
		t.Errorf("zero AddrPort: got %#v, want no IP", got)
	}
}

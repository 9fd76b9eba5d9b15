package allocsite_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/netcore-go/netcore/internal/allocsite"
	"github.com/netcore-go/netcore/internal/testnet"
)

var sink []*[64]byte

//go:noinline
func allocate(n int) {
	for range n {
		sink = append(sink[:0], new([64]byte))
	}
}

var addrSink *net.UDPAddr

// An allocation is counted for the innermost frame outside the runtime
// and the standard library: this package's test (netcore) for its own new
// and for a net.UDPAddr the standard library makes for it.
func TestPerOp(t *testing.T) {
	if testnet.RaceEnabled {
		t.Skip("the race detector allocates")
	}
	ap := netip.MustParseAddrPort("192.0.2.1:53")
	owners, sites := allocsite.PerOp(1000, func() {
		allocate(2)
		addrSink = net.UDPAddrFromAddrPort(ap) // a UDPAddr and its IP
	})
	if n := sites["github.com/netcore-go/netcore/internal/allocsite_test.allocate"]; n < 1.9 || n > 2.1 {
		t.Errorf("allocate's allocations per op = %v, want 2 (by site: %v)", n, sites)
	}
	// The UDPAddr counts once; its 4-byte IP goes to the runtime's tiny
	// allocator, which the profile counts per 16-byte block: a quarter.
	if n := sites["github.com/netcore-go/netcore/internal/allocsite_test.TestPerOp.func1"]; n < 1.1 || n > 2.1 {
		t.Errorf("the UDPAddr's allocations per op = %v, want 1.25 (by site: %v)", n, sites)
	}
	if got := owners["netcore"]; got < 3.1 || got > 4.1 || owners["std"] > 0.05 {
		t.Errorf("allocations per op by owner = %v, want netcore 3.25 and next to no std", owners)
	}
}

package tundev_test

import (
	"net/netip"
	"testing"
)

// TestTUNSuperSegmentsWhole sends bulk data from a kernel client through a
// TUN with offloads into the stack, both ways, and checks that it arrives
// intact (SHA-256) and that the kernel's TSO super-segments reached the
// stack whole (counted), not cut into wire packets and coalesced again.
func TestTUNSuperSegmentsWhole(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newTUNEnv(t, true)
			if !e.tun.Offloads() {
				t.Skip("the kernel opened the TUN without IFF_VNET_HDR: no TSO to read whole")
			}
			kc, sc := e.kernelToStack(t, netip.AddrPortFrom(fam.stack, 9100))
			bothWays(t, kc, sc, 16<<20)
			st := e.tun.Stats()
			if st.WholeSuperSegments == 0 {
				t.Fatalf("no super-segment reached the stack whole: %+v", st)
			}
			if st.ReadErrors != 0 {
				t.Errorf("read errors: %+v", st)
			}
			t.Logf("%+v", st)
		})
	}
}

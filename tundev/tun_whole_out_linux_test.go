package tundev_test

import (
	"fmt"
	"net/netip"
	"testing"
)

// TestTUNSuperSegmentsOut sends bulk data from the stack through a TUN to
// a kernel socket, both ways, and checks that it arrives intact (SHA-256)
// and that, with offloads, the stack's TCP super-segments went to the
// kernel whole (TUNStats.WholeWrites), not cut into wire-sized segments
// and coalesced again, and from the stack's own buffers, without a copy
// (TUNStats.VectoredWrites); without offloads none did.
func TestTUNSuperSegmentsOut(t *testing.T) {
	for _, offloads := range []bool{true, false} {
		for _, fam := range families {
			t.Run(fmt.Sprintf("offloads=%v/%s", offloads, fam.name), func(t *testing.T) {
				e := newTUNEnv(t, offloads)
				if offloads && !e.tun.Offloads() {
					t.Skip("the kernel opened the TUN without IFF_VNET_HDR: no GSO to write whole")
				}
				kc, sc := e.kernelToStack(t, netip.AddrPortFrom(fam.stack, 9200))
				bothWays(t, kc, sc, 16<<20)
				st := e.tun.Stats()
				if offloads && (st.WholeWrites == 0 || st.VectoredWrites == 0) {
					t.Fatalf("no super-segment went to the kernel whole, or none from the stack's buffers: %+v", st)
				}
				if st.VectoredWrites > st.WholeWrites {
					t.Fatalf("VectoredWrites %d > WholeWrites %d: each is one of them", st.VectoredWrites, st.WholeWrites)
				}
				if !offloads && (st.WholeWrites != 0 || st.VectoredWrites != 0) {
					t.Fatalf("WholeWrites = %d, VectoredWrites = %d without offloads, want 0", st.WholeWrites, st.VectoredWrites)
				}
				if st.WriteErrors != 0 {
					t.Errorf("write errors: %+v", st)
				}
				t.Logf("%+v", st)
			})
		}
	}
}

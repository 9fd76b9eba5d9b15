package impair_test

import (
	"context"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
)

// TestLossRepairShortPath loses one data segment in the middle of a
// transfer on a path with no added delay (a round trip well under a
// millisecond): LossRepair repairs it there too, and gVisor's sender never
// enters SACK recovery for it (no fast retransmission, so no window cut).
// (When the link acted only on round trips of 2 ms or more, it left this
// loss to gVisor.)
func TestLossRepairShortPath(t *testing.T) {
	leakCheck(t)
	p := newImpairedPairConfig(t, false, core.Config{LossRepair: true},
		impair.Config{Drop: dropSegmentOnce(40)}, impair.Config{})
	c, _, got := p.connect(t, context.Background())
	sendChecked(t, c, got, 1*MiB, 6)
	info, err := c.Info()
	if err != nil {
		t.Fatal(err)
	}
	if d := p.ab.Stats().Dropped; d != 1 {
		t.Fatalf("dropped %d data segments; want 1", d)
	}
	st := p.a.Stats()
	t.Logf("repairs %d, ACKs hidden %d, passed %d; gVisor: retransmits %d (fast %d), ssthresh %d", st.LossRepairs, st.LossRepairACKsHidden, st.LossRepairPassed, info.SegmentsRetransmitted, info.FastRetransmits, info.SendSsthresh)
	if st.LossRepairs == 0 || st.LossRepairACKsHidden == 0 {
		t.Fatalf("LossRepairs %d, LossRepairACKsHidden %d; want both above 0", st.LossRepairs, st.LossRepairACKsHidden)
	}
	if info.FastRetransmits != 0 {
		t.Fatalf("gVisor fast-retransmitted %d segments: it saw the loss", info.FastRetransmits)
	}
}

// TestLossRepairShortPathTransfer moves TCP with LossRepair through 5%
// random loss both ways with no added delay, IPv4 and IPv6: every byte
// arrives (SHA-256), and the link, not gVisor, repaired the losses.
func TestLossRepairShortPathTransfer(t *testing.T) {
	bothIPVersions(t, func(t *testing.T, v6 bool) {
		leakCheck(t)
		cfg := impair.Config{Loss: 0.05, Rate: 200e6}
		ab, ba := seeded(cfg, 5, 6)
		p := newImpairedPairConfig(t, v6, core.Config{LossRepair: true}, ab, ba)
		p.transfer(t, sized(8*MiB))
		st := p.a.Stats()
		t.Logf("repairs %d, ACKs hidden %d, passed %d; gVisor retransmits %d (fast %d)", st.LossRepairs, st.LossRepairACKsHidden, st.LossRepairPassed, st.TCPRetransmits, st.TCPFastRetransmits)
		if st.LossRepairs == 0 || st.LossRepairACKsHidden == 0 {
			t.Fatalf("LossRepairs %d, LossRepairACKsHidden %d; want both above 0", st.LossRepairs, st.LossRepairACKsHidden)
		}
		checkImpaired(t, "a→b", cfg, p.ab.Stats())
	})
}

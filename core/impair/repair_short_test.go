package impair_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
	"github.com/netcore-go/netcore/internal/proctime"
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
		t.Logf("repairs %d, ACKs hidden %d, passed %d; gVisor retransmits %d (fast %d); packets a→b %d, b→a %d", st.LossRepairs, st.LossRepairACKsHidden, st.LossRepairPassed, st.TCPRetransmits, st.TCPFastRetransmits, p.ab.Stats().Sent, p.ba.Stats().Sent)
		if st.LossRepairs == 0 || st.LossRepairACKsHidden == 0 {
			t.Fatalf("LossRepairs %d, LossRepairACKsHidden %d; want both above 0", st.LossRepairs, st.LossRepairACKsHidden)
		}
		checkImpaired(t, "a→b", cfg, p.ab.Stats())
	})
}

// BenchmarkLossRepairShortPath moves one TCP stream between two netcore
// stacks joined by Join with the same random loss both ways and no added
// delay (seeds fixed), with the default Config and with LossRepair, and
// reports the goodput and the process's CPU time per MB moved (both
// stacks and the links). With no rate limit the stream is bound by the
// CPU, so cpu-ms/MB is what a loss costs each mode on a short path.
func BenchmarkLossRepairShortPath(b *testing.B) {
	for _, loss := range []float64{0, 0.01, 0.03, 0.05, 0.10} {
		for _, m := range []struct {
			name string
			cfg  core.Config
		}{{"default", core.Config{}}, {"repair", core.Config{LossRepair: true}}} {
			b.Run(fmt.Sprintf("loss=%g%%/%s", loss*100, m.name), func(b *testing.B) {
				p := newImpairedPairConfig(b, false, m.cfg, impair.Config{Seed: 1, Loss: loss}, impair.Config{Seed: 2, Loss: loss})
				cpu := proctime.CPU()
				benchStream(b, p)
				if mb := float64(b.N) * 256 / 1024; cpu != 0 && mb > 0 {
					b.ReportMetric(float64((proctime.CPU()-cpu).Milliseconds())/mb, "cpu-ms/MB")
				}
			})
		}
	}
}

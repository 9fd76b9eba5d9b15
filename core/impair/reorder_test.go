package impair_test

import (
	"fmt"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
)

// TestJoinReorderHold: with 5% of packets held back 1 ms (no loss) the
// receiving stack's link puts the segments back in order, so the sender
// retransmits next to nothing (gVisor's counters), where without the hold
// (Config.ReorderHold negative) it retransmits hundreds; the bytes arrive
// intact (SHA-256). IPv4 and IPv6.
func TestJoinReorderHold(t *testing.T) {
	for _, cell := range []struct {
		name string
		cfg  impair.Config
	}{{"loss3", impair.Config{Seed: 11, Loss: 0.03}}, {"both", impair.Config{Seed: 11, Loss: 0.01, Reorder: 0.05}}} {
		for _, off := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/off=%v", cell.name, off), func(t *testing.T) {
				cfg := core.Config{}
				if off {
					cfg.ReorderHold = -1
				}
				p := newImpairedPairConfig(t, false, cfg, cell.cfg, cell.cfg)
				p.transfer(t, sized(8*MiB))
				a, b := p.a.Stats(), p.b.Stats()
				t.Logf("reordered %d; sender retransmits %d (fast %d, RTO %d), DSACKed %d; receiver held %d filled %d expired %d",
					p.ab.Stats().Reordered, a.TCPRetransmits, a.TCPFastRetransmits, a.TCPRTOExpirations, a.TCPDSACKedSegments,
					b.ReorderHeld, b.ReorderFilled, b.ReorderExpired)
			})
		}
	}
	for _, v6 := range []bool{false, true} {
		for _, off := range []bool{false, true} {
			t.Run(fmt.Sprintf("v6=%v/off=%v", v6, off), func(t *testing.T) {
				cfg := core.Config{}
				if off {
					cfg.ReorderHold = -1
				}
				p := newImpairedPairConfig(t, v6, cfg, impair.Config{Seed: 11, Reorder: 0.05}, impair.Config{})
				p.transfer(t, sized(8*MiB))
				a, b := p.a.Stats(), p.b.Stats()
				t.Logf("reordered %d; sender retransmits %d (fast %d, RTO %d), DSACKed %d; receiver held %d filled %d expired %d",
					p.ab.Stats().Reordered, a.TCPRetransmits, a.TCPFastRetransmits, a.TCPRTOExpirations, a.TCPDSACKedSegments,
					b.ReorderHeld, b.ReorderFilled, b.ReorderExpired)
			})
		}
	}
}

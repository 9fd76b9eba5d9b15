package impair_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
)

// dropSegmentTwice returns a Config.Drop that drops the first two
// transmissions of the nth data segment (counted from 1 by distinct
// sequence numbers) of an IPv4 path: the original and its fast
// retransmission.
func dropSegmentTwice(nth int) func([]byte) bool {
	var seqs []uint32        // distinct data sequence numbers seen, in order
	sent := map[uint32]int{} // transmissions of each; under the link's lock
	return func(pkt []byte) bool {
		f, ok := tcpFlags(pkt)
		if !ok || f&flagSYN != 0 || pkt[0]>>4 != 4 {
			return false
		}
		ihl := int(pkt[0]&0xf) * 4
		tcp := pkt[ihl:]
		if len(tcp) <= int(tcp[12]>>4)*4 { // no payload
			return false
		}
		seq := binary.BigEndian.Uint32(tcp[4:])
		if sent[seq] == 0 {
			seqs = append(seqs, seq)
		}
		sent[seq]++
		return len(seqs) >= nth && seq == seqs[nth-1] && sent[seq] <= 2
	}
}

// TestJoinRecoveryProbe loses one data segment of a short write and then
// its fast retransmission, with nothing left to send after it: gVisor arms
// no tail-loss probe in recovery, so only its retransmission timer (200 ms,
// which also drops its window to one segment) would send the segment
// again. The sending stack's link probes instead: the segment goes a third
// time, no timeout fires, and the bytes arrive intact. With
// DisableRecoveryProbes the same losses cost a timeout.
func TestJoinRecoveryProbe(t *testing.T) {
	for _, tc := range []struct {
		name    string
		disable bool
	}{{"probes", false}, {"disabled", true}} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			p := newImpairedPairConfig(t, false, core.Config{DisableRecoveryProbes: tc.disable},
				impair.Config{Drop: dropSegmentTwice(4)}, impair.Config{})
			c, _, got := p.connect(t, context.Background())
			sendChecked(t, c, got, 8*1400, 4) // 8 segments: within the initial window
			st := p.a.Stats()
			if inf, err := c.Info(); err == nil {
				t.Logf("info %+v stats rtx %d fast %d", inf, st.TCPRetransmits, st.TCPFastRetransmits)
			}
			if d := p.ab.Stats().Dropped; d != 2 {
				t.Fatalf("dropped %d data segments; want 2 (the original and its retransmission)", d)
			}
			switch {
			case tc.disable && (st.TCPRTOExpirations == 0 || st.RecoveryProbes != 0):
				t.Fatalf("without probes: %d timeouts, %d probes; want at least 1 and 0", st.TCPRTOExpirations, st.RecoveryProbes)
			case !tc.disable && (st.TCPRTOExpirations != 0 || st.RecoveryProbes == 0):
				t.Fatalf("with probes: %d timeouts, %d probes; want 0 and at least 1", st.TCPRTOExpirations, st.RecoveryProbes)
			}
		})
	}
}

// TestJoinSACKHold moves TCP through reordering (5% of packets held back
// 1 ms, both ways, a fixed seed) between stacks that hold back
// gap-reporting ACKs (Config.SACKHold): the bytes arrive intact (SHA-256)
// and ACKs were held.
func TestJoinSACKHold(t *testing.T) {
	leakCheck(t)
	cfg := impair.Config{Seed: 7, Reorder: 0.05}
	p := newImpairedPairConfig(t, false, core.Config{SACKHold: 2 * time.Millisecond}, cfg, cfg)
	p.transfer(t, sized(2*MiB))
	if n := p.b.Stats().ACKsHeld; n == 0 {
		t.Fatal("ACKsHeld 0: no gap-reporting ACK was held")
	}
}

// dropTail returns a Config.Drop that drops, of an IPv4 or IPv6 path's
// data segments (counted from 1 by distinct sequence numbers), the first
// transmission of the nth and the first two of the (n+1)th: the last two
// segments of a write of n+1, and the tail-loss probe gVisor sends of the
// last.
func dropTail(n int) func([]byte) bool {
	var c segmentCounter // under the link's lock
	return func(pkt []byte) bool {
		i, times, ok := c.count(pkt)
		switch {
		case !ok:
			return false
		case i == n:
			return times == 1
		case i == n+1:
			return times <= 2
		}
		return false
	}
}

// TestJoinStallProbe loses the last two segments of a write and gVisor's
// tail-loss probe of the last: nothing is SACKed, so neither gVisor nor
// the link is in recovery, and gVisor waits for its retransmission
// timeout. The sending stack's link sends a stall probe first (two
// segments outstanding, no progress for four of its RTTs, at least
// 20 ms), and the bytes arrive intact. IPv4 and IPv6.
func TestJoinStallProbe(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
			leakCheck(t)
			p := newImpairedPairConfig(t, v6, core.Config{}, impair.Config{Drop: dropTail(7)}, impair.Config{})
			c, _, got := p.connect(t, context.Background())
			sendChecked(t, c, got, 8*1400, 5) // 8 segments: within the initial window
			st := p.a.Stats()
			t.Logf("stall probes %d, probes %d, timeouts %d", st.StallProbes, st.RecoveryProbes, st.TCPRTOExpirations)
			if d := p.ab.Stats().Dropped; d != 3 {
				t.Fatalf("dropped %d data segments; want 3", d)
			}
			if st.StallProbes == 0 {
				t.Fatal("StallProbes 0: the link sent no stall probe")
			}
		})
	}
}

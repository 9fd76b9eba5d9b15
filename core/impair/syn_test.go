package impair_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
)

// TestJoinSYNRetry loses the first SYN and the first SYN-ACK. The
// connecting stack's link sends copies of its SYN early (SYNRetry, its
// default 250 ms), the listening stack's link answers the resent SYN with a copy of
// its SYN-ACK, and the handshake is done before gVisor's own 1 s timer
// sends the SYN again (the connecting stack sent one SYN itself); the
// connection then runs with the path's RTT and RTO, and the bytes arrive
// intact. With SYNRetry negative, no copies: gVisor's timers redo the
// handshake. IPv4 and IPv6.
func TestJoinSYNRetry(t *testing.T) {
	leakCheck(t)
	for _, v6 := range []bool{false, true} {
		for _, off := range []bool{false, true} {
			name := map[bool]string{false: "v4", true: "v6"}[v6] + map[bool]string{false: "", true: "/off"}[off]
			t.Run(name, func(t *testing.T) {
				var syns atomic.Int64
				dropSYN := dropFirst(flagSYN)
				ab := impair.Config{Drop: func(pkt []byte) bool {
					if f, ok := tcpFlags(pkt); ok && f == flagSYN {
						syns.Add(1)
					}
					return dropSYN(pkt)
				}}
				cfg := core.Config{}
				if off {
					cfg.SYNRetry = -1
				}
				p := newImpairedPairConfig(t, v6, cfg, ab, impair.Config{Drop: dropFirst(flagSYN | flagACK)})
				c, _, got := p.connect(t, context.Background())
				sendChecked(t, c, got, 256*KiB, 5)
				info, err := c.Info()
				if err != nil {
					t.Fatal(err)
				}
				a, b := p.a.Stats(), p.b.Stats()
				own := syns.Load() - int64(a.SYNsResent)
				t.Logf("SYNs %d (copies %d), SYN-ACK copies %d; RTT %v, RTO %v", syns.Load(), a.SYNsResent, b.SYNACKsReplayed, info.RTT, info.RTO)
				if p.ab.Stats().Dropped != 1 || p.ba.Stats().Dropped != 1 {
					t.Fatalf("dropped a→b %d, b→a %d; want 1 and 1", p.ab.Stats().Dropped, p.ba.Stats().Dropped)
				}
				if off {
					if a.SYNsResent != 0 || b.SYNACKsReplayed != 0 || own < 2 {
						t.Fatalf("SYNRetry off: %d SYN copies, %d SYN-ACK copies, %d SYNs of the stack; want 0, 0 and at least 2", a.SYNsResent, b.SYNACKsReplayed, own)
					}
					return
				}
				if a.SYNsResent < 2 || b.SYNACKsReplayed < 1 || own != 1 {
					t.Fatalf("%d SYN copies, %d SYN-ACK copies, %d SYNs of the stack; want at least 2, at least 1, and 1 (done before gVisor's timer)", a.SYNsResent, b.SYNACKsReplayed, own)
				}
				// An echo of the first copy would sample 250 ms or more.
				if info.RTT >= 200*time.Millisecond || info.RTO >= time.Second {
					t.Fatalf("after the early retries: RTT %v, RTO %v; want the path's (under 200 ms, RTO under 1 s)", info.RTT, info.RTO)
				}
			})
		}
	}
}

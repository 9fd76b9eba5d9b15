package impair_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
)

// TestWindowControlTransfer moves TCP with Config.WindowControl through a
// delayed, lossy, rate-limited path, IPv4 and IPv6: every byte arrives
// (SHA-256) and the sender's link lowered the peer's window.
func TestWindowControlTransfer(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("ipv%d", map[bool]int{false: 4, true: 6}[v6]), func(t *testing.T) {
			leakCheck(t)
			cfg := impair.Config{Loss: 0.01, Delay: 2 * time.Millisecond, Rate: 200e6}
			ab, ba := cfg, cfg
			ab.Seed, ba.Seed = 1, 2
			p := newImpairedPairConfig(t, v6, core.Config{WindowControl: true}, ab, ba)
			p.transfer(t, sized(8*MiB))
			st := p.a.Stats()
			if st.WindowsLowered == 0 {
				t.Fatalf("Stats.WindowsLowered = 0: the sender's link never lowered a window (%+v)", st)
			}
			checkImpaired(t, "a→b", cfg, p.ab.Stats())
		})
	}
}

// TestWindowControlQueue moves 1 MiB through a 5 Mbit/s link with 10 ms
// each way and a queue of 60 packets (the path holds about 9): gVisor's
// Reno alone leaves slow start only when the queue overflows, and with
// WindowControl the link holds its data in flight near twice the path, so
// the queue never overflows. (A slow rate, so that the sender outruns it
// under -race on a loaded machine.)
func TestWindowControlQueue(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("window=%v", on), func(t *testing.T) {
			leakCheck(t)
			cfg := impair.Config{Delay: 10 * time.Millisecond, Rate: 5e6, QueueLimit: 60}
			ab, ba := cfg, cfg
			ab.Seed, ba.Seed = 1, 2
			p := newImpairedPairConfig(t, false, core.Config{WindowControl: on}, ab, ba)
			p.transfer(t, 1*MiB)
			drops := p.ab.Stats().QueueDrops
			lowered := p.a.Stats().WindowsLowered
			t.Logf("queue drops %d, windows lowered %d", drops, lowered)
			switch {
			case on && drops != 0:
				t.Fatalf("the queue dropped %d packets with WindowControl; want 0", drops)
			case on && lowered == 0:
				t.Fatal("Stats.WindowsLowered = 0 with WindowControl")
			case !on && drops == 0:
				t.Fatal("the queue dropped nothing without WindowControl: the test does not overfill it")
			case !on && lowered != 0:
				t.Fatalf("Stats.WindowsLowered = %d without WindowControl", lowered)
			}
		})
	}
}

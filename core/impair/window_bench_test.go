package impair_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
	"github.com/netcore-go/netcore/internal/proctime"
)

// BenchmarkWindowControl moves one TCP stream between two netcore stacks
// joined by Join with the same random loss and delay both ways (seeds
// fixed), with
// the default Config, with WindowControl and with LossRepair, and reports
// the goodput and the process's CPU time per MB moved (both stacks and
// the links): what the link's bookkeeping costs.
func BenchmarkWindowControl(b *testing.B) {
	modes := []struct {
		name string
		cfg  core.Config
	}{
		{"default", core.Config{}},
		{"window", core.Config{WindowControl: true}},
		{"repair", core.Config{LossRepair: true}},
	}
	for _, c := range []struct {
		loss  float64
		delay time.Duration
	}{{0, 0}, {0.01, 0}, {0, 2 * time.Millisecond}, {0.01, 2 * time.Millisecond}} {
		for _, m := range modes {
			b.Run(fmt.Sprintf("loss=%g%%/delay=%v/%s", c.loss*100, c.delay, m.name), func(b *testing.B) {
				p := newImpairedPairConfig(b, false, m.cfg, impair.Config{Seed: 1, Loss: c.loss, Delay: c.delay}, impair.Config{Seed: 2, Loss: c.loss, Delay: c.delay})
				cpu := proctime.CPU()
				benchStream(b, p)
				if mb := float64(b.N) * 256 / 1024; cpu != 0 && mb > 0 {
					b.ReportMetric(float64((proctime.CPU()-cpu).Milliseconds())/mb, "cpu-ms/MB")
				}
			})
		}
	}
}

package impair_test

import (
	"fmt"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
	"github.com/netcore-go/netcore/internal/proctime"
)

// BenchmarkWindowControl moves one TCP stream between two netcore stacks
// joined by Join with the same random loss both ways (seeds fixed), with
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
	for _, loss := range []float64{0, 0.01} {
		for _, m := range modes {
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

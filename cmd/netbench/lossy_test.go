package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestLossyQuick runs -lossy -quick for real: both paths where the Linux
// one can run (root, /dev/net/tun, network namespaces), else netcore's
// alone, and checks that every transfer passed its SHA-256 check, that
// each goodput cell has a figure in each column, that each seed of the
// deliver cell has an outcome, that the relay moved wire-sized packets,
// and that nothing is left running. It asserts no timing.
func TestLossyQuick(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	o, err := parseFlags([]string{"-lossy", "-quick", "-json", filepath.Join(dir, "lossy.json"), "-write-docs", "-docs", dir})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	rep := readLossyReport(t, o.jsonPath)
	if len(rep.Warnings) > 0 {
		t.Errorf("warnings: %q", rep.Warnings)
	}
	skipped := rep.skipped("linux")
	systems := lossySystems
	if skipped != "" {
		systems = systems[:1]
	}
	checkGoodput(t, rep, systems)
	checkDeliver(t, rep, systems)
	checkLossyDocs(t, dir)
	if !strings.Contains(out.String(), "netcore/linux") {
		t.Errorf("table has no netcore/linux column:\n%s", out.String())
	}
	if skipped != "" {
		if !strings.Contains(out.String(), "linux skipped ("+skipped+")") {
			t.Errorf("output does not say why linux was skipped:\n%s", out.String())
		}
		t.Skipf("linux side: %s (netcore's side ran)", skipped)
	}
}

func readLossyReport(t *testing.T, path string) *LossyReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep LossyReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

// checkGoodput checks that each goodput cell has a verified figure above
// zero on each system.
func checkGoodput(t *testing.T, rep *LossyReport, systems []string) {
	t.Helper()
	if len(rep.Goodput) != 2 {
		t.Errorf("got %d goodput cells, want 2 (loss 0%% and 3%%)", len(rep.Goodput))
	}
	for _, row := range rep.Goodput {
		for _, sys := range systems {
			tr := row.Results[sys]
			switch {
			case tr == nil:
				t.Errorf("%s %s: no result", sys, row.Cell.Name)
			case !tr.ok() || !(tr.Gbps > 0) || tr.Verified <= 0:
				t.Errorf("%s %s: got %+v, want a verified figure above 0", sys, row.Cell.Name, tr)
			}
			checkTransfer(t, sys, row.Cell, tr)
			if tr != nil && tr.Data.Lost > 10 && tr.Retransmits == 0 {
				t.Errorf("%s %s: %d data packets lost, no retransmit counted", sys, row.Cell.Name, tr.Data.Lost)
			}
		}
	}
}

// checkDeliver checks that each seed of the deliver cell has a verified
// outcome on each system: delivered in a time, or not done in the limit.
func checkDeliver(t *testing.T, rep *LossyReport, systems []string) {
	t.Helper()
	d := rep.Deliver
	if d == nil || len(d.Seeds) != 3 {
		t.Fatalf("deliver cell: got %+v, want 3 seeds", d)
	}
	for _, row := range d.Seeds {
		for _, sys := range systems {
			tr := row.Results[sys]
			switch {
			case tr == nil:
				t.Errorf("%s seed %d: no result", sys, row.Seed)
			case tr.Error != "" || !tr.SHA256OK:
				t.Errorf("%s seed %d: got %+v, want verified", sys, row.Seed, tr)
			case tr.NotDone == "" && (tr.Verified != int64(d.Size) || !(tr.Seconds > 0)):
				t.Errorf("%s seed %d: delivered %d bytes in %vs, want %d in a time", sys, row.Seed, tr.Verified, tr.Seconds, d.Size)
			}
			checkTransfer(t, sys, d.Cell, tr)
		}
	}
}

// checkTransfer checks that the links carried the transfer, impaired as
// the cell says, and that the Linux relay's packets were wire-sized.
func checkTransfer(t *testing.T, sys string, c lossyCell, tr *Transfer) {
	t.Helper()
	if tr == nil {
		return
	}
	if tr.Data.Sent == 0 || (tr.Verified > 0 && tr.ACKs.Sent == 0) {
		t.Errorf("%s %s: links carried nothing: %+v / %+v", sys, c.Name, tr.Data, tr.ACKs)
	}
	if (c.Loss > 0) != (tr.Data.Lost+tr.ACKs.Lost > 0) && tr.Data.Sent > 100 {
		t.Errorf("%s %s: lost %d+%d packets at loss %v", sys, c.Name, tr.Data.Lost, tr.ACKs.Lost, c.Loss)
	}
	if sys == "linux" && (tr.MaxPacket <= 0 || tr.MaxPacket > lossyMTU) {
		t.Errorf("%s %s: largest packet relayed %d bytes, want 1..%d", sys, c.Name, tr.MaxPacket, lossyMTU)
	}
}

func checkLossyDocs(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{lossyDocsBegin, "| loss 3% | Gbit/s |", "-quick (smoke-test) figures", " |\n\nSHA-256 verified: ", lossyDocsEnd} {
		if !strings.Contains(string(b), want) {
			t.Errorf("benchmarks.md lacks %q:\n%s", want, b)
		}
	}
}

// TestDeliverQuantiles checks the deliver cell's summary: a seed not done
// counts as slower than any done, and a seed Linux did not finish gives
// no ratio.
func TestDeliverQuantiles(t *testing.T) {
	done := func(s float64) *Transfer { return &Transfer{Seconds: s, SHA256OK: true} }
	notDone := &Transfer{NotDone: "not done in 30s", SHA256OK: true}
	d := &DeliverCell{Seeds: []SeedRow{
		{Seed: 1, Results: map[string]*Transfer{"netcore": done(2), "linux": done(1)}},
		{Seed: 2, Results: map[string]*Transfer{"netcore": done(1), "linux": done(4)}},
		{Seed: 3, Results: map[string]*Transfer{"netcore": notDone, "linux": done(1)}},
		{Seed: 4, Results: map[string]*Transfer{"netcore": done(3), "linux": notDone}},
	}}
	rep := &LossyReport{Systems: []LossySystem{{Name: "netcore"}, {Name: "linux"}}, Deliver: d}
	rep.finish()
	checks := []struct {
		name string
		got  *float64
		want float64 // NaN: null (not done)
	}{
		{"netcore median", d.Median["netcore"], 3},
		{"netcore p90", d.P90["netcore"], nan},
		{"linux median", d.Median["linux"], 4}, // 1, 1, 4, +Inf: the upper median
		{"linux p90", d.P90["linux"], nan},
		{"ratio median", d.RatioMedian, 2}, // ratios 0.25, 2, +Inf (seed 4 has none)
		{"ratio p90", d.RatioP90, nan},     // +Inf
	}
	for _, c := range checks {
		switch {
		case math.IsNaN(c.want) && c.got != nil:
			t.Errorf("%s = %v, want null (not done)", c.name, *c.got)
		case !math.IsNaN(c.want) && c.got == nil:
			t.Errorf("%s = null, want %v", c.name, c.want)
		case !math.IsNaN(c.want) && *c.got != c.want:
			t.Errorf("%s = %v, want %v", c.name, *c.got, c.want)
		}
	}
}

package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// LossyReport is a whole lossy run.
type LossyReport struct {
	Machine  Machine       `json:"machine"`
	Params   LossyParams   `json:"params"`
	Systems  []LossySystem `json:"systems"`
	Goodput  []GoodputRow  `json:"goodput"`
	Deliver  *DeliverCell  `json:"deliver,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
}

// LossyParams is the lossy run's sizing, as reported.
type LossyParams struct {
	RateMbps    float64 `json:"rate_mbps"`
	MTU         int     `json:"mtu"`
	WarmupSec   float64 `json:"warmup_seconds"`
	DurationSec float64 `json:"duration_seconds"`
	LimitSec    float64 `json:"limit_seconds"`
	Seeds       int     `json:"seeds"`
	DeliverSize int     `json:"deliver_bytes"`
	Seed        uint64  `json:"seed"`
	Quick       bool    `json:"quick"`
}

func (o lossyOptions) out() LossyParams {
	return LossyParams{
		RateMbps: float64(o.rate) / 1e6, MTU: lossyMTU, WarmupSec: o.warmup.Seconds(), DurationSec: o.duration.Seconds(),
		LimitSec: o.limit.Seconds(), Seeds: o.seeds, DeliverSize: o.size, Seed: o.seed, Quick: o.quick,
	}
}

// LossySystem is one path of the lossy run, and why it did not run.
type LossySystem struct {
	Name    string `json:"name"`
	About   string `json:"about"`
	Skipped string `json:"skipped,omitempty"`
}

// GoodputRow is one goodput cell on each path that ran.
type GoodputRow struct {
	Cell    lossyCell            `json:"cell"`
	Results map[string]*Transfer `json:"results"`
}

// DeliverCell is the deliver cell: per seed, each path's time.
type DeliverCell struct {
	Cell  lossyCell `json:"cell"`
	Size  int       `json:"bytes"`
	Seeds []SeedRow `json:"seeds"`
	// Median and P90 are each path's quantiles of the time to deliver,
	// in seconds (null: not done within the limit).
	Median map[string]*float64 `json:"median_seconds"`
	P90    map[string]*float64 `json:"p90_seconds"`
	// RatioMedian and RatioP90 are the quantiles of the per-seed ratio
	// netcore/linux (null: netcore not done within the limit).
	RatioMedian *float64 `json:"ratio_median,omitempty"`
	RatioP90    *float64 `json:"ratio_p90,omitempty"`
}

// SeedRow is one seed of the deliver cell.
type SeedRow struct {
	Seed    uint64               `json:"seed"`
	Results map[string]*Transfer `json:"results"`
}

var nan = math.NaN()

// finish computes the deliver cell's quantiles and collects a warning for
// every transfer that failed its SHA-256 check or errored.
func (r *LossyReport) finish() {
	if d := r.Deliver; d != nil {
		d.Median, d.P90 = map[string]*float64{}, map[string]*float64{}
		for _, s := range r.Systems {
			times := sortedCopy(d.times(s.Name))
			if len(times) > 0 {
				d.Median[s.Name], d.P90[s.Name] = finite(percentileF(times, 0.5)), finite(percentileF(times, 0.9))
			}
		}
		if ratios := sortedCopy(d.ratios()); len(ratios) > 0 {
			d.RatioMedian, d.RatioP90 = finite(percentileF(ratios, 0.5)), finite(percentileF(ratios, 0.9))
		}
	}
	r.each(func(where, system string, t *Transfer) {
		switch {
		case t.Error != "":
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s %s: %s", system, where, t.Error))
		case !t.SHA256OK:
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s %s: SHA-256 of the %d bytes received differs from the sent", system, where, t.Verified))
		}
	})
}

// each calls f for every transfer of the report.
func (r *LossyReport) each(f func(where, system string, t *Transfer)) {
	for _, row := range r.Goodput {
		for sys, t := range row.Results {
			f(row.Cell.Name, sys, t)
		}
	}
	if d := r.Deliver; d != nil {
		for _, row := range d.Seeds {
			for sys, t := range row.Results {
				f(fmt.Sprintf("%s seed %d", d.Cell.Name, row.Seed), sys, t)
			}
		}
	}
}

// times are system's times to deliver, +Inf for a seed not done.
func (d *DeliverCell) times(system string) []float64 {
	var ts []float64
	for _, row := range d.Seeds {
		if t := row.Results[system]; t != nil {
			ts = append(ts, seconds(t))
		}
	}
	return ts
}

// ratios are the per-seed ratios netcore/linux where both ran.
func (d *DeliverCell) ratios() []float64 {
	var rs []float64
	for _, row := range d.Seeds {
		n, l := row.Results["netcore"], row.Results["linux"]
		if n == nil || l == nil || !l.ok() {
			continue
		}
		rs = append(rs, seconds(n)/seconds(l))
	}
	return rs
}

func seconds(t *Transfer) float64 {
	if !t.ok() {
		return math.Inf(1)
	}
	return t.Seconds
}

func finite(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}

// lossySystems are the table's columns.
var lossySystems = []string{"netcore", "linux"}

// writeTable prints the report as a text table (markdown when md is set):
// a row per cell, netcore, Linux and the ratio.
func (r *LossyReport) writeTable(w io.Writer, md bool) {
	rows := [][]string{{"cell", "unit", "netcore", "linux", "netcore/linux"}}
	for _, row := range r.Goodput {
		rows = append(rows, r.goodputRow(row))
	}
	rows = append(rows, r.reorderRows()...)
	rows = append(rows, r.deliverRows()...)
	printRows(w, rows, md)
	if md {
		fmt.Fprintln(w) // a line right below a markdown table would be a row of it
	}
	fmt.Fprintln(w, r.verifiedLine())
}

// goodputRow is one goodput cell's row.
func (r *LossyReport) goodputRow(row GoodputRow) []string {
	out := []string{row.Cell.Name, "Gbit/s"}
	for _, sys := range lossySystems {
		out = append(out, r.cellString(sys, row.Results[sys], func(t *Transfer) string { return fmt.Sprintf("%.3f", t.Gbps) }))
	}
	n, l := row.Results["netcore"], row.Results["linux"]
	ratio := "-"
	if n != nil && l != nil && n.ok() && l.ok() && l.Gbps > 0 {
		ratio = fmt.Sprintf("%.2f×", n.Gbps/l.Gbps)
	}
	return append(out, ratio)
}

// cellString is t's figure, or why there is none.
func (r *LossyReport) cellString(sys string, t *Transfer, figure func(*Transfer) string) string {
	switch {
	case t == nil:
		if why := r.skipped(sys); why != "" {
			return "skipped"
		}
		return "-"
	case t.Error != "":
		return "error"
	case !t.SHA256OK:
		return "SHA-256 mismatch"
	case t.NotDone != "":
		return t.NotDone
	}
	return figure(t)
}

func (r *LossyReport) skipped(sys string) string {
	for _, s := range r.Systems {
		if s.Name == sys {
			return s.Skipped
		}
	}
	return ""
}

// reorderRows compare the reorder cell's goodput with the unimpaired
// one's, per path.
func (r *LossyReport) reorderRows() [][]string {
	var base, reo *GoodputRow
	for i := range r.Goodput {
		c := r.Goodput[i].Cell
		switch {
		case c.Loss == 0 && c.DelayMs == 0 && c.Reorder == 0:
			base = &r.Goodput[i]
		case c.Reorder > 0 && c.Loss == 0 && c.DelayMs == 0:
			reo = &r.Goodput[i]
		}
	}
	if base == nil || reo == nil {
		return nil
	}
	row := []string{reo.Cell.Name + " / " + base.Cell.Name, "×"}
	for _, sys := range lossySystems {
		b, x := base.Results[sys], reo.Results[sys]
		v := "-"
		if b != nil && x != nil && b.ok() && x.ok() && b.Gbps > 0 {
			v = fmt.Sprintf("%.2f×", x.Gbps/b.Gbps)
		}
		row = append(row, v)
	}
	return [][]string{append(row, "")}
}

// deliverRows are the deliver cell's quantiles and per-seed ratios.
func (r *LossyReport) deliverRows() [][]string {
	d := r.Deliver
	if d == nil {
		return nil
	}
	head := fmt.Sprintf("%s %s (%d seeds)", d.Cell.Name, sizeString(d.Size), len(d.Seeds))
	notDone := fmt.Sprintf("not done in %gs", r.Params.LimitSec)
	rows := [][]string{
		{head + ", median", "s"}, {head + ", p90", "s"}, {head + ", seeds " + notDone, "seeds"},
	}
	for _, sys := range lossySystems {
		rows[0] = append(rows[0], r.quantileString(sys, d.Median[sys], notDone))
		rows[1] = append(rows[1], r.quantileString(sys, d.P90[sys], notDone))
		rows[2] = append(rows[2], r.notDoneString(sys, d))
	}
	rows[0] = append(rows[0], ratioQuantile(d.RatioMedian, d.ratios(), "median"))
	rows[1] = append(rows[1], ratioQuantile(d.RatioP90, d.ratios(), "p90"))
	rows[2] = append(rows[2], "")
	return rows
}

func (r *LossyReport) quantileString(sys string, v *float64, notDone string) string {
	switch {
	case r.skipped(sys) != "":
		return "skipped"
	case v == nil:
		return notDone
	}
	return fmt.Sprintf("%.3f", *v)
}

func (r *LossyReport) notDoneString(sys string, d *DeliverCell) string {
	if r.skipped(sys) != "" {
		return "skipped"
	}
	n := 0
	for _, t := range d.times(sys) {
		if math.IsInf(t, 1) {
			n++
		}
	}
	return fmt.Sprint(n)
}

// ratioQuantile is a per-seed ratio quantile, labelled as one.
func ratioQuantile(v *float64, ratios []float64, name string) string {
	switch {
	case len(ratios) == 0:
		return "-"
	case v == nil:
		return "netcore not done"
	}
	return fmt.Sprintf("%.2f× (per-seed %s)", *v, name)
}

func sizeString(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// verifiedLine sums up the SHA-256 checks.
func (r *LossyReport) verifiedLine() string {
	var parts []string
	for _, sys := range lossySystems {
		if why := r.skipped(sys); why != "" {
			parts = append(parts, fmt.Sprintf("%s skipped (%s)", sys, why))
			continue
		}
		n, ok, bytes := 0, 0, int64(0)
		r.each(func(_, s string, t *Transfer) {
			if s == sys && t.Error == "" {
				n, bytes = n+1, bytes+t.Verified
				if t.SHA256OK {
					ok++
				}
			}
		})
		parts = append(parts, fmt.Sprintf("%s %d of %d transfers (%.1f MB)", sys, ok, n, float64(bytes)/1e6))
	}
	return "SHA-256 verified: " + strings.Join(parts, "; ")
}

// The lossy run's generated part of docs/benchmarks.md sits between these
// markers; -lossy -write-docs replaces only that part.
const (
	lossyDocsBegin = "<!-- netbench:lossy:begin (generated by go run ./cmd/netbench -lossy -write-docs) -->"
	lossyDocsEnd   = "<!-- netbench:lossy:end -->"
)

// writeLossyDocs writes the lossy section of benchmarks.md in dir.
func writeLossyDocs(rep *LossyReport, dir string) error {
	path := filepath.Join(dir, "benchmarks.md")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(path, spliceBetween(string(old), lossyDocsBegin, lossyDocsEnd, rep.docsSection()), 0o644)
}

// docsSection is the generated markdown: machine, parameters, table.
func (r *LossyReport) docsSection() string {
	var b bytes.Buffer
	m, p := r.Machine, r.Params
	fmt.Fprintf(&b, "\nMeasured %s on %d CPUs (%s), %s, %s, GOMAXPROCS %d.\n",
		m.Date, m.CPUs, m.CPUModel, m.GoVersion, m.OS, m.GOMAXPROCS)
	fmt.Fprintf(&b, "Rate limit %g Mbit/s each way on both paths, MTU %d; goodput: %gs warm-up, %gs measured; limit %gs per transfer.\n",
		p.RateMbps, p.MTU, p.WarmupSec, p.DurationSec, p.LimitSec)
	if p.Quick {
		b.WriteString("These are -quick (smoke-test) figures, not measurements.\n")
	}
	b.WriteString("\n")
	r.writeTable(&b, true)
	b.WriteString("\n")
	for _, s := range r.Systems {
		fmt.Fprintf(&b, "- **%s**: %s\n", s.Name, s.About)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "\nWarning: %s\n", w)
	}
	b.WriteString("\n")
	return b.String()
}

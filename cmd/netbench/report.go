package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// metricDef describes one figure of the report.
type metricDef struct {
	key, label, unit string
	workload         string
	lowerBetter      bool
	format           string
}

var metricDefs = append([]metricDef{
	{"bulk1_gbps", "bulk TCP, 1 stream", "Gbit/s", "bulk1", false, "%.2f"},
	{"bulk8_gbps", "bulk TCP, 8 streams", "Gbit/s", "bulk8", false, "%.2f"},
	{"rr_tps", "1-byte RR", "trans/s", "rr", false, "%.0f"},
	{"rr_p50_us", "RR p50", "µs", "rr", true, "%.1f"},
	{"rr_p99_us", "RR p99", "µs", "rr", true, "%.1f"},
	{"rr_cpu_us", "RR CPU per transaction", "µs", "rr", true, "%.1f"},
	{"conn_per_s", "sequential connections", "conn/s", "conn", false, "%.0f"},
	{"conn_cpu_us", "CPU per connection", "µs", "conn", true, "%.1f"},
	{"udp_pps", "UDP 1200 B delivered", "pps", "udp", false, "%.0f"},
	{"udp_loss", "UDP loss", "fraction", "udp", true, "%.4f"},
	{"idle_bytes_per_pair", "heap per idle TCP pair", "KiB", "idle", true, "%.1f"},
	{"idle_pairs", "idle pairs held", "pairs", "idle", false, "%.0f"},
	{"bulk1_retrans", "bulk1: TCP retransmits", "segments", "bulk1", true, "%.0f"},
	{"bulk8_retrans", "bulk8: TCP retransmits", "segments", "bulk8", true, "%.0f"},
	{"rr_retrans", "rr: TCP retransmits", "segments", "rr", true, "%.0f"},
	{"conn_retrans", "conn: TCP retransmits", "segments", "conn", true, "%.0f"},
}, dgramDefs()...)

// retransKey is the key of workload's retransmit count: the TCP segments
// both sides sent again during the workload, warm-up included, where the
// system can tell (see env.retransmits).
func retransKey(workload string) string { return workload + "_retrans" }

// retransDef returns the definition of workload's retransmit count, or nil
// for a workload that moves no TCP data worth counting.
func retransDef(workload string) *metricDef {
	for i, d := range metricDefs {
		if d.key == retransKey(workload) {
			return &metricDefs[i]
		}
	}
	return nil
}

// noRatio reports the figures a ratio says nothing about: a count of
// pairs, and retransmits (often zero).
func noRatio(key string) bool { return key == "idle_pairs" || strings.HasSuffix(key, "_retrans") }

// Result is one system's figures and what the run cost.
type Result struct {
	System     string             `json:"system"`
	MTU        int                `json:"mtu"`
	About      string             `json:"about"`
	Metrics    map[string]float64 `json:"metrics"`
	Errors     map[string]string  `json:"errors,omitempty"`
	WallSec    float64            `json:"wall_seconds"`
	CPUSec     float64            `json:"cpu_seconds"`
	CoresUsed  float64            `json:"cores_used"`
	GCCycles   uint32             `json:"gc_cycles"`
	GOMAXPROCS int                `json:"gomaxprocs"`
}

// Report is a whole run.
type Report struct {
	Machine  Machine   `json:"machine"`
	Params   ParamsOut `json:"params"`
	Results  []Result  `json:"results"`
	Ratios   []Ratio   `json:"ratios"`
	Warnings []string  `json:"warnings,omitempty"`
}

// ParamsOut is the workload sizing, as reported.
type ParamsOut struct {
	WarmupSec   float64 `json:"warmup_seconds"`
	DurationSec float64 `json:"duration_seconds"`
	IdlePairs   int     `json:"idle_pairs"`
	UDPRate     int     `json:"udp_rate_pps"`
	Quick       bool    `json:"quick"`
}

// Ratio is one system's figure over another's.
type Ratio struct {
	Name   string             `json:"name"`
	Values map[string]float64 `json:"values"`
}

// ratioPairs are the ratios the report shows: numerator, denominator.
var ratioPairs = [][2]string{
	{"netcore", "gonet"},
	{"netcore", "kernel"},
	{"netcore-wg-virtual", "wgnetstack"},
}

func (r *Report) result(name string) *Result {
	for i := range r.Results {
		if r.Results[i].System == name {
			return &r.Results[i]
		}
	}
	return nil
}

// computeRatios fills r.Ratios for every pair whose systems both ran.
func (r *Report) computeRatios() {
	r.Ratios = nil
	for _, p := range ratioPairs {
		a, b := r.result(p[0]), r.result(p[1])
		if a == nil || b == nil {
			continue
		}
		vals := map[string]float64{}
		for _, d := range metricDefs {
			x, okx := a.Metrics[d.key]
			y, oky := b.Metrics[d.key]
			if okx && oky && y != 0 && !noRatio(d.key) {
				vals[d.key] = x / y
			}
		}
		r.Ratios = append(r.Ratios, Ratio{Name: p[0] + "/" + p[1], Values: vals})
	}
}

// value formats one figure of a result, "-" when missing.
func value(res *Result, d metricDef) string {
	v, ok := res.Metrics[d.key]
	if !ok {
		if _, failed := res.Errors[d.workload]; failed {
			return "error"
		}
		return "-"
	}
	if d.key == "idle_bytes_per_pair" {
		v /= 1024
	}
	return fmt.Sprintf(d.format, v)
}

// writeTable prints the report as a text table (markdown when md is set).
func (r *Report) writeTable(w io.Writer, md bool) {
	head := []string{"metric", "unit"}
	for _, res := range r.Results {
		head = append(head, res.System)
	}
	for _, ra := range r.Ratios {
		head = append(head, ra.Name)
	}
	rows := [][]string{head}
	for _, d := range metricDefs {
		if !r.hasMetric(d) {
			continue
		}
		row := []string{d.label, d.unit}
		for i := range r.Results {
			row = append(row, value(&r.Results[i], d))
		}
		for _, ra := range r.Ratios {
			row = append(row, ratioString(ra.Values, d.key))
		}
		rows = append(rows, row)
	}
	rows = append(rows, r.costRows(len(r.Ratios))...)
	printRows(w, rows, md)
}

func (r *Report) hasMetric(d metricDef) bool {
	for _, res := range r.Results {
		if _, ok := res.Metrics[d.key]; ok {
			return true
		}
		if _, ok := res.Errors[d.workload]; ok {
			return true
		}
	}
	return false
}

func ratioString(vals map[string]float64, key string) string {
	if v, ok := vals[key]; ok {
		return fmt.Sprintf("%.2f×", v)
	}
	return "-"
}

// costRows are the per-system CPU, GC and GOMAXPROCS rows.
func (r *Report) costRows(ratios int) [][]string {
	rows := [][]string{{"CPU cores used", "cores"}, {"CPU time", "s"}, {"GC cycles", "count"}, {"GOMAXPROCS", ""}}
	for _, res := range r.Results {
		rows[0] = append(rows[0], fmt.Sprintf("%.2f", res.CoresUsed))
		rows[1] = append(rows[1], fmt.Sprintf("%.1f", res.CPUSec))
		rows[2] = append(rows[2], fmt.Sprint(res.GCCycles))
		rows[3] = append(rows[3], fmt.Sprint(res.GOMAXPROCS))
	}
	for i := range rows {
		for range ratios {
			rows[i] = append(rows[i], "")
		}
	}
	return rows
}

func printRows(w io.Writer, rows [][]string, md bool) {
	if md {
		for i, row := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
			if i == 0 {
				fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(row)))
			}
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t\n", strings.Join(row, "\t"))
	}
	tw.Flush()
}

// writeJSON writes a report (a Report or a LossyReport) to path as JSON.
func writeJSON(path string, r any) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuick runs the -quick mode for two systems in-process and checks
// that the report holds sane numbers (never timings against a bound).
func TestQuick(t *testing.T) {
	o, err := parseFlags([]string{"-quick", "-systems", "kernel,netcore"})
	if err != nil {
		t.Fatal(err)
	}
	o.p.pairs = 50
	dir := t.TempDir()
	o.jsonPath = filepath.Join(dir, "out.json")
	o.writeDocs, o.docsDir = true, dir
	var out bytes.Buffer
	if err := run(o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	rep, err := measureReport(t, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range rep.Results {
		checkResult(t, res)
		// netcore counts its retransmits per workload; the kernel's
		// count is machine-wide, so it has none.
		for _, wl := range []string{"bulk1", "bulk8", "rr", "conn"} {
			if _, ok := res.Metrics[retransKey(wl)]; ok != (res.System == "netcore") {
				t.Errorf("%s: %s present = %v", res.System, retransKey(wl), ok)
			}
		}
	}
	if len(rep.Ratios) != 1 || rep.Ratios[0].Name != "netcore/kernel" {
		t.Errorf("ratios = %+v, want netcore/kernel only", rep.Ratios)
	}
	for _, f := range []string{"out.json", "benchmarks.md", "benchmarks.svg"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", f, err, len(b))
		}
	}
	if !strings.Contains(out.String(), "netcore/kernel") {
		t.Errorf("table has no netcore/kernel column:\n%s", out.String())
	}
}

// measureReport reads back the JSON report run wrote.
func measureReport(t *testing.T, o options) (*Report, error) {
	t.Helper()
	b, err := os.ReadFile(o.jsonPath)
	if err != nil {
		return nil, err
	}
	var rep Report
	return &rep, json.Unmarshal(b, &rep)
}

func checkResult(t *testing.T, res Result) {
	t.Helper()
	if len(res.Errors) > 0 {
		t.Errorf("%s: errors %v", res.System, res.Errors)
	}
	for _, k := range []string{"bulk1_gbps", "bulk8_gbps", "rr_tps", "rr_p50_us", "conn_per_s", "udp_pps", "idle_bytes_per_pair"} {
		if v := res.Metrics[k]; !(v > 0) {
			t.Errorf("%s: %s = %v, want > 0", res.System, k, v)
		}
	}
	if l, ok := res.Metrics["udp_loss"]; !ok || l < 0 || l > 1 {
		t.Errorf("%s: udp_loss = %v (present %v), want in [0,1]", res.System, l, ok)
	}
	if res.Metrics["rr_p99_us"] < res.Metrics["rr_p50_us"] {
		t.Errorf("%s: p99 %v < p50 %v", res.System, res.Metrics["rr_p99_us"], res.Metrics["rr_p50_us"])
	}
	if res.GOMAXPROCS < 1 || res.CPUSec <= 0 || res.WallSec <= 0 {
		t.Errorf("%s: cost fields %+v", res.System, res)
	}
}

func TestSpliceDocs(t *testing.T) {
	doc := string(spliceDocs("", "A\n"))
	doc = strings.Replace(doc, "# Benchmarks", "# Benchmarks\n\nnotes before", 1) + "notes after\n"
	got := string(spliceDocs(doc, "B\n"))
	for _, want := range []string{"notes before", "notes after", "\nB\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("spliced doc lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\nA\n") {
		t.Errorf("old section kept:\n%s", got)
	}
}

func TestPickUnknown(t *testing.T) {
	if _, err := pick(allSystems(), func(s system) string { return s.name }, "kernel,nope"); err == nil {
		t.Error("pick accepted an unknown system")
	}
}

// TestAsIfaceTrueNil checks that a failed gonet-style call gives a nil
// interface, not a nil pointer in one, and that a success passes through.
func TestAsIfaceTrueNil(t *testing.T) {
	failed := errors.New("failed")
	c, err := asIface[net.Conn]((*net.TCPConn)(nil), failed)
	if c != nil || err != failed {
		t.Errorf("on error: %#v, %v; want nil, %v", c, err, failed)
	}
	want := &net.TCPConn{}
	c, err = asIface[net.Conn](want, nil)
	if c != net.Conn(want) || err != nil {
		t.Errorf("on success: %#v, %v; want %p, nil", c, err, want)
	}
}

// Command netbench measures netcore side by side with the kernel's
// loopback, gVisor's gonet and wireguard-go's netstack, in one process run:
// one system at a time, a fresh instance for each workload, with warm-up.
//
// Usage:
//
//	go run ./cmd/netbench [-quick] [-systems kernel,netcore] [-workloads bulk1,rr]
//	                      [-json out.json] [-write-docs] [-cpuprofile cpu.out]
//	go run ./cmd/netbench -lossy [-quick] [-lossy-rate 1000] [-lossy-seeds 20] [-lossy-limit 30s]
//
// Workloads: bulk1 and bulk8 (bulk TCP over 1 and 8 streams, receiver-side
// rate), rr (1-byte request/response), conn (sequential connections), udp
// (1200-byte datagrams at a paced rate), dgram (unpaced datagrams received
// per second: 64 B and 1200 B, 1 and 8 flows, one per call and in batches,
// see dgram.go) and idle (heap per idle TCP pair).
// It prints a table with the ratios netcore/gonet and netcore/kernel.
//
// -lossy runs the lossy benchmark instead (see lossy.go): one TCP stream
// through a seeded impairment (loss, delay, reordering, a rate limit),
// netcore's pair beside Linux's TCP between two network namespaces whose
// TUN relay applies the same impairment, with netcore/Linux ratios. The
// Linux side needs root and is skipped, with the reason, without it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/netcore-go/netcore/internal/proctime"
)

// options are the command's flags.
type options struct {
	quick                bool
	systems, workloads   string
	jsonPath, cpuProfile string
	writeDocs            bool
	docsDir              string
	p                    params
	lossy                bool
	l                    lossyOptions
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("netbench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "tiny sizes and durations: a smoke test (< 30 s)")
	fs.StringVar(&o.systems, "systems", "", "comma-separated systems to run (default all: "+strings.Join(systemNames(), ",")+")")
	fs.StringVar(&o.workloads, "workloads", "", "comma-separated workloads (default all: "+strings.Join(workloadNames(), ",")+")")
	fs.StringVar(&o.jsonPath, "json", "", "write the report as JSON to this file")
	fs.BoolVar(&o.writeDocs, "write-docs", false, "write the figures and chart into docs/benchmarks.md and docs/benchmarks.svg")
	fs.StringVar(&o.docsDir, "docs", "docs", "directory -write-docs writes to")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	fs.DurationVar(&o.p.duration, "duration", 3*time.Second, "measured time per workload")
	fs.DurationVar(&o.p.warmup, "warmup", time.Second, "warm-up time per workload")
	fs.IntVar(&o.p.pairs, "pairs", 10000, "idle TCP connection pairs")
	fs.StringVar(&o.p.heapProfile, "memprofile", "", "write a heap profile taken while the idle workload holds its pairs")
	fs.IntVar(&o.p.udpRate, "udp-rate", 100000, "UDP datagrams per second offered")
	finishLossy := lossyFlags(fs, &o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.quick {
		o.p.warmup, o.p.duration, o.p.pairs, o.p.udpRate = 50*time.Millisecond, 200*time.Millisecond, 200, 20000
	}
	finishLossy()
	return o, nil
}

func systemNames() []string {
	var s []string
	for _, x := range allSystems() {
		s = append(s, x.name)
	}
	return s
}

func workloadNames() []string {
	var s []string
	for _, x := range allWorkloads() {
		s = append(s, x.name)
	}
	return s
}

// pick filters all by a comma-separated list of names (empty: all).
func pick[T any](all []T, name func(T) string, list string) ([]T, error) {
	if list == "" {
		return all, nil
	}
	var out []T
	for _, n := range strings.Split(list, ",") {
		i := slices.IndexFunc(all, func(x T) bool { return name(x) == strings.TrimSpace(n) })
		if i < 0 {
			return nil, fmt.Errorf("unknown name %q", n)
		}
		out = append(out, all[i])
	}
	return out, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "netbench:", err)
		os.Exit(1)
	}
}

// run measures, prints and writes what o asks for.
func run(o options, w io.Writer) error {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.lossy {
		return runLossy(o, w)
	}
	rep, err := measure(o, w)
	if err != nil {
		return err
	}
	return emit(o, w, rep, rep.Warnings, func() error { return writeDocs(rep, o.docsDir) })
}

// runLossy measures the lossy benchmark, prints and writes it.
func runLossy(o options, w io.Writer) error {
	rep, err := measureLossy(o.l, w)
	if err != nil {
		return err
	}
	return emit(o, w, rep, rep.Warnings, func() error { return writeLossyDocs(rep, o.docsDir) })
}

// table is a report netbench prints as a table.
type table interface{ writeTable(w io.Writer, md bool) }

// emit prints rep and its warnings, then writes it as JSON to -json and
// into the docs with -write-docs, if asked.
func emit(o options, w io.Writer, rep table, warnings []string, docs func() error) error {
	fmt.Fprintln(w)
	rep.writeTable(w, false)
	for _, warn := range warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	if o.jsonPath != "" {
		if err := writeJSON(o.jsonPath, rep); err != nil {
			return err
		}
	}
	if o.writeDocs {
		return docs()
	}
	return nil
}

// measure runs every picked workload on every picked system.
func measure(o options, log io.Writer) (*Report, error) {
	systems, err := pick(allSystems(), func(s system) string { return s.name }, o.systems)
	if err != nil {
		return nil, err
	}
	works, err := pick(allWorkloads(), func(w workload) string { return w.name }, o.workloads)
	if err != nil {
		return nil, err
	}
	rep := &Report{Machine: machine(), Params: ParamsOut{
		WarmupSec: o.p.warmup.Seconds(), DurationSec: o.p.duration.Seconds(),
		IdlePairs: o.p.pairs, UDPRate: o.p.udpRate, Quick: o.quick,
	}}
	for _, s := range systems {
		res := runSystem(s, works, o.p, log)
		rep.Results = append(rep.Results, res)
		for wl, e := range res.Errors {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s %s: %s", s.name, wl, e))
		}
	}
	rep.computeRatios()
	return rep, nil
}

// runSystem runs the workloads on fresh instances of s and records what
// they cost in CPU and GC.
func runSystem(s system, works []workload, p params, log io.Writer) Result {
	res := Result{System: s.name, MTU: s.mtu, About: s.about, Metrics: map[string]float64{}, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	runtime.GC()
	c0, g0, t0 := proctime.CPU(), gcCount(), time.Now()
	for _, wl := range works {
		fmt.Fprintf(log, "%-20s %-6s ", s.name, wl.name)
		m, err := runOne(s, wl, p)
		if err != nil {
			if res.Errors == nil {
				res.Errors = map[string]string{}
			}
			res.Errors[wl.name] = err.Error()
			fmt.Fprintf(log, "error: %v\n", err)
			continue
		}
		for k, v := range m {
			res.Metrics[k] = v
		}
		fmt.Fprintln(log, formatMetrics(m))
	}
	res.WallSec = time.Since(t0).Seconds()
	res.CPUSec = (proctime.CPU() - c0).Seconds()
	res.CoresUsed = res.CPUSec / res.WallSec
	res.GCCycles = gcCount() - g0
	return res
}

// runOne runs one workload on a fresh instance of s.
func runOne(s system, wl workload, p params) (metrics, error) {
	e, err := s.start()
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	defer e.close()
	m, err := wl.run(e, p)
	if err == nil && e.retransmits != nil && retransDef(wl.name) != nil {
		m[retransKey(wl.name)] = float64(e.retransmits())
	}
	return m, err
}

func formatMetrics(m metrics) string {
	var parts []string
	for _, d := range metricDefs {
		if v, ok := m[d.key]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.4g", d.key, v))
		}
	}
	return strings.Join(parts, " ")
}

func gcCount() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}

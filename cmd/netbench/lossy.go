package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
)

// The lossy benchmark (-lossy) moves one TCP stream through the same
// impairment on two paths, one after the other for each cell: two netcore
// stacks joined by impair.Join, and the Linux kernel's TCP between two
// network namespaces whose TUN devices a relay in this process joins
// through impair Links. Both paths get the same impair.Config, the same
// seeds and the same rate limit, so that neither is capped by a bottleneck
// of its own, and each netcore figure stands beside Linux's from the same
// run.

// lossyOptions size the lossy benchmark.
type lossyOptions struct {
	quick            bool
	rate             int64         // bits per second, each direction, both paths
	warmup, duration time.Duration // per goodput cell, after the handshake
	limit            time.Duration // bound of each transfer's handshake and delivery
	seeds            int           // seeds of the deliver cell
	size             int           // bytes the deliver cell moves per seed
	seed             uint64        // seed of the goodput cells
	cells            string        // comma-separated cell keys to run (empty: all)
	linuxCC          string        // the Linux path's congestion control ("": the kernel's default)
	window           bool          // the netcore path's stacks on core.Config.WindowControl
	repair           bool          // the netcore path's stacks on core.Config.LossRepair
}

// lossyFlags declares the lossy benchmark's flags on fs; the func it
// returns completes o.l once fs is parsed (and o.p set).
func lossyFlags(fs *flag.FlagSet, o *options) func() {
	fs.BoolVar(&o.lossy, "lossy", false, "run the lossy benchmark instead: one TCP stream, netcore beside Linux through the same impairment")
	rate := fs.Float64("lossy-rate", 500, "lossy: rate limit in Mbit/s, each direction, on both paths")
	fs.IntVar(&o.l.seeds, "lossy-seeds", 20, "lossy: seeds of the 30% loss cell (-quick: 3)")
	fs.DurationVar(&o.l.limit, "lossy-limit", 30*time.Second, "lossy: time limit of each transfer (-quick: 2s)")
	fs.IntVar(&o.l.size, "lossy-size", 1<<20, "lossy: bytes each seed of the 30% loss cell moves (-quick: 16 KiB)")
	fs.StringVar(&o.l.cells, "lossy-cells", "", "lossy: comma-separated cells to run (default all; e.g. loss0,loss3,loss3-5ms,reorder5,deliver30)")
	fs.StringVar(&o.l.linuxCC, "lossy-linux-cc", "", "lossy: congestion control of the Linux path's namespaces, e.g. cubic (default: the kernel's default, named in the report)")
	fs.BoolVar(&o.l.window, "lossy-window", false, "lossy: the netcore path's stacks with core.Config.WindowControl (the link limits data in flight)")
	fs.BoolVar(&o.l.repair, "lossy-repair", false, "lossy: the netcore path's stacks with core.Config.LossRepair (the link repairs random loss and hides it from gVisor; implies -lossy-window)")
	fs.Uint64Var(&o.l.seed, "lossy-seed", 1, "lossy: seed of the goodput cells and first seed of the 30% loss cell")
	return func() {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		o.l.quick, o.l.warmup, o.l.duration, o.l.rate = o.quick, o.p.warmup, o.p.duration, int64(*rate*1e6)
		if !o.quick {
			return
		}
		if !set["lossy-seeds"] {
			o.l.seeds = 3
		}
		if !set["lossy-limit"] {
			o.l.limit = 2 * time.Second
		}
		if !set["lossy-size"] {
			o.l.size = 16 << 10
		}
	}
}

// lossyCell is one impairment the benchmark measures: goodput over a
// window, or (deliver) the time to move a fixed size, once per seed.
type lossyCell struct {
	Key     string  `json:"key"` // for -lossy-cells: loss3, loss3-5ms, reorder5, deliver30
	Name    string  `json:"name"`
	Loss    float64 `json:"loss"`
	DelayMs float64 `json:"delay_ms"`
	Reorder float64 `json:"reorder"`
	deliver bool
}

// config is the impairment of one direction of c, with seed.
func (c lossyCell) config(o lossyOptions, seed uint64) impair.Config {
	return impair.Config{
		Seed:    seed,
		Loss:    c.Loss,
		Reorder: c.Reorder,
		Delay:   time.Duration(c.DelayMs * float64(time.Millisecond)),
		Rate:    o.rate,
	}
}

// deliverLoss is the loss of the deliver cell.
const deliverLoss = 0.30

// lossyCells lists what the benchmark measures, in report order: loss
// alone with no added delay and with 5 ms each way, reordering alone, and
// the deliver cell at 30% loss. Loss and reordering apply to both
// directions (data and ACKs). -quick keeps 0% and 3% and the deliver cell.
func lossyCells(quick bool) []lossyCell {
	losses := []float64{0, 0.01, 0.02, 0.03, 0.05, 0.10}
	delays := []float64{0, 5}
	if quick {
		losses, delays = []float64{0, 0.03}, []float64{0}
	}
	var cells []lossyCell
	for _, d := range delays {
		for _, l := range losses {
			key, name := fmt.Sprintf("loss%g", l*100), fmt.Sprintf("loss %g%%", l*100)
			if d > 0 {
				key, name = key+fmt.Sprintf("-%gms", d), name+fmt.Sprintf(", %g ms each way", d)
			}
			cells = append(cells, lossyCell{Key: key, Name: name, Loss: l, DelayMs: d})
		}
	}
	if !quick {
		cells = append(cells, lossyCell{Key: "reorder5", Name: "reorder 5%", Reorder: 0.05})
	}
	return append(cells, lossyCell{Key: fmt.Sprintf("deliver%g", deliverLoss*100), Name: fmt.Sprintf("loss %g%%: deliver", deliverLoss*100), Loss: deliverLoss, deliver: true})
}

// pickCells filters the cells of a run by o.cells (empty: all).
func pickCells(o lossyOptions) ([]lossyCell, error) {
	all := lossyCells(o.quick)
	if o.cells == "" {
		return all, nil
	}
	if o.quick {
		all = lossyCells(false)
	}
	return pick(all, func(c lossyCell) string { return c.Key }, o.cells)
}

// lossyEnv is one fresh instance of a path: a client side that dials, a
// server side that listens, and the two impaired links between them.
type lossyEnv struct {
	listen func() (net.Listener, error)
	dial   func(ctx context.Context, to netip.AddrPort) (net.Conn, error)
	ab, ba *impair.Link // client to server, server to client
	close  func()       // tears it down and waits for its goroutines
	// maxPacket, if set, is the largest packet the links carried so far.
	maxPacket func() int
	// retransmits are the TCP segments both sides retransmitted so far.
	retransmits func() uint64
}

// lossyPath is one contender of the lossy benchmark.
type lossyPath struct {
	name, about string
	// unavailable says why the path cannot run here ("" if it can).
	unavailable func() string
	start       func(o lossyOptions, ab, ba impair.Config) (*lossyEnv, error)
}

// lossyPaths are the two contenders: netcore first, then Linux.
func lossyPaths() []lossyPath {
	return []lossyPath{
		{"netcore", "two netcore stacks (default Config, MTU 1500) joined by impair.Join", func() string { return "" }, startNetcoreImpaired},
		linuxPath(),
	}
}

// startNetcoreImpaired joins two netcore stacks through impaired links.
func startNetcoreImpaired(o lossyOptions, ab, ba impair.Config) (*lossyEnv, error) {
	a, b, stop, err := netcorePairConfig(core.Config{MTU: lossyMTU, WindowControl: o.window, LossRepair: o.repair})
	if err != nil {
		return nil, err
	}
	abl, bal, err := impair.Join(a, b, ab, ba)
	if err != nil {
		stop()
		return nil, err
	}
	e := netcoreEnv(a, b, stop)
	return &lossyEnv{listen: e.listen, dial: e.dial, ab: abl, ba: bal, close: stop, retransmits: e.retransmits}, nil
}

// lossyMTU is both paths' MTU.
const lossyMTU = 1500

// measureLossy runs every cell on every available path, paths alternating
// within a cell (a fresh instance each time), and logs each figure.
func measureLossy(o lossyOptions, log io.Writer) (*LossyReport, error) {
	cells, err := pickCells(o)
	if err != nil {
		return nil, err
	}
	rep := &LossyReport{Machine: machine(), Params: o.out()}
	paths := lossyPaths()
	var run []lossyPath
	for _, p := range paths {
		sys := LossySystem{Name: p.name, About: p.about, Skipped: p.unavailable()}
		if p.name == "netcore" && o.repair {
			sys.About += ", Config.LossRepair on"
		} else if p.name == "netcore" && o.window {
			sys.About += ", Config.WindowControl on"
		}
		if sys.Skipped == "" && p.name == "linux" {
			settings, err := linuxTCPSettings(o)
			if err != nil {
				return nil, fmt.Errorf("linux path: %w", err)
			}
			sys.About += "; " + settings
		}
		if sys.Skipped == "" {
			run = append(run, p)
		} else {
			fmt.Fprintf(log, "%s: skipped: %s\n", p.name, sys.Skipped)
		}
		rep.Systems = append(rep.Systems, sys)
	}
	for _, c := range cells {
		if c.deliver {
			rep.Deliver = measureDeliverCell(run, c, o, log)
			continue
		}
		rep.Goodput = append(rep.Goodput, measureGoodputCell(run, c, o, log))
	}
	rep.finish()
	return rep, nil
}

// measureGoodputCell measures c's goodput on each path.
func measureGoodputCell(paths []lossyPath, c lossyCell, o lossyOptions, log io.Writer) GoodputRow {
	row := GoodputRow{Cell: c, Results: map[string]*Transfer{}}
	for _, p := range paths {
		t := onPath(p, c, o, o.seed, func(e *lossyEnv) *Transfer { return goodput(e, o, o.seed) })
		row.Results[p.name] = t
		fmt.Fprintf(log, "%-8s %-26s %s\n", p.name, c.Name, t.describe(false))
	}
	return row
}

// measureDeliverCell times c's delivery of o.size bytes on each path, for
// each of o.seeds seeds.
func measureDeliverCell(paths []lossyPath, c lossyCell, o lossyOptions, log io.Writer) *DeliverCell {
	d := &DeliverCell{Cell: c, Size: o.size}
	for i := range o.seeds {
		seed := o.seed + uint64(i)
		row := SeedRow{Seed: seed, Results: map[string]*Transfer{}}
		for _, p := range paths {
			t := onPath(p, c, o, seed, func(e *lossyEnv) *Transfer { return deliver(e, o, seed) })
			row.Results[p.name] = t
			fmt.Fprintf(log, "%-8s %-26s seed %-3d %s\n", p.name, c.Name, seed, t.describe(true))
		}
		d.Seeds = append(d.Seeds, row)
	}
	return d
}

// onPath runs measure on a fresh instance of p impaired as c says, the
// two directions seeded apart, and adds the data direction's link stats.
func onPath(p lossyPath, c lossyCell, o lossyOptions, seed uint64, measure func(*lossyEnv) *Transfer) *Transfer {
	e, err := p.start(o, c.config(o, seed), c.config(o, seed^reverseSeed))
	if err != nil {
		return &Transfer{Error: "start: " + err.Error()}
	}
	t := measure(e)
	t.Retransmits = e.retransmits()
	e.close()
	t.addStats(e.ab.Stats(), e.ba.Stats())
	if e.maxPacket != nil {
		t.MaxPacket = e.maxPacket()
	}
	return t
}

// reverseSeed sets the server-to-client direction's seed apart from the
// client-to-server one's.
const reverseSeed = 0x5eed_0000_0000

// percentileF is the q-quantile of sorted (nearest rank below), NaN when
// empty.
func percentileF(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return nan
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// sortedCopy returns xs sorted ascending (+Inf, a transfer not done, last).
func sortedCopy(xs []float64) []float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s
}

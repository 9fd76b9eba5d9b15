package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// reporter prints the demo's steps, progress and final table.
type reporter struct {
	out      io.Writer
	progress bool // draw a progress bar (out is a terminal)
	start    time.Time
}

// step prints one line for a step as it happens.
func (r *reporter) step(format string, args ...any) {
	if r.start.IsZero() {
		r.start = time.Now()
	}
	fmt.Fprintf(r.out, "[%6.3fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// meter returns a writer that counts bytes and reports progress: a bar on
// a terminal, a line per quarter otherwise.
func (r *reporter) meter(total int64, start time.Time) io.Writer {
	return &progress{r: r, total: total, start: start}
}

// interrupted ends the line a Ctrl-C left open on a terminal (where it
// echoed ^C) and says what stopped.
func (r *reporter) interrupted(what string) {
	if r.progress {
		fmt.Fprintln(r.out)
	}
	r.step("%s", what)
}

// done ends a progress bar's line.
func (r *reporter) done() {
	if r.progress {
		fmt.Fprintln(r.out)
	}
}

type progress struct {
	r       *reporter
	total   int64
	n       int64
	start   time.Time
	last    time.Time
	quarter int64
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.r.progress {
		if now := time.Now(); now.Sub(p.last) > 100*time.Millisecond || p.n == p.total {
			p.last = now
			p.bar()
		}
		return len(b), nil
	}
	if p.total > 0 && p.n*4/p.total > p.quarter {
		p.quarter = p.n * 4 / p.total
		p.r.step("downloading: %3d%% %s (%.2f Gbit/s)", p.quarter*25, formatSize(p.n), gbits(p.n, time.Since(p.start)))
	}
	return len(b), nil
}

func (p *progress) bar() {
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.n) / float64(p.total)
	}
	filled := int(frac * width)
	fmt.Fprintf(p.r.out, "\r  [%s%s] %3.0f%% %s %.2f Gbit/s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		frac*100, formatSize(p.n), gbits(p.n, time.Since(p.start)))
}

// table prints the summary and what its columns count.
func (r *reporter) table(res result) {
	tw := tabwriter.NewWriter(r.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "bytes\tseconds\tGbit/s\t")
	var retransmits uint64
	for _, s := range res.stacks {
		fmt.Fprintf(tw, "packets %s\t", s.name)
		retransmits += s.stats.TCPRetransmits
	}
	fmt.Fprintln(tw, "retransmits\t")
	fmt.Fprintf(tw, "%d\t%.3f\t%.2f\t", res.bytes, res.elapsed.Seconds(), gbits(res.bytes, res.elapsed))
	for _, s := range res.stacks {
		fmt.Fprintf(tw, "%d\t", s.stats.PacketsIn+s.stats.PacketsOut)
	}
	fmt.Fprintf(tw, "%d\t\n", retransmits)
	tw.Flush()
	if res.conn != nil {
		connInfo(r.out, res.server, res.conn)
	}
	fmt.Fprint(r.out, tableLegend)
}

// tableLegend says what the table's packet and retransmit columns count.
const tableLegend = `  packets: what crossed each stack's device, in and out, as the stack saw it.
    TCP leaves a stack in super-segments of up to 64 KiB (as with a NIC's
    TSO); a pipe carries them whole, WireGuard (or a TUN without offloads)
    gets them cut to the MTU, and a stack counts what it receives as it
    arrives.
  retransmits: TCP segments the stacks sent again. An in-memory link loses
    nothing: most are gVisor's tail-loss probes, which resend the last
    segment when its ACK is later than twice the smoothed RTT (tens of
    microseconds here), as it is whenever the receiving goroutine waits for
    a CPU; over WireGuard, the host's loopback UDP may also drop.
`

func gbits(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) * 8 / d.Seconds() / 1e9
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// sizeFlag is a byte count flag with binary units.
type sizeFlag int64

var units = []struct {
	suffix string
	mult   int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}

// Set implements flag.Value.
func (s *sizeFlag) Set(v string) error {
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("bad size %q", v)
	}
	*s = sizeFlag(n * mult)
	return nil
}

// String implements flag.Value.
func (s *sizeFlag) String() string { return formatSize(int64(*s)) }

// formatSize prints n with a binary unit.
func formatSize(n int64) string {
	for _, u := range units[:3] {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.suffix)
		}
	}
	if n >= 1<<20 {
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%dB", n)
}

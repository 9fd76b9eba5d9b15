// Package allocsite counts heap allocations by the module that made them
// (netcore, gVisor, the standard library, …), from the runtime's memory
// profile, so that tests can hold netcore's own code to no allocation per
// operation while gVisor's are reported beside it.
package allocsite

import (
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// Counts is the number of allocations per owner: "netcore", "gvisor",
// "std" (the Go standard library, runtime and testing excluded) or the
// module path of anything else.
type Counts map[string]int64

// Measure runs f with every allocation sampled and returns how many
// allocations each owner made while it ran, on any goroutine. The owner of
// an allocation is the module of the innermost frame outside the runtime
// and the standard library, so an allocation the standard library makes
// for netcore (a net.UDPAddr, a timer) counts as netcore's. bySite counts
// the same by that frame's function. Pointer-free allocations under 16
// bytes share blocks in the runtime's tiny allocator, which the profile
// counts per block, not per allocation. It changes runtime.MemProfileRate
// while f runs: do not call it in parallel tests.
func Measure(f func()) (byOwner, bySite Counts) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	before := snapshot()
	f()
	after := snapshot()
	byOwner, bySite = Counts{}, Counts{}
	for site, n := range after {
		if d := n - before[site]; d > 0 && !strings.HasPrefix(site, self) {
			byOwner[owner(site)] += d
			bySite[site] += d
		}
	}
	return byOwner, bySite
}

// String lists the counts, largest first.
func (c Counts) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return c[keys[i]] > c[keys[j]] })
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(strconv.FormatInt(c[k], 10))
	}
	return b.String()
}

// PerOp measures the allocations per call of op in steady state: it runs
// op n times and 2n times under Measure and divides the difference by n, so
// that what any run costs once (pools and caches the profile's own garbage
// collections emptied, refilled) cancels out.
func PerOp(n int, op func()) (byOwner, bySite map[string]float64) {
	loop := func(k int) func() {
		return func() {
			for range k {
				op()
			}
		}
	}
	o1, s1 := Measure(loop(n))
	o2, s2 := Measure(loop(2 * n))
	return diff(o2, o1, n), diff(s2, s1, n)
}

// diff is (b-a)/n for each key, leaving out keys that did not grow.
func diff(b, a Counts, n int) map[string]float64 {
	m := map[string]float64{}
	for k, v := range b {
		if d := v - a[k]; d > 0 {
			m[k] = float64(d) / float64(n)
		}
	}
	return m
}

// self is this package's prefix: its own allocations are not counted.
const self = "github.com/netcore-go/netcore/internal/allocsite."

// snapshot is the memory profile's allocation counts by allocating site
// (the function that made the allocation, see owner). The profile is
// published at the end of a GC cycle, so it runs two.
func snapshot() map[string]int64 {
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+50)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	m := map[string]int64{}
	for i := range recs {
		m[site(recs[i].Stack())] += recs[i].AllocObjects
	}
	return m
}

// site is the innermost function of stk outside the runtime and the
// standard library.
func site(stk []uintptr) string {
	frames := runtime.CallersFrames(stk)
	first := ""
	for {
		fr, more := frames.Next()
		if first == "" && !strings.HasPrefix(fr.Function, "runtime.") {
			first = fr.Function
		}
		if fr.Function != "" && !isStd(fr.Function) {
			return fr.Function
		}
		if !more {
			return first
		}
	}
}

// isStd reports whether fn (a qualified function name) is in the standard
// library: its import path has no dot in its first element ("net.F",
// "net/netip.F"; "gvisor.dev/gvisor/…" is not).
func isStd(fn string) bool {
	first, _, slash := strings.Cut(fn, "/")
	return !slash || !strings.Contains(first, ".")
}

// owner names the module a function belongs to.
func owner(fn string) string {
	switch {
	case strings.HasPrefix(fn, "github.com/netcore-go/netcore"):
		return "netcore"
	case strings.HasPrefix(fn, "gvisor.dev/gvisor"):
		return "gvisor"
	case isStd(fn):
		return "std"
	}
	parts := strings.SplitN(fn, "/", 4)
	if len(parts) >= 3 {
		return strings.Join(parts[:3], "/")
	}
	return fn
}

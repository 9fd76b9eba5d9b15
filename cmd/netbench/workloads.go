package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netcore-go/netcore/internal/proctime"
)

// params sizes the workloads.
type params struct {
	warmup, duration time.Duration
	pairs            int    // idle TCP connection pairs
	udpRate          int    // datagrams per second offered
	heapProfile      string // where idle writes a heap profile while it holds its pairs
}

// metrics are one workload's figures, by metric key (see metricDefs).
type metrics map[string]float64

// workload is one measurement run on a fresh env.
type workload struct {
	name string
	run  func(e *env, p params) (metrics, error)
}

func allWorkloads() []workload {
	return []workload{
		{"bulk1", func(e *env, p params) (metrics, error) { return bulk(e, p, 1) }},
		{"bulk8", func(e *env, p params) (metrics, error) { return bulk(e, p, 8) }},
		{"rr", rr},
		{"conn", connRate},
		{"udp", udpPaced},
		{"dgram", dgram},
		{"idle", idle},
	}
}

// setupTimeout bounds every dial and accept.
const setupTimeout = 20 * time.Second

// connPair dials ln from the client side and accepts on the server side.
func connPair(e *env, ln net.Listener) (cli, srv net.Conn, err error) {
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	cli, err = withTimeout(setupTimeout, func(ctx context.Context) (net.Conn, error) {
		return e.dial(ctx, addrPort(ln.Addr()))
	})
	if err != nil {
		ln.Close() // wakes the Accept
		<-acc
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	if srv = <-acc; srv == nil {
		cli.Close()
		return nil, nil, errors.New("accept failed")
	}
	return cli, srv, nil
}

// stopConns wakes every call blocked on conns and closes them.
func stopConns(conns ...net.Conn) {
	for _, c := range conns {
		c.SetDeadline(time.Now())
		c.Close()
	}
}

// window measures how much counter grows over p.duration after p.warmup.
func window(p params, counter *atomic.Int64) (delta int64, elapsed time.Duration) {
	time.Sleep(p.warmup)
	c0, t0 := counter.Load(), time.Now()
	time.Sleep(p.duration)
	return counter.Load() - c0, time.Since(t0)
}

// bulk streams from the client to the server over n connections and
// reports the receiver-side rate.
func bulk(e *env, p params, n int) (metrics, error) {
	ln, err := e.listen()
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	var conns []net.Conn
	var received atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { stopConns(conns...) }()
	for range n {
		cli, srv, err := connPair(e, ln)
		if err != nil {
			return nil, err
		}
		conns = append(conns, cli, srv)
		wg.Go(func() { sendForever(cli) })
		wg.Go(func() { receiveCounting(srv, &received) })
	}
	got, elapsed := window(p, &received)
	return metrics{fmt.Sprintf("bulk%d_gbps", n): float64(got) * 8 / elapsed.Seconds() / 1e9}, nil
}

const bulkChunk = 256 << 10

func sendForever(c net.Conn) {
	buf := make([]byte, bulkChunk)
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

func receiveCounting(c net.Conn, n *atomic.Int64) {
	buf := make([]byte, bulkChunk)
	for {
		k, err := c.Read(buf)
		n.Add(int64(k))
		if err != nil {
			return
		}
	}
}

// rr does 1-byte request/response over one connection.
func rr(e *env, p params) (metrics, error) {
	ln, err := e.listen()
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	cli, srv, err := connPair(e, ln)
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopConns(cli, srv)
	wg.Go(func() { echo(srv) })
	if _, err := pingPong(cli, time.Now().Add(p.warmup), nil); err != nil {
		return nil, err
	}
	lat := make([]time.Duration, 0, 1<<16)
	t0, c0 := time.Now(), proctime.CPU()
	lat, err = pingPong(cli, t0.Add(p.duration), lat)
	if err != nil {
		return nil, err
	}
	elapsed, cpu := time.Since(t0), proctime.CPU()-c0
	slices.Sort(lat)
	return metrics{
		"rr_tps":    float64(len(lat)) / elapsed.Seconds(),
		"rr_p50_us": micros(percentile(lat, 0.50)),
		"rr_p99_us": micros(percentile(lat, 0.99)),
		"rr_cpu_us": perOp(cpu, len(lat)),
	}, nil
}

func echo(c net.Conn) {
	buf := make([]byte, 1)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// pingPong exchanges one byte at a time until end, appending each
// transaction's latency to lat.
func pingPong(c net.Conn, end time.Time, lat []time.Duration) ([]time.Duration, error) {
	buf := make([]byte, 1)
	for t := time.Now(); t.Before(end); {
		if _, err := c.Write(buf); err != nil {
			return lat, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return lat, err
		}
		now := time.Now()
		lat = append(lat, now.Sub(t))
		t = now
	}
	return lat, nil
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// perOp is the process CPU time cpu spread over n operations, in µs: what
// one operation costs in CPU across every goroutine (both stacks, both
// ends and the runtime), whatever the wall-clock rate.
func perOp(cpu time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return micros(cpu) / float64(n)
}

// connRate opens and closes connections one after the other: the client
// dials, waits until the server accepted, and both close.
func connRate(e *env, p params) (metrics, error) {
	ln, err := e.listen()
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	if _, err := connsUntil(e, ln, time.Now().Add(p.warmup)); err != nil {
		return nil, err
	}
	t0, c0 := time.Now(), proctime.CPU()
	n, err := connsUntil(e, ln, t0.Add(p.duration))
	if err != nil {
		return nil, err
	}
	elapsed, cpu := time.Since(t0), proctime.CPU()-c0
	return metrics{"conn_per_s": float64(n) / elapsed.Seconds(), "conn_cpu_us": perOp(cpu, n)}, nil
}

func connsUntil(e *env, ln net.Listener, end time.Time) (int, error) {
	n := 0
	for ; n == 0 || time.Now().Before(end); n++ {
		cli, srv, err := connPair(e, ln)
		if err != nil {
			return n, err
		}
		srv.Close()
		cli.Close()
	}
	return n, nil
}

// idle holds p.pairs idle TCP connection pairs and reports the heap they
// take, per pair, after a GC. The kernel's pairs are capped by the
// process's open-file limit.
func idle(e *env, p params) (metrics, error) {
	pairs := p.pairs
	if e.fdLimited {
		if lim := openFileLimit(); lim > 0 {
			pairs = min(pairs, (lim-256)/2)
		}
	}
	ln, err := e.listen()
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	before := heapAfterGC()
	conns, err := openPairs(e, ln, pairs)
	defer func() { stopConns(conns...) }()
	if err != nil {
		return nil, err
	}
	after := heapAfterGC()
	if p.heapProfile != "" {
		if err := writeHeapProfile(p.heapProfile); err != nil {
			return nil, err
		}
	}
	runtime.KeepAlive(conns)
	return metrics{
		"idle_bytes_per_pair": float64(int64(after)-int64(before)) / float64(pairs),
		"idle_pairs":          float64(pairs),
	}, nil
}

// openPairs makes n connection pairs, from a few dialers at once.
func openPairs(e *env, ln net.Listener, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, 2*n)
	var mu sync.Mutex
	var next atomic.Int64
	var firstErr error
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				cli, srv, err := connPair(e, ln)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					conns = append(conns, cli, srv)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return conns, firstErr
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

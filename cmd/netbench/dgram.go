package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// The dgram workload: unpaced UDP, every sender as fast as it can go, and
// the datagrams received per second counted, for 64 B and 1200 B payloads,
// one flow and 8 flows (a flow is a connected sender socket on the client
// side and its own receiver socket on the server side, each with its
// goroutine), one datagram per call (Write, ReadFrom) and in batches of
// dgramBatch (WriteBatch, ReadBatch: golang.org/x/net/ipv4's PacketConn
// over the kernel's sockets, netconn.UDPConn's own on netcore; systems with
// neither skip the batch figures).
var (
	dgramSizes = []int{64, 1200}
	dgramFlows = []int{1, 8}
)

// dgramBatch is the messages per WriteBatch and ReadBatch.
const dgramBatch = 32

// dgramKey is the metric key of one dgram figure.
func dgramKey(batch bool, size, flows int) string {
	mode := "rf"
	if batch {
		mode = "batch"
	}
	return fmt.Sprintf("dgram_%s_%d_%d_pps", mode, size, flows)
}

// dgramDefs are the dgram workload's metric definitions, in table order.
func dgramDefs() []metricDef {
	var defs []metricDef
	for _, batch := range []bool{false, true} {
		how := "ReadFrom"
		if batch {
			how = "ReadBatch"
		}
		for _, size := range dgramSizes {
			for _, flows := range dgramFlows {
				name := fmt.Sprintf("UDP %d B unpaced, %d flow(s), %s", size, flows, how)
				defs = append(defs, metricDef{dgramKey(batch, size, flows), name, "dgrams/s", "dgram", false, "%.0f"})
			}
		}
	}
	return defs
}

// batcher is what ipv4.PacketConn and netconn.UDPConn share.
type batcher interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchOf returns x's batch calls: ipv4.PacketConn's over a kernel socket,
// x's own, or nil.
func batchOf(x any) batcher {
	if u, ok := x.(*net.UDPConn); ok {
		return ipv4.NewPacketConn(u)
	}
	b, _ := x.(batcher)
	return b
}

// dgram measures every dgram figure on fresh sockets of e; each runs for
// half of p's warm-up and duration, so the eight take about as long as
// four other workloads.
func dgram(e *env, p params) (metrics, error) {
	p.warmup, p.duration = p.warmup/2, p.duration/2
	m := metrics{}
	for _, batch := range []bool{false, true} {
		for _, size := range dgramSizes {
			for _, flows := range dgramFlows {
				pps, ok, err := dgramRun(e, p, size, flows, batch)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", dgramKey(batch, size, flows), err)
				}
				if ok {
					m[dgramKey(batch, size, flows)] = pps
				}
			}
		}
	}
	return m, nil
}

// dgramFlow is one sender and its receiver.
type dgramFlow struct {
	rcv net.PacketConn
	snd net.Conn
}

// dgramRun runs one figure; ok is false when the system cannot batch.
func dgramRun(e *env, p params, size, flows int, batch bool) (pps float64, ok bool, err error) {
	fs, err := openFlows(e, flows)
	defer closeFlows(fs)
	if err != nil {
		return 0, false, err
	}
	if batch && (batchOf(fs[0].rcv) == nil || batchOf(fs[0].snd) == nil) {
		return 0, false, nil
	}
	var received atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, f := range fs {
		if batch {
			wg.Go(func() { receiveBatches(batchOf(f.rcv), &received) })
			wg.Go(func() { sendBatches(batchOf(f.snd), size, &stop) })
		} else {
			wg.Go(func() { countDatagrams(f.rcv, &received) })
			wg.Go(func() { sendDatagrams(f.snd, size, &stop) })
		}
	}
	got, elapsed := window(p, &received)
	stop.Store(true)
	closeFlows(fs)
	wg.Wait()
	return float64(got) / elapsed.Seconds(), true, nil
}

func openFlows(e *env, n int) ([]dgramFlow, error) {
	var fs []dgramFlow
	for range n {
		pc, err := e.listenUDP()
		if err != nil {
			return fs, err
		}
		c, err := withTimeoutConn(e, addrPort(pc.LocalAddr()))
		if err != nil {
			pc.Close()
			return fs, err
		}
		fs = append(fs, dgramFlow{rcv: pc, snd: c})
	}
	return fs, nil
}

// closeFlows wakes and closes every socket of fs (again: a no-op).
func closeFlows(fs []dgramFlow) {
	for _, f := range fs {
		f.rcv.SetDeadline(time.Now())
		f.rcv.Close()
		stopConns(f.snd)
	}
}

// sendDatagrams writes size-byte datagrams until stop; errors (a full
// buffer) count as datagrams lost.
func sendDatagrams(c net.Conn, size int, stop *atomic.Bool) {
	buf := make([]byte, size)
	for !stop.Load() {
		if _, err := c.Write(buf); err != nil && isClosed(err) {
			return
		}
	}
}

func sendBatches(b batcher, size int, stop *atomic.Bool) {
	ms := make([]ipv4.Message, dgramBatch)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, size)}
	}
	for !stop.Load() {
		if _, err := b.WriteBatch(ms, 0); err != nil && isClosed(err) {
			return
		}
	}
}

func receiveBatches(b batcher, n *atomic.Int64) {
	ms := make([]ipv4.Message, dgramBatch)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	for {
		k, err := b.ReadBatch(ms, 0)
		if err != nil {
			return
		}
		n.Add(int64(k))
	}
}

// isClosed reports whether err says the socket is closed or its deadline
// passed: the end of a run.
func isClosed(err error) bool {
	var ne net.Error
	return errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout())
}

package netconn_test

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcore-go/netcore/internal/proctime"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
	"golang.org/x/net/ipv4"
)

// udpListeners returns two unconnected UDP sockets, a on stack A and b on
// stack B, closed when tb ends.
func udpListeners(tb testing.TB, p testnet.Pair) (a, b *netconn.UDPConn) {
	tb.Helper()
	ctx := testCtx(tb)
	var err error
	if a, err = netconn.ListenUDP(ctx, p.A.CommandChannel(), "udp", netip.AddrPortFrom(testnet.AddrA, 0)); err != nil {
		tb.Fatalf("ListenUDP A: %v", err)
	}
	if b, err = netconn.ListenUDP(ctx, p.B.CommandChannel(), "udp", netip.AddrPortFrom(testnet.AddrB, 0)); err != nil {
		tb.Fatalf("ListenUDP B: %v", err)
	}
	tb.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// BenchmarkUDPWriteToReadFrom is quic-go's pattern over a net.PacketConn:
// one WriteTo and one ReadFrom per datagram, a sender on stack A and a
// reader on stack B, in lock step (each datagram is read before the next is
// sent, so none is lost). It measures the per-datagram cost of the adapter
// and the engine.
func BenchmarkUDPWriteToReadFrom(b *testing.B) {
	for _, size := range []int{64, 1200} {
		b.Run(sizeName(size), func(b *testing.B) {
			p := testnet.NewPair(b)
			snd, rcv := udpListeners(b, p)
			to := rcv.LocalAddr()
			msg, buf := make([]byte, size), make([]byte, 2048)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := snd.WriteTo(msg, to); err != nil {
					b.Fatal(err)
				}
				if _, _, err := rcv.ReadFrom(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUDPStream sends datagrams from one goroutine as fast as
// WriteTo allows while another reads them with ReadFrom; it reports the
// datagrams received per second.
func BenchmarkUDPStream(b *testing.B) {
	for _, size := range []int{64, 1200} {
		b.Run(sizeName(size), func(b *testing.B) {
			p := testnet.NewPair(b)
			snd, rcv := udpListeners(b, p)
			to := rcv.LocalAddr()
			msg := make([]byte, size)
			var wg sync.WaitGroup
			got := 0
			wg.Go(func() {
				buf := make([]byte, 2048)
				for {
					if _, _, err := rcv.ReadFrom(buf); err != nil {
						return
					}
					got++
				}
			})
			b.ReportAllocs()
			for b.Loop() {
				snd.WriteTo(msg, to)
			}
			rcv.Close()
			wg.Wait()
			b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "dgrams/s")
		})
	}
}

func sizeName(n int) string { return strconv.Itoa(n) + "B" }

// BenchmarkUDPStreamBatch is BenchmarkUDPStream with WriteBatch and
// ReadBatch, 32 datagrams a batch; b.N counts datagrams.
func BenchmarkUDPStreamBatch(b *testing.B) {
	const batch = 32
	for _, size := range []int{64, 1200} {
		b.Run(sizeName(size), func(b *testing.B) {
			p := testnet.NewPair(b)
			snd, rcv := udpListeners(b, p)
			out := make([]ipv4.Message, batch)
			for i := range out {
				out[i] = ipv4.Message{Buffers: [][]byte{make([]byte, size)}, Addr: rcv.LocalAddr()}
			}
			var wg sync.WaitGroup
			got := 0
			wg.Go(func() {
				in := make([]ipv4.Message, batch)
				for i := range in {
					in[i].Buffers = [][]byte{make([]byte, 2048)}
				}
				for {
					k, err := rcv.ReadBatch(in, 0)
					if err != nil {
						return
					}
					got += k
				}
			})
			b.ReportAllocs()
			start := time.Now()
			for sent := 0; sent < b.N; sent += batch {
				snd.WriteBatch(out[:min(batch, b.N-sent)], 0)
			}
			el := time.Since(start)
			rcv.Close()
			wg.Wait()
			b.ReportMetric(float64(got)/el.Seconds(), "dgrams/s")
		})
	}
}

// BenchmarkUDPFlows runs 8 flows at once, each a sender on stack A
// writing as fast as WriteTo allows and a reader on stack B; it reports
// the datagrams received per second and the share lost.
func BenchmarkUDPFlows(b *testing.B) {
	const flows = 8
	p := testnet.NewPair(b)
	var wg sync.WaitGroup
	var got, sent atomic.Int64
	type flow struct{ snd, rcv *netconn.UDPConn }
	var fs []flow
	for range flows {
		snd, rcv := udpListeners(b, p)
		fs = append(fs, flow{snd, rcv})
		wg.Go(func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := rcv.ReadFrom(buf); err != nil {
					return
				}
				got.Add(1)
			}
		})
	}
	b.ReportAllocs()
	start := time.Now()
	var swg sync.WaitGroup
	for _, f := range fs {
		swg.Go(func() {
			msg, to := make([]byte, 64), f.rcv.LocalAddr()
			for sent.Add(1) <= int64(b.N) {
				f.snd.WriteTo(msg, to)
			}
		})
	}
	swg.Wait()
	el := time.Since(start)
	for _, f := range fs {
		f.rcv.Close()
	}
	wg.Wait()
	b.ReportMetric(float64(got.Load())/el.Seconds(), "dgrams/s")
	b.ReportMetric(1-float64(got.Load())/float64(b.N), "loss")
}

// BenchmarkUDPFlowsUnpaced is netbench's dgram workload between two joined
// stacks: 1 or 8 flows, each a connected sender writing as fast as it can (Write,
// or WriteBatch of 32) and its own reader (ReadFrom, or ReadBatch); b.N
// counts datagrams the senders try. It reports the datagrams received per
// second, the process's CPU per datagram received, and the share of those
// sent that was lost.
func BenchmarkUDPFlowsUnpaced(b *testing.B) {
	for _, flows := range []int{1, 8} {
		for _, size := range []int{64, 1200} {
			for _, batched := range []bool{false, true} {
				name := fmt.Sprintf("%dx%s/ReadFrom", flows, sizeName(size))
				if batched {
					name = fmt.Sprintf("%dx%s/ReadBatch", flows, sizeName(size))
				}
				b.Run(name, func(b *testing.B) { benchFlows(b, flows, size, batched) })
			}
		}
	}
}

// benchFlows is one BenchmarkUDPFlowsUnpaced figure.
func benchFlows(b *testing.B, flows, size int, batched bool) {
	p := testnet.NewPair(b)
	ctx := testCtx(b)
	var got, claimed, sent atomic.Int64
	var wg, swg sync.WaitGroup
	var rcvs []*netconn.UDPConn
	for range flows {
		_, rcv := udpListeners(b, p)
		rcvs = append(rcvs, rcv)
		to := rcv.LocalAddr().(*net.UDPAddr).AddrPort()
		snd, err := netconn.DialUDP(ctx, p.A.CommandChannel(), "udp4", netip.AddrPortFrom(testnet.AddrA, 0), to)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { snd.Close() })
		wg.Go(func() { readFlow(rcv, batched, &got) })
		swg.Go(func() { sendFlow(snd, size, batched, int64(b.N), &claimed, &sent) })
	}
	b.ReportAllocs()
	start, cpu := time.Now(), proctime.CPU()
	swg.Wait()
	el := time.Since(start)
	for _, r := range rcvs {
		r.Close()
	}
	wg.Wait()
	b.ReportMetric(float64(got.Load())/el.Seconds(), "dgrams/s")
	b.ReportMetric(float64((proctime.CPU()-cpu).Nanoseconds())/float64(got.Load()), "cpu-ns/dgram")
	b.ReportMetric(1-float64(got.Load())/float64(sent.Load()), "loss")
}

// readFlow counts what rcv receives into got until it is closed.
func readFlow(rcv *netconn.UDPConn, batched bool, got *atomic.Int64) {
	ms := make([]ipv4.Message, 32)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	for {
		k := 1
		var err error
		if batched {
			k, err = rcv.ReadBatch(ms, 0)
		} else {
			_, _, err = rcv.ReadFrom(ms[0].Buffers[0])
		}
		if err != nil {
			return
		}
		got.Add(int64(k))
	}
}

// sendFlow writes size-byte datagrams on snd until the flows together have
// tried n (claimed counts the tries), and counts into sent those that went
// (a batch may answer early with fewer: those are not lost).
func sendFlow(snd *netconn.UDPConn, size int, batched bool, n int64, claimed, sent *atomic.Int64) {
	ms := make([]ipv4.Message, 32)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, size)}
	}
	k := int64(1)
	if batched {
		k = int64(len(ms))
	}
	for claimed.Add(k) <= n+k-1 {
		if batched {
			m, _ := snd.WriteBatch(ms, 0)
			sent.Add(int64(m))
		} else if _, err := snd.Write(ms[0].Buffers[0]); err == nil {
			sent.Add(1)
		}
	}
}

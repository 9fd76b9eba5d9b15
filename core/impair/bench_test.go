package impair_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
)

// BenchmarkImpairedTCP moves one TCP stream between two netcore stacks
// joined by Join, with the same random loss both ways (seeds fixed), and
// reports the goodput in Mbit/s. The link does nothing else, so 0% is the
// cost of the impaired path itself (wire-sized, checksummed packets).
func BenchmarkImpairedTCP(b *testing.B) {
	for _, loss := range []float64{0, 0.01, 0.03} {
		b.Run(fmt.Sprintf("loss=%g%%", loss*100), func(b *testing.B) {
			p := newImpairedPair(b, false, impair.Config{Seed: 1, Loss: loss}, impair.Config{Seed: 2, Loss: loss})
			benchStream(b, p)
		})
	}
}

// benchStream writes 256 KiB per iteration from A to B over one TCP
// connection and reports Mbit/s.
func benchStream(b *testing.B, p impairedPair) {
	ctx := context.Background()
	dst := netip.AddrPortFrom(p.addrB, 80)
	ln, err := listener.Listen(p.b.CommandChannel(), "tcp"+p.network, dst.String())
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan int64)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		done <- n
	}()
	c, err := netconn.DialTCP(ctx, p.a.CommandChannel(), "tcp"+p.network, netip.AddrPort{}, dst)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const chunk = 256 << 10
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	start := time.Now()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.CloseWrite()
	n := <-done
	elapsed := time.Since(start)
	if want := int64(b.N) * chunk; n != want {
		b.Fatalf("received %d bytes, want %d", n, want)
	}
	b.ReportMetric(float64(n)*8/elapsed.Seconds()/1e6, "Mbit/s")
}

// BenchmarkLinkRate pushes packets through a rate-limited link as fast as
// it takes them and reports the rate they come out at, beside the one
// configured: the token bucket's accuracy.
func BenchmarkLinkRate(b *testing.B) {
	for _, rate := range []int64{10e6, 100e6, 1e9} {
		b.Run(fmt.Sprintf("rate=%dMbit", rate/1e6), func(b *testing.B) {
			var first, last time.Time
			var bytes int64
			l, err := impair.New(impair.Config{Rate: rate, QueueLimit: 64}, func(pkts [][]byte) {
				now := time.Now()
				if first.IsZero() {
					first = now
				} else {
					for _, p := range pkts {
						bytes += int64(len(p))
					}
				}
				last = now
			})
			if err != nil {
				b.Fatal(err)
			}
			pkt := make([]byte, 1500)
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				l.Send(pkt)
			}
			l.Drain(context.Background())
			l.Close()
			s := l.Stats()
			if s.Lost+s.LostBurst+s.Dropped != 0 {
				b.Fatalf("drops other than the queue's: %+v", s)
			}
			if d := last.Sub(first); d > 0 {
				b.ReportMetric(float64(bytes)*8/d.Seconds()/1e6, "Mbit/s")
			}
			b.ReportMetric(float64(s.QueueDrops)/float64(s.Sent)*100, "%queue-drops")
		})
	}
}

// BenchmarkLinkSend measures a packet's way through a link with every
// decision on (no delay): the per-packet cost of the engine.
func BenchmarkLinkSend(b *testing.B) {
	l, err := impair.New(impair.Config{Loss: 0.01, Duplicate: 0.01, Corrupt: 0.01, Reorder: 0.01, QueueLimit: 4096}, func([][]byte) {})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	batch := make([][]byte, 64)
	for i := range batch {
		batch[i] = make([]byte, 1500)
	}
	b.SetBytes(int64(len(batch) * 1500))
	b.ReportAllocs()
	for b.Loop() {
		if err := l.SendBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/pkt")
}

// BenchmarkImpairedTCPReorderHold is BenchmarkImpairedTCP with no loss,
// on a perfect link and with 5% of packets held back 1 ms, with the
// link's reorder hold (core.Config.ReorderHold) on and off: its cost
// where nothing is reordered, and what it saves where packets are.
func BenchmarkImpairedTCPReorderHold(b *testing.B) {
	for _, reorder := range []float64{0, 0.05} {
		for _, off := range []bool{false, true} {
			b.Run(fmt.Sprintf("reorder=%g%%/off=%v", reorder*100, off), func(b *testing.B) {
				cfg := core.Config{}
				if off {
					cfg.ReorderHold = -1
				}
				p := newImpairedPairConfig(b, false, cfg, impair.Config{Seed: 1, Reorder: reorder}, impair.Config{Seed: 2})
				benchStream(b, p)
			})
		}
	}
}

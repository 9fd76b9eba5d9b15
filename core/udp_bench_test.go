package core_test

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// BenchmarkUDPDatagrams sends b.N datagrams of 64 bytes from one stack to
// a socket on the other (joined by JoinPipe), from four senders, with a
// reader that takes them as fast as it can; it reports the datagrams
// delivered per second and the share lost.
func BenchmarkUDPDatagrams(b *testing.B) {
	p := testnet.NewPair(b)
	a, bb := p.A.CommandChannel(), p.B.CommandChannel()
	ctx := context.Background()
	recvH := do[core.UDPBound](b, bb, core.NoHandle, core.UDPBind{Local: netipB(0)})
	var received atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		recv := &core.UDPRecv{Buf: buf}
		for {
			if _, err := bb.Request(ctx, recvH.Handle, recv); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	const senders = 4
	handles := make([]core.Handle, senders)
	for i := range handles {
		handles[i] = do[core.UDPBound](b, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)}).Handle
	}
	msg := make([]byte, 64)
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	sent := make(chan struct{})
	for _, h := range handles {
		go func() {
			defer func() { sent <- struct{}{} }()
			send := &core.UDPSend{To: recvH.Local, Buf: msg}
			for next.Add(1) <= int64(b.N) {
				if _, err := a.Request(ctx, h, send); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for range senders {
		<-sent
	}
	// Wait for the datagrams in flight: until the count stops moving.
	for last := int64(-1); received.Load() != last; time.Sleep(20 * time.Millisecond) {
		last = received.Load()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	got := received.Load()
	b.ReportMetric(float64(got)/elapsed.Seconds(), "dgrams/s")
	b.ReportMetric(1-float64(got)/float64(b.N), "loss")
	do[core.OK](b, bb, recvH.Handle, core.CloseSocket{})
	<-done
}

package main

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// udpSize is the datagram payload size.
const udpSize = 1200

// udpPaced offers p.udpRate datagrams per second from the client to the
// server and reports how many arrived per second, and the share lost.
func udpPaced(e *env, p params) (metrics, error) {
	pc, err := e.listenUDP()
	if err != nil {
		return nil, err
	}
	c, err := withTimeoutConn(e, addrPort(pc.LocalAddr()))
	if err != nil {
		pc.Close()
		return nil, err
	}
	var received atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { countDatagrams(pc, &received) })
	defer func() {
		stopConns(c)
		pc.SetDeadline(time.Now())
		pc.Close()
		wg.Wait()
	}()
	paceUDP(c, p.udpRate, p.warmup)
	settle(&received)
	r0 := received.Load()
	t0 := time.Now()
	sent := paceUDP(c, p.udpRate, p.duration)
	elapsed := time.Since(t0)
	settle(&received)
	got := received.Load() - r0
	loss := 0.0
	if sent > 0 {
		loss = max(0, 1-float64(got)/float64(sent))
	}
	return metrics{
		"udp_pps":      float64(got) / elapsed.Seconds(),
		"udp_sent_pps": float64(sent) / elapsed.Seconds(),
		"udp_loss":     loss,
	}, nil
}

func withTimeoutConn(e *env, to netip.AddrPort) (net.Conn, error) {
	return withTimeout(setupTimeout, func(ctx context.Context) (net.Conn, error) { return e.dialUDP(ctx, to) })
}

func countDatagrams(pc net.PacketConn, n *atomic.Int64) {
	buf := make([]byte, 2048)
	for {
		if _, _, err := pc.ReadFrom(buf); err != nil {
			return
		}
		n.Add(1)
	}
}

// settle waits until the counter stops moving for 20ms (in-flight
// datagrams landed), or 1s.
func settle(n *atomic.Int64) {
	end := time.Now().Add(time.Second)
	for last := int64(-1); time.Now().Before(end); {
		cur := n.Load()
		if cur == last {
			return
		}
		last = cur
		time.Sleep(20 * time.Millisecond)
	}
}

// paceUDP sends datagrams at rate per second for d, in small bursts that
// keep up with the schedule, and returns how many it sent.
func paceUDP(c net.Conn, rate int, d time.Duration) int64 {
	buf := make([]byte, udpSize)
	start := time.Now()
	var sent int64
	for {
		elapsed := time.Since(start)
		if elapsed >= d {
			return sent
		}
		due := int64(elapsed.Seconds()*float64(rate)) - sent
		if due <= 0 {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		for range min(due, 64) {
			c.Write(buf) // a datagram refused by the sender counts as lost
			sent++
		}
	}
}

package dialer_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/listener"
)

// Addresses in the pair's subnets that no stack owns: packets sent there
// are dropped without an answer.
var (
	silent4 = netip.MustParseAddr("192.0.2.99")
	silent6 = netip.MustParseAddr("2001:db8::99")
)

// newPair registers the leak check first, so that it runs after the
// stacks' own cleanup, and returns a running pair.
func newPair(t *testing.T) testnet.Pair {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
	return testnet.NewPair(t)
}

// newDialer returns a Dialer on stack A of p.
func newDialer(p testnet.Pair) *dialer.Dialer {
	return &dialer.Dialer{Channel: p.A.CommandChannel()}
}

// stats returns a snapshot of the stack's counters.
func stats(t testing.TB, ch core.Channel) core.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := ch.Request(ctx, core.NoHandle, core.GetStats{})
	if err != nil {
		t.Fatalf("GetStats: %v", err)
	}
	return resp.(core.Stats)
}

// sockets returns the number of open sockets of the stack.
func sockets(t testing.TB, ch core.Channel) int {
	t.Helper()
	return stats(t, ch).Sockets
}

// wantSockets fails the test unless the stack has want sockets open.
// Sockets of the dialer's own making are closed before DialContext
// returns, so no waiting is needed; DNS sockets of an abandoned lookup are
// closed when its context ends, which may be a moment later.
func wantSockets(t testing.TB, ch core.Channel, want int, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := sockets(t, ch)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stack has %d sockets, want %d", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// echoServer serves TCP echo on addr of the stack behind ch until the
// test ends, and returns its address.
func echoServer(t *testing.T, ch core.Channel, network, addr string) netip.AddrPort {
	t.Helper()
	ln, err := listener.Listen(ch, network, addr)
	if err != nil {
		t.Fatalf("Listen(%q, %q): %v", network, addr, err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// udpEchoServer serves UDP echo on addr until the test ends.
func udpEchoServer(t *testing.T, ch core.Channel, addr string) netip.AddrPort {
	t.Helper()
	pc, err := listener.ListenPacket(ch, "udp", addr)
	if err != nil {
		t.Fatalf("ListenPacket(%q): %v", addr, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// roundTrip writes msg to c and reads it back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("Read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("echo = %q, want %q", buf, msg)
	}
}

// remote returns the remote address of a dialled conn.
func remote(c net.Conn) netip.AddrPort {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

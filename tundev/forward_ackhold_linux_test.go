package tundev_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
)

// echoOne is a HandleTCP that answers every want bytes it reads with their
// first byte, until the client goes.
func echoOne(want int) func(context.Context, *netconn.TCPConn) {
	return func(_ context.Context, c *netconn.TCPConn) {
		buf := make([]byte, want)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf[:1]); err != nil {
				return
			}
		}
	}
}

// TestForwardACKHoldRoundTrips: a kernel client's 1-byte requests through
// the TUN draw no pure ACK of their own: each request's ACK is held and
// the reply carries it (ForwardStats.ACKsCovered), and every reply is the
// request's byte. The hold is long here, so that the reply always comes
// first however loaded the machine.
func TestForwardACKHoldRoundTrips(t *testing.T) {
	leakCheck(t)
	e := newFwdEnv(t, core.ForwardConfig{ACKHold: time.Minute}, &listener.Forwarder{HandleTCP: echoOne(1)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := e.dial(ctx, "tcp", netip.AddrPortFrom(farHost, 80).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const rounds = 200
	before := e.stack.Stats().Forward
	for i := range rounds {
		b := []byte{byte(i)}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, b); err != nil || b[0] != byte(i) {
			t.Fatalf("round %d: reply %d, %v; want %d", i, b[0], err, byte(i))
		}
	}
	st := e.stack.Stats().Forward
	held, covered := st.ACKsHeld-before.ACKsHeld, st.ACKsCovered-before.ACKsCovered
	if held < rounds-1 || covered != held {
		t.Fatalf("%d round trips: %d ACKs held, %d covered by the reply; want at least %d held, all covered", rounds, held, covered, rounds-1)
	}
}

// TestForwardACKHoldNagle: a peer that waits for the held ACK is not
// stalled: a kernel client with Nagle's algorithm on sends a 2-byte
// request in two writes, the second of which the kernel holds until the
// first is acknowledged; the handler answers only the whole request. The
// held ACK goes out when its time is up (held, not covered), the second
// byte follows, and every request is answered, with the default hold and
// with a long one (the round trip then takes at least that long).
func TestForwardACKHoldNagle(t *testing.T) {
	for _, hold := range []time.Duration{0, 200 * time.Millisecond} {
		t.Run(hold.String(), func(t *testing.T) {
			leakCheck(t)
			e := newFwdEnv(t, core.ForwardConfig{ACKHold: hold}, &listener.Forwarder{HandleTCP: echoOne(2)})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := e.dial(ctx, "tcp", netip.AddrPortFrom(farHost, 80).String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.(*net.TCPConn).SetNoDelay(false); err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(time.Minute)) // a stall fails, not hangs
			const rounds = 5
			for i := range rounds {
				for _, half := range []byte{byte(i), byte(i + 100)} {
					if _, err := c.Write([]byte{half}); err != nil {
						t.Fatal(err)
					}
				}
				b := make([]byte, 1)
				if _, err := io.ReadFull(c, b); err != nil || b[0] != byte(i) {
					t.Fatalf("round %d: reply %v, %v; want %d", i, b, err, byte(i))
				}
			}
			st := e.stack.Stats().Forward
			if st.ACKsHeld-st.ACKsCovered < rounds-1 {
				t.Fatalf("%d ACKs held, %d covered; want at least %d sent by the timer (one a round the client waited for)", st.ACKsHeld, st.ACKsCovered, rounds-1)
			}
		})
	}
}

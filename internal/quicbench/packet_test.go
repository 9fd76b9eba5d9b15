package quicbench_test

import (
	"net"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

// largestRead is a net.PacketConn that records the largest datagram read.
// Like a netconn.UDPConn it has no SyscallConn, so quic-go treats it as
// it treats netcore's sockets.
type largestRead struct {
	net.PacketConn
	max atomic.Int64
}

// ReadFrom implements net.PacketConn.
func (c *largestRead) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.PacketConn.ReadFrom(b)
	if int64(n) > c.max.Load() {
		c.max.Store(int64(n))
	}
	return n, from, err
}

// largestPacket sends one stream of streamSize() bytes from a netcore
// stack to another with InitialPacketSize packet and returns the largest
// datagram the server read.
func largestPacket(t *testing.T, packet uint16) int64 {
	s := netcoreSockets(t)
	srv := &largestRead{PacketConn: s.srv}
	s.srv = srv
	c := quicPair(t, s, packet)
	n := streamSize()
	got, err := sendStream(c, n, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := digest(n, 3); got != want {
		t.Fatalf("the server read SHA-256 %x, want %x", got, want)
	}
	return srv.max.Load()
}

// Over a net.PacketConn without a file descriptor (netcore's) quic-go
// cannot set DF, so it runs no path MTU discovery and keeps its initial
// packet size, 1280 B, for the whole connection; with the guide's
// recommendation, InitialPacketSize netcorePacketSize on both ends, its
// packets fill the 1500-byte MTU.
func TestQUICPacketSize(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	t.Run("default", func(t *testing.T) {
		got := largestPacket(t, 0)
		t.Logf("largest datagram %d B", got)
		if got > 1280 {
			t.Errorf("largest datagram %d B with quic-go's defaults; want at most 1280 (no path MTU discovery over a plain PacketConn)", got)
		}
	})
	t.Run("recommended", func(t *testing.T) {
		if got := largestPacket(t, netcorePacketSize); got != netcorePacketSize {
			t.Errorf("largest datagram %d B with InitialPacketSize %d; want %d", got, netcorePacketSize, netcorePacketSize)
		}
	})
}

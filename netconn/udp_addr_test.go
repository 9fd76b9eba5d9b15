package netconn_test

import (
	"net"
	"testing"
)

// ReadFrom hands consecutive datagrams from one sender the same
// *net.UDPAddr (no allocation each); a caller that modifies it gets a
// right one next time, and another sender gets its own.
func TestUDPReadFromSharedAddr(t *testing.T) {
	p := newPair(t)
	snd, rcv := udpListeners(t, p)
	other, _ := udpListeners(t, p)
	to, buf := rcv.LocalAddr(), make([]byte, 16)
	read := func() *net.UDPAddr {
		t.Helper()
		_, from, err := rcv.ReadFrom(buf)
		if err != nil {
			t.Fatalf("ReadFrom: %v", err)
		}
		return from.(*net.UDPAddr)
	}
	send := func(c net.PacketConn) {
		t.Helper()
		if _, err := c.WriteTo([]byte("x"), to); err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
	}
	want := snd.LocalAddr().String()
	send(snd)
	send(snd)
	first, second := read(), read()
	if first != second || first.String() != want {
		t.Fatalf("two datagrams from %s: addresses %v (%p) and %v (%p), want one shared", want, first, first, second, second)
	}
	first.Port++
	first.IP[3]++ // a caller that writes to it
	send(snd)
	if third := read(); third == first || third.String() != want {
		t.Fatalf("after the caller changed it: %v (shared %t), want a fresh %s", third, third == first, want)
	}
	send(other)
	if got := read(); got.String() != other.LocalAddr().String() {
		t.Fatalf("from another sender: %v, want %v", got, other.LocalAddr())
	}
}

package netconn_test

import (
	"bytes"
	"errors"

	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
	"go.uber.org/goleak"
	"golang.org/x/net/ipv4"
)

// payload is datagram i of a test: its own bytes and size.
func payload(i int) []byte {
	return bytes.Repeat([]byte{byte('a' + i%26)}, 10+i*37)
}

// readN reads n datagrams with ReadBatch (batches of up to 4), checking
// each one's bytes and sender, and returns how many batches it took.
func readN(t *testing.T, rcv *netconn.UDPConn, n, first int, from net.Addr) int {
	t.Helper()
	ms := make([]ipv4.Message, 4)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	batches := 0
	for got := 0; got < n; batches++ {
		k, err := rcv.ReadBatch(ms[:min(len(ms), n-got)], 0)
		if err != nil || k < 1 {
			t.Fatalf("ReadBatch = %d, %v; want at least one datagram", k, err)
		}
		for _, m := range ms[:k] {
			want := payload(first + got)
			if m.N != len(want) || !bytes.Equal(m.Buffers[0][:m.N], want) || m.Flags != 0 {
				t.Fatalf("datagram %d: %d bytes %.8q… flags %#x, want %d bytes %.8q…", first+got, m.N, m.Buffers[0][:m.N], m.Flags, len(want), want)
			}
			if m.Addr.String() != from.String() {
				t.Fatalf("datagram %d from %v, want %v", first+got, m.Addr, from)
			}
			got++
		}
	}
	return batches
}

// WriteBatch sends each message as one datagram, with one buffer or
// several, and ReadBatch receives them: every datagram's bytes, size and
// sender, in order.
func TestUDPBatchRoundTrip(t *testing.T) {
	p := newPair(t)
	snd, rcv := udpListeners(t, p)
	const n = 12
	ms := make([]ipv4.Message, n)
	for i := range ms {
		b := payload(i)
		ms[i].Addr = rcv.LocalAddr()
		ms[i].Buffers = [][]byte{b}
		if i%3 == 1 { // a gather list: the same bytes in three pieces
			ms[i].Buffers = [][]byte{b[:3], nil, b[3:]}
		}
	}
	k, err := snd.WriteBatch(ms, 0)
	if err != nil || k != n {
		t.Fatalf("WriteBatch = %d, %v; want %d, nil", k, err, n)
	}
	for i, m := range ms {
		if m.N != len(payload(i)) {
			t.Fatalf("message %d: N = %d, want %d", i, m.N, len(payload(i)))
		}
	}
	readN(t, rcv, n, 0, snd.LocalAddr())

	// Once all have arrived, one ReadBatch takes them all.
	in0 := p.B.Stats().UDPPacketsIn
	if k, err := snd.WriteBatch(ms, 0); k != n || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want %d, nil", k, err, n)
	}
	for p.B.Stats().UDPPacketsIn < in0+n {
		time.Sleep(time.Millisecond) // the engine delivers them after it answers
	}
	in := make([]ipv4.Message, n+4)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	if k, err := rcv.ReadBatch(in, 0); k != n || err != nil {
		t.Fatalf("ReadBatch with %d datagrams waiting = %d, %v; want all of them", n, k, err)
	}
}

// A datagram longer than its message's buffers fills them, in order, and
// is flagged MSG_TRUNC; the next message gets the next datagram whole.
func TestUDPBatchScatterTruncate(t *testing.T) {
	p := newPair(t)
	snd, rcv := udpListeners(t, p)
	for _, b := range [][]byte{[]byte("0123456789"), []byte("abc")} {
		if _, err := snd.WriteTo(b, rcv.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := make([]byte, 3), make([]byte, 4), make([]byte, 16)
	ms := []ipv4.Message{{Buffers: [][]byte{a, b}}, {Buffers: [][]byte{c}}}
	got := 0
	for got < 2 {
		k, err := rcv.ReadBatch(ms[got:], 0)
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		got += k
	}
	if ms[0].N != 7 || string(a)+string(b) != "0123456" || ms[0].Flags&wantTrunc == 0 {
		t.Errorf("first: N %d, %q%q, flags %#x; want 7, 0123456, MSG_TRUNC", ms[0].N, a, b, ms[0].Flags)
	}
	if ms[1].N != 3 || string(c[:3]) != "abc" || ms[1].Flags != 0 {
		t.Errorf("second: N %d, %q, flags %#x; want 3, abc, 0", ms[1].N, c[:ms[1].N], ms[1].Flags)
	}
}

// A batch stops at a datagram too long to send, or a bad address: the
// messages before it are sent and counted, the error matches, and the
// rest go out when sent again.
func TestUDPBatchBadMessage(t *testing.T) {
	p := newPair(t)
	snd, rcv := udpListeners(t, p)
	for _, tc := range []struct {
		name string
		bad  ipv4.Message
		want error
	}{
		{"too long", ipv4.Message{Buffers: [][]byte{make([]byte, 70000)}, Addr: rcv.LocalAddr()}, syscall.EMSGSIZE},
		{"too long in pieces", ipv4.Message{Buffers: [][]byte{make([]byte, 40000), make([]byte, 30000)}, Addr: rcv.LocalAddr()}, syscall.EMSGSIZE},
		{"not a UDP address", ipv4.Message{Buffers: [][]byte{[]byte("x")}, Addr: &net.TCPAddr{}}, syscall.EINVAL},
		{"no address", ipv4.Message{Buffers: [][]byte{[]byte("x")}}, syscall.ENOTCONN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := make([]ipv4.Message, 5)
			for i := range ms {
				ms[i] = ipv4.Message{Buffers: [][]byte{payload(i)}, Addr: rcv.LocalAddr()}
			}
			ms[2] = tc.bad
			k, err := snd.WriteBatch(ms, 0)
			var oe *net.OpError
			if k != 2 || !errors.Is(err, tc.want) || !errors.As(err, &oe) || oe.Op != "write" {
				t.Fatalf("WriteBatch = %d, %v; want 2 and a write *net.OpError matching %v", k, err, tc.want)
			}
			readN(t, rcv, 2, 0, snd.LocalAddr())
			if k, err := snd.WriteBatch(ms[3:], 0); k != 2 || err != nil {
				t.Fatalf("WriteBatch of the rest = %d, %v; want 2, nil", k, err)
			}
			readN(t, rcv, 2, 3, snd.LocalAddr())
		})
	}
}

// Deadlines: a past one fails at once, one that passes wakes a blocked
// ReadBatch, and a datagram sent afterwards is read whole; Close wakes a
// blocked ReadBatch with net.ErrClosed.
func TestUDPBatchDeadlineClose(t *testing.T) {
	p := newPair(t)
	snd, rcv := udpListeners(t, p)
	ms := []ipv4.Message{{Buffers: [][]byte{make([]byte, 64)}}}
	rcv.SetReadDeadline(time.Now().Add(-time.Second))
	if k, err := rcv.ReadBatch(ms, 0); k != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadBatch past its deadline = %d, %v; want 0, os.ErrDeadlineExceeded", k, err)
	}
	snd.SetWriteDeadline(time.Now().Add(-time.Second))
	out := []ipv4.Message{{Buffers: [][]byte{payload(0)}, Addr: rcv.LocalAddr()}}
	if k, err := snd.WriteBatch(out, 0); k != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteBatch past its deadline = %d, %v; want 0, os.ErrDeadlineExceeded", k, err)
	}
	snd.SetWriteDeadline(time.Time{})

	rcv.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := rcv.ReadBatch(ms, 0)
		done <- err
	}()
	rcv.SetReadDeadline(time.Now().Add(20 * time.Millisecond)) // wakes the blocked call
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked ReadBatch after its deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	rcv.SetReadDeadline(time.Time{})
	if k, err := snd.WriteBatch(out, 0); k != 1 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", k, err)
	}
	readN(t, rcv, 1, 0, snd.LocalAddr())

	go func() {
		_, err := rcv.ReadBatch(ms, 0)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // most likely blocked by now; either way it must fail
	rcv.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadBatch on a closed conn: %v, want net.ErrClosed", err)
	}
	if _, err := snd.WriteBatch(nil, 0); err != nil {
		t.Fatalf("empty WriteBatch: %v", err)
	}
	snd.Close()
	if _, err := snd.WriteBatch(out, 0); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch on a closed conn: %v, want net.ErrClosed", err)
	}
}

// On a connected socket messages without an address go to the peer, and
// one to another address fails with net.ErrWriteToConnected.
func TestUDPBatchConnected(t *testing.T) {
	p := newPair(t)
	a, b := udpConns(t, p)
	ms := []ipv4.Message{{Buffers: [][]byte{payload(0)}}, {Buffers: [][]byte{payload(1)}, Addr: b.LocalAddr()}}
	if k, err := a.WriteBatch(ms, 0); k != 2 || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want 2, nil", k, err)
	}
	readN(t, b, 2, 0, a.LocalAddr())
	other := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 9}
	if k, err := a.WriteBatch([]ipv4.Message{{Buffers: [][]byte{payload(0)}, Addr: other}}, 0); k != 0 || !errors.Is(err, net.ErrWriteToConnected) {
		t.Fatalf("WriteBatch to another address = %d, %v; want 0, net.ErrWriteToConnected", k, err)
	}
	if _, err := a.ReadBatch(nil, 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("ReadBatch of no messages: %v, want EINVAL", err)
	}
	if _, err := a.ReadBatch([]ipv4.Message{{}}, 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("ReadBatch into no room: %v, want EINVAL", err)
	}
}

// A UDPConn ports code written for ipv4.PacketConn's batches: the same
// interface.
var _ interface {
	ReadBatch([]ipv4.Message, int) (int, error)
	WriteBatch([]ipv4.Message, int) (int, error)
} = (*netconn.UDPConn)(nil)

// A batch larger than the stack's outbound queue waits for it to drain
// instead of having the excess dropped: every datagram arrives.
func TestUDPBatchOutboundQueueFull(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	p := testnet.NewPair(t, func(a, b *core.Config) { a.OutboundQueueLen = 16 })
	snd, rcv := udpListeners(t, p)
	const n = 200
	ms := make([]ipv4.Message, n)
	for i := range ms {
		ms[i] = ipv4.Message{Buffers: [][]byte{payload(i % 20)}, Addr: rcv.LocalAddr()}
	}
	if k, err := snd.WriteBatch(ms, 0); k != n || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want %d, nil", k, err, n)
	}
	in := make([]ipv4.Message, 32)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	rcv.SetReadDeadline(time.Now().Add(20 * time.Second)) // a datagram dropped fails, not hangs
	for got := 0; got < n; {
		k, err := rcv.ReadBatch(in, 0)
		if err != nil {
			t.Fatalf("ReadBatch after %d datagrams: %v", got, err)
		}
		for _, m := range in[:k] {
			if want := payload((got) % 20); !bytes.Equal(m.Buffers[0][:m.N], want) {
				t.Fatalf("datagram %d: %d bytes, want %d", got, m.N, len(want))
			}
			got++
		}
	}
	if d := p.A.Stats().OutboundDrops; d != 0 {
		t.Fatalf("stack A dropped %d outbound packets, want 0", d)
	}
}

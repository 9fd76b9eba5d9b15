package core

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestACKHold: with a hold set, a pure ACK of less than a full segment of
// new data is held; the connection's next segment that acknowledges as
// far (data, a window update, a FIN) drops it, a second such ACK sends the
// held one first (delayed, never thinned), and the timer sends one that
// nothing covered, unchanged. Duplicate ACKs, ACKs of a full segment or
// with SACK blocks, and anything with no hold set go out at once. IPv4 and
// IPv6.
func TestACKHold(t *testing.T) {
	for _, c := range dsackCases {
		t.Run(c.name, func(t *testing.T) {
			l := newLinkEP(1500, 64)
			t.Cleanup(l.close)
			write := func(b []byte) {
				t.Helper()
				if _, err := l.writePkts([]*stack.PacketBuffer{outPacket(t, b)}); err != nil {
					t.Fatalf("writePkts: %v", err)
				}
			}
			// queued returns the ACK numbers and payload sizes queued.
			queued := func() (acks []uint32, sizes []int) {
				out := make([]*stack.PacketBuffer, 64)
				n := l.dequeue(out)
				for _, p := range out[:n] {
					acks = append(acks, header.TCP(p.TransportHeader().Slice()).AckNumber())
					sizes = append(sizes, p.Data().Size())
					p.DecRef()
				}
				return acks, sizes
			}
			want := func(what string, acks ...uint32) {
				t.Helper()
				got, _ := queued()
				if len(got) != len(acks) {
					t.Fatalf("%s: queued ACK numbers %v, want %v", what, got, acks)
				}
				for i := range got {
					if got[i] != acks[i] {
						t.Fatalf("%s: queued ACK numbers %v, want %v", what, got, acks)
					}
				}
			}
			ack := func(n uint32, opts []byte) []byte { return c.segment(true, header.TCPFlagAck, 1, n, opts, nil) }
			data := func(n uint32) []byte {
				return c.segment(true, header.TCPFlagAck|header.TCPFlagPsh, 1, n, nil, []byte("reply"))
			}

			write(data(1000))
			write(ack(1001, nil))
			want("no hold set", 1000, 1001)

			l.mu.Lock()
			l.acks.holdFor = time.Hour
			l.mu.Unlock()
			write(data(1001)) // the connection's first segment seen: tracked
			want("a first segment", 1001)
			write(ack(1002, nil))
			want("a request's ACK")
			write(data(1002))
			want("the reply after a held ACK", 1002)

			write(ack(1003, nil))
			write(ack(1004, nil))
			want("a second ACK", 1003)
			write(ack(1004, nil)) // a window update: nothing new acknowledged
			want("a window update after a held ACK", 1004)
			write(ack(1004, nil))
			want("a duplicate ACK", 1004)

			write(ack(1004+1460, nil))
			want("an ACK of a full segment", 1004+1460)
			write(ack(1004+1461, tsSACK(header.SACKBlock{Start: 5000, End: 6000})))
			want("an ACK with a SACK block", 1004+1461)

			write(ack(1004+1462, nil))
			write(c.segment(true, header.TCPFlagAck|header.TCPFlagFin, 1, 1004+1463, nil, nil))
			want("a FIN after a held ACK", 1004+1463)

			// Nothing covers it: the timer sends it.
			write(data(3000))
			write(ack(3001, nil))
			want("a request's ACK again", 3000)
			l.mu.Lock()
			l.acks.holdFor = time.Nanosecond
			l.mu.Unlock()
			l.ackHoldFired()
			acks, sizes := queued()
			if len(acks) != 1 || acks[0] != 3001 || sizes[0] != 0 {
				t.Fatalf("after the hold: queued ACK numbers %v, sizes %v; want the held ACK 3001", acks, sizes)
			}
			held, covered := l.ackHoldStats()
			if held != 5 || covered != 3 {
				t.Fatalf("held %d, covered %d; want 5, 3", held, covered)
			}
		})
	}
}

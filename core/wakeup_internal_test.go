package core

import (
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestNoLostWakeupPumpVersusRelease forces the interleaving suspected of
// losing a wake-up between two joined stacks: the outbound pump has done
// its last empty dequeue and still holds flushMu when the engine queues a
// packet (holding, so the enqueue signals nobody) and releases (its TryLock
// fails). release must then leave the pump a wake-up, so that the packet
// reaches the peer on the pump's next turn rather than waiting for the
// next unrelated packet.
func TestNoLostWakeupPumpVersusRelease(t *testing.T) {
	a := newIdleStack(t, "192.0.2.1/24")
	b := newIdleStack(t, "192.0.2.2/24")
	l := a.link
	l.peer.Store(b.link)
	drainSignal(l.ready)

	// The pump: its last dequeue found nothing; it still holds flushMu.
	l.flushMu.Lock()
	if err := l.flushToPeerLocked(b.link, true); err != nil {
		t.Fatal(err)
	}
	// The engine: a batch queues a packet, then releases.
	l.hold()
	var pkts stack.PacketBufferList
	pkts.PushBack(stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(udpPacket("hello"))}))
	if n, err := l.WritePackets(pkts); n != 1 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	pkts.DecRef()
	l.release()
	// The pump lets go of flushMu and waits for work: it must find some.
	l.flushMu.Unlock()
	select {
	case <-l.ready:
	default:
		t.Fatal("lost wake-up: the pump would sleep with a packet queued")
	}
	before := b.link.packetsIn.Load()
	if err := l.flushToPeer(b.link); err != nil {
		t.Fatal(err)
	}
	if got := b.link.packetsIn.Load() - before; got != 1 {
		t.Fatalf("peer received %d packets, want 1", got)
	}
}

func newIdleStack(t *testing.T, prefix string) *Netstack {
	ns, err := New(Config{Addrs: []netip.Prefix{netip.MustParsePrefix(prefix)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// A packet gVisor writes outside a holder's turn (a TCP processor's ACK,
// a timer's retransmit) reaches a joined peer inline, before WritePackets
// returns, with no pump in between; while another goroutine is
// delivering, it is left queued for that one (or the pump), in order.
//
// The test plays the deliverer holding flushMu around calls checklocks
// cannot follow, hence the escape.
//
// +checklocksignore
func TestPeerDeliveryInlineOutsideTurn(t *testing.T) {
	a := newIdleStack(t, "192.0.2.1/24")
	b := newIdleStack(t, "192.0.2.2/24")
	l := a.link
	l.peer.Store(b.link)
	write := func(payload string) { t.Helper(); writeUDPPacket(t, l, payload) }
	before := b.link.packetsIn.Load()
	write("inline")
	if got := b.link.packetsIn.Load() - before; got != 1 {
		t.Fatalf("peer received %d packets when WritePackets returned, want 1 (inline)", got)
	}
	drainSignal(l.ready)
	l.flushMu.Lock() // a pump is delivering
	write("queued")
	if got := b.link.packetsIn.Load() - before; got != 1 {
		t.Fatalf("peer received %d packets, want the second left queued for the deliverer", got)
	}
	if err := l.flushToPeerLocked(b.link, true); err != nil { // the deliverer's loop takes it
		t.Fatal(err)
	}
	l.flushMu.Unlock()
	if got := b.link.packetsIn.Load() - before; got != 2 {
		t.Fatalf("peer received %d packets, want 2", got)
	}
}

// writeUDPPacket writes one UDP packet carrying payload through the link,
// as gVisor's goroutines do.
func writeUDPPacket(t *testing.T, l *linkEP, payload string) {
	t.Helper()
	var pkts stack.PacketBufferList
	pkts.PushBack(stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(udpPacket(payload))}))
	if n, err := l.WritePackets(pkts); n != 1 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	pkts.DecRef()
}

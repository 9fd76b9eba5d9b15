package core

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// pullTestDev is a PullDevice (and a GSODevice that wants GSO, so the link
// hands out super-segments and leaves checksums to it) that the test reads
// through the Source the stack gives it. Nothing is ever written to it.
type pullTestDev struct {
	injectDev
	t      *testing.T
	source chan Source
}

func newPullTestDev(t *testing.T) *pullTestDev {
	return &pullTestDev{injectDev: newInjectDev(0), t: t, source: make(chan Source, 1)}
}

func (d *pullTestDev) SetSource(s Source) { d.source <- s }

func (d *pullTestDev) WantsGSO() bool { return true }

func (d *pullTestDev) WritePackets([][]byte) (int, error) {
	d.t.Error("the stack wrote to a PullDevice")
	return 0, nil
}

// TestPullDevice reads the stack's outbound UDP datagrams through a
// PullDevice's Source at an offset: each comes out whole with its checksum
// completed; one too large for its buffer is dropped and counted; a read
// ends with net.ErrClosed when its done channel closes and when the stack
// closes.
func TestPullDevice(t *testing.T) {
	defer goleak.VerifyNone(t)
	ns, err := New(Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	dev := newPullTestDev(t)
	if err := ns.AttachDevice(dev); err != nil {
		t.Fatal(err)
	}
	src := <-dev.source
	ctx, cancel, ch, h := runWithUDP(t, ns)
	defer cancel()
	to := netip.MustParseAddrPort("192.0.2.9:2000")
	for _, payload := range [][]byte{bytes.Repeat([]byte{'x'}, 1000), []byte("small")} {
		if _, err := ch.Request(ctx, h, UDPSend{To: to, Buf: payload}); err != nil {
			t.Fatal(err)
		}
	}

	const offset = 10
	bufs := [][]byte{make([]byte, offset+100), make([]byte, offset+100)}
	sizes := make([]int, 2)
	drops := ns.link.drops.Load()
	n, err := src.ReadPackets(nil, bufs, sizes, offset)
	if err != nil || n != 1 {
		t.Fatalf("ReadPackets = %d, %v; want the small datagram", n, err)
	}
	pkt := header.IPv4(bufs[0][offset : offset+sizes[0]])
	udp := header.UDP(pkt.Payload())
	xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, pkt.SourceAddress(), pkt.DestinationAddress(), uint16(len(udp)))
	if string(udp.Payload()) != "small" || checksum.Checksum(udp, xsum) != 0xffff {
		t.Fatalf("read %q, checksum valid %v", udp.Payload(), checksum.Checksum(udp, xsum) == 0xffff)
	}
	if got := ns.link.drops.Load() - drops; got != 1 {
		t.Fatalf("%d packets dropped, want 1 (too large for its buffer)", got)
	}

	if _, err := src.ReadPackets(nil, nil, nil, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ReadPackets without buffers = %v, want ErrInvalid", err)
	}
	done := make(chan struct{})
	time.AfterFunc(10*time.Millisecond, func() { close(done) })
	if _, err := src.ReadPackets(done, bufs, sizes, offset); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadPackets after done = %v, want net.ErrClosed", err)
	}
	errc := make(chan error, 1)
	go func() { _, err := src.ReadPackets(nil, bufs, sizes, offset); errc <- err }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	ns.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadPackets across Close = %v, want net.ErrClosed", err)
	}
}

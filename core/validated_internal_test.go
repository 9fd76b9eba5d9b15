package core

import (
	"net"
	"net/netip"
	"testing"

	"go.uber.org/goleak"
)

// validatedPkt is a packet a validatedTestDev reads, and whether it says
// the packet's checksums need no check.
type validatedPkt struct {
	b     []byte
	valid bool
}

// validatedTestDev is an offloadTestDev that is a ValidatedReader.
type validatedTestDev struct {
	offloadTestDev
	vin chan validatedPkt
}

func (d *validatedTestDev) ReadPacketsValidated(bufs [][]byte, sizes []int, valid []bool) (int, error) {
	select {
	case p := <-d.vin:
		sizes[0] = copy(bufs[0], p.b)
		valid[0] = p.valid
		return 1, nil
	case <-d.closed:
		return 0, net.ErrClosed
	}
}

// TestValidatedReaderTrustsMarkedPackets reads, through a ValidatedReader,
// datagrams whose UDP checksum is wrong: the one marked valid (as a TUN
// marks a super-segment whose checksum the kernel left partial) is
// delivered, in its place among the others; the unmarked one is dropped
// and counted; the link trusts nothing afterwards.
func TestValidatedReaderTrustsMarkedPackets(t *testing.T) {
	defer goleak.VerifyNone(t)
	ns, err := New(Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	dev := &validatedTestDev{offloadTestDev: offloadTestDev{injectDev: newInjectDev(1)}, vin: make(chan validatedPkt, 16)}
	if err := ns.AttachDevice(dev); err != nil {
		t.Fatal(err)
	}
	ctx, cancel, ch, h := runWithUDP(t, ns)
	defer cancel()
	stats := ns.s.Stats()

	wrong := func(payload string) []byte {
		p := udpPacket(payload)
		p[len(p)-1] ^= 0x40
		return p
	}
	dev.vin <- validatedPkt{b: udpPacket("first")}
	dev.vin <- validatedPkt{b: wrong("dropped")}
	dev.vin <- validatedPkt{b: wrong("trusted"), valid: true}
	dev.vin <- validatedPkt{b: udpPacket("last")}
	want := []string{"first", "truste$", "last"} // 'd' ^ 0x40 = '$'
	for _, w := range want {
		buf := make([]byte, 64)
		resp, err := ch.Request(ctx, h, UDPRecv{Buf: buf})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:resp.(UDPRecvd).N]); got != w {
			t.Fatalf("received %q, want %q", got, w)
		}
	}
	eventually(t, "UDP checksum error counted", func() bool { return stats.UDP.ChecksumErrors.Value() == 1 })
	if ns.link.off.trusted.Load() {
		t.Fatal("link left trusting inbound checksums")
	}
}

package core

import (
	"errors"
	"net/netip"
	"testing"

	"go.uber.org/goleak"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Devices with each combination of the abilities that decide GSO.
type (
	// optOutDev is an OffloadDevice whose WantsGSO says no.
	optOutDev struct{ offloadTestDev }
	// plainPullDev is a PullDevice that is not a GSODevice.
	plainPullDev struct {
		injectDev
		source chan Source
	}
	// cannotGSODev wants GSO but has no way to take super-segments.
	cannotGSODev struct{ injectDev }
	// pushPullGSODev is a PullDevice and PushDevice that wants GSO, as
	// tundev.Virtual is.
	pushPullGSODev struct {
		*pullTestDev
		recv chan Receiver
	}
)

func (*optOutDev) WantsGSO() bool                { return false }
func (d *plainPullDev) SetSource(s Source)       { d.source <- s }
func (*cannotGSODev) WantsGSO() bool             { return true }
func (d *pushPullGSODev) SetReceiver(r Receiver) { d.recv <- r }
func (d *pushPullGSODev) ReadPackets([][]byte, []int) (int, error) {
	d.t.Error("the stack read a PushDevice")
	return 0, nil
}

// TestGSOAbility attaches a device of each kind and checks what GSO it
// gets: super-segments (the link's SupportedGSO, the write method the
// outbound pump uses) and GRO on the way in (the Receiver's), and that a
// device that wants GSO but cannot take super-segments is refused.
func TestGSOAbility(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dev     func(t *testing.T) Device
		wantGSO bool
		wantErr error
	}{
		{"Plain", func(*testing.T) Device { d := newInjectDev(0); return &d }, false, nil},
		{"OffloadDevice", func(*testing.T) Device { return &offloadTestDev{injectDev: newInjectDev(0)} }, true, nil},
		{"OffloadDeviceOptedOut", func(*testing.T) Device { return &optOutDev{offloadTestDev{injectDev: newInjectDev(0)}} }, false, nil},
		{"PullDevice", func(*testing.T) Device { return &plainPullDev{newInjectDev(0), make(chan Source, 1)} }, false, nil},
		{"PullGSODevice", func(t *testing.T) Device { return newPullTestDev(t) }, true, nil},
		{"PushPullGSODevice", func(t *testing.T) Device { return &pushPullGSODev{newPullTestDev(t), make(chan Receiver, 1)} }, true, nil},
		{"GSODeviceWithoutAWay", func(*testing.T) Device { return &cannotGSODev{newInjectDev(0)} }, false, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			ns, err := New(Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Close()
			dev := tc.dev(t)
			err = ns.AttachDevice(dev)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("AttachDevice = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				dev.Close()
				plain := newInjectDev(0)
				if err := ns.AttachDevice(&plain); err != nil {
					t.Fatalf("AttachDevice after a refused one = %v: the refused device stayed attached", err)
				}
			}
			if got := ns.link.SupportedGSO() == stack.HostGSOSupported; got != tc.wantGSO {
				t.Errorf("link advertises host GSO: %v, want %v", got, tc.wantGSO)
			}
			if d, ok := dev.(*pushPullGSODev); ok {
				if r := (<-d.recv).(*receiver); r.offload != tc.wantGSO {
					t.Errorf("Receiver coalesces (GRO): %v, want %v", r.offload, tc.wantGSO)
				}
			}
			if od, ok := dev.(interface{ gsoWritten() (plain, gso int64) }); ok {
				checkWriteMethod(t, ns, od, tc.wantGSO)
			}
		})
	}
}

func (d *offloadTestDev) gsoWritten() (plain, gso int64) { return d.writes.Load(), d.gsoWrites.Load() }

// checkWriteMethod sends a datagram out and checks that the outbound pump
// wrote it with WritePacketsGSO if gso, else with WritePackets.
func checkWriteMethod(t *testing.T, ns *Netstack, dev interface{ gsoWritten() (int64, int64) }, gso bool) {
	t.Helper()
	ctx, cancel, ch, h := runWithUDP(t, ns)
	defer cancel()
	if _, err := ch.Request(ctx, h, UDPSend{To: netip.MustParseAddrPort("192.0.2.9:2000"), Buf: []byte("out")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the datagram written", func() bool { p, g := dev.gsoWritten(); return p+g > 0 })
	if p, g := dev.gsoWritten(); (g > 0) != gso || (p > 0) == gso {
		t.Errorf("WritePackets %d times, WritePacketsGSO %d times; want GSO %v", p, g, gso)
	}
}

package core

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/netcore-go/netcore/core/gso"
	"go.uber.org/goleak"
)

// pushTestDev is a PushDevice that is never read: the test pushes packets
// through the Receiver the stack gives it.
type pushTestDev struct {
	t        *testing.T
	receiver chan Receiver
	closed   chan struct{}
	once     sync.Once
}

func newPushTestDev(t *testing.T) *pushTestDev {
	return &pushTestDev{t: t, receiver: make(chan Receiver, 1), closed: make(chan struct{})}
}

func (d *pushTestDev) SetReceiver(r Receiver) { d.receiver <- r }

func (d *pushTestDev) ReadPackets([][]byte, []int) (int, error) {
	d.t.Error("the stack read a PushDevice")
	<-d.closed
	return 0, net.ErrClosed
}

func (d *pushTestDev) WritePackets(pkts [][]byte) (int, error) { return len(pkts), nil }
func (d *pushTestDev) BatchSize() int                          { return 8 }
func (d *pushTestDev) Close() error                            { d.once.Do(func() { close(d.closed) }); return nil }

// pushOffloadDev is the same as an OffloadDevice: its packets go through
// the coalescer.
type pushOffloadDev struct{ *pushTestDev }

func (d pushOffloadDev) WritePacketsGSO(pkts [][]byte, _ []gso.Options) (int, error) {
	return len(pkts), nil
}

// TestPushDevice pushes UDP datagrams, among malformed packets, through a
// PushDevice's Receiver from several goroutines at once, at an offset as
// wireguard-go lays them out: every datagram arrives, and the stack runs no
// inbound pump. After Close, Receive fails with net.ErrClosed.
func TestPushDevice(t *testing.T) {
	for _, offload := range []bool{false, true} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) {
			defer goleak.VerifyNone(t)
			ns, err := New(Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Close()
			base := newPushTestDev(t)
			var dev Device = base
			if offload {
				dev = pushOffloadDev{base}
			}
			if err := ns.AttachDevice(dev); err != nil {
				t.Fatal(err)
			}
			r := <-base.receiver
			ctx, cancel, ch, h := runWithUDP(t, ns)
			defer cancel()

			const writers, each, offset = 4, 50, 16
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						bufs := [][]byte{
							append(make([]byte, offset), udpPacket(fmt.Sprintf("%d-%d", w, i))...),
							append(make([]byte, offset), 0x45), // malformed
							make([]byte, offset/2),             // shorter than the offset
						}
						if err := r.Receive(bufs, offset); err != nil {
							t.Errorf("Receive: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			seen := map[string]bool{}
			buf := make([]byte, 64)
			for len(seen) < writers*each {
				resp, err := ch.Request(ctx, h, UDPRecv{Buf: buf})
				if err != nil {
					t.Fatalf("after %d datagrams: %v", len(seen), err)
				}
				seen[string(buf[:resp.(UDPRecvd).N])] = true
			}
			if got := ns.link.invalidIn.Load() + ns.s.Stats().IP.MalformedPacketsReceived.Value(); got != 2*writers*each {
				t.Errorf("%d malformed packets counted, want %d", got, 2*writers*each)
			}

			cancel()
			ns.Close()
			if err := r.Receive([][]byte{udpPacket("late")}, 0); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Receive after Close = %v, want net.ErrClosed", err)
			}
		})
	}
}

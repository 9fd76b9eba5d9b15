package core_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"
	"sync"

	"github.com/netcore-go/netcore/core"
)

// cable is one end of a crossover cable between two stacks. It is a
// PullDevice and a PushDevice: its own goroutine reads the stack's packets
// from a Source and hands the other stack's to a Receiver, so the stack
// runs no pumps for it.
type cable struct {
	source   chan core.Source
	receiver chan core.Receiver
	done     chan struct{}
	once     sync.Once
}

func newCable() *cable {
	return &cable{source: make(chan core.Source, 1), receiver: make(chan core.Receiver, 1), done: make(chan struct{})}
}

func (c *cable) SetSource(s core.Source)     { c.source <- s }
func (c *cable) SetReceiver(r core.Receiver) { c.receiver <- r }
func (c *cable) BatchSize() int              { return 64 }
func (c *cable) Close() error                { c.once.Do(func() { close(c.done) }); return nil }

// ReadPackets and WritePackets complete core.Device; an attached stack
// calls neither.
func (c *cable) ReadPackets([][]byte, []int) (int, error) { <-c.done; return 0, net.ErrClosed }
func (c *cable) WritePackets(p [][]byte) (int, error)     { return len(p), nil }

// carry moves batches from one stack's Source to the other's Receiver
// until either stack or the cable end closes.
func carry(from core.Source, to core.Receiver, done <-chan struct{}) {
	bufs, sizes := make([][]byte, 64), make([]int, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 1500)
	}
	pkts := make([][]byte, len(bufs))
	for {
		n, err := from.ReadPackets(done, bufs, sizes, 0)
		if err != nil {
			return
		}
		for i := range n {
			pkts[i] = bufs[i][:sizes[i]]
		}
		if to.Receive(pkts[:n], 0) != nil {
			return
		}
	}
}

// Join two stacks with a device of your own that moves packets itself: a
// PullDevice and PushDevice, as tundev.Virtual is for wireguard-go.
func ExamplePullDevice() {
	a, err := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	endA, endB := newCable(), newCable()
	if err := a.AttachDevice(endA); err != nil {
		log.Fatal(err)
	}
	if err := b.AttachDevice(endB); err != nil {
		log.Fatal(err)
	}
	srcA, recvA, srcB, recvB := <-endA.source, <-endA.receiver, <-endB.source, <-endB.receiver
	go carry(srcA, recvB, endA.done)
	go carry(srcB, recvA, endB.done)
	ctx := context.Background()
	go a.Run(ctx)
	go b.Run(ctx)

	chA, chB := a.CommandChannel(), b.CommandChannel()
	resp, _ := chB.Request(ctx, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("10.0.0.2:53")})
	server := resp.(core.UDPBound).Handle
	resp, _ = chA.Request(ctx, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("10.0.0.1:1000")})
	chA.Request(ctx, resp.(core.UDPBound).Handle, core.UDPSend{To: netip.MustParseAddrPort("10.0.0.2:53"), Buf: []byte("hello")})
	buf := make([]byte, 64)
	resp, err = chB.Request(ctx, server, core.UDPRecv{Buf: buf})
	if err != nil {
		log.Fatal(err)
	}
	got := resp.(core.UDPRecvd)
	fmt.Printf("%q from %v\n", buf[:got.N], got.From)
	// Output: "hello" from 10.0.0.1:1000
}

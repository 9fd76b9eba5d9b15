package core_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"
	"sync"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/gso"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// partialDev reads packets whose transport checksum is partial (the
// pseudo-header's only, as a kernel TUN hands them over with NEEDS_CSUM),
// and vouches for them as a ValidatedReader.
type partialDev struct {
	in   chan []byte
	done chan struct{}
	once sync.Once
}

func (d *partialDev) ReadPacketsValidated(bufs [][]byte, sizes []int, valid []bool) (int, error) {
	select {
	case p := <-d.in:
		sizes[0], valid[0] = copy(bufs[0], p), true
		return 1, nil
	case <-d.done:
		return 0, net.ErrClosed
	}
}

func (d *partialDev) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	return d.ReadPacketsValidated(bufs, sizes, make([]bool, len(bufs)))
}
func (d *partialDev) WritePackets(p [][]byte) (int, error)                     { return len(p), nil }
func (d *partialDev) WritePacketsGSO(p [][]byte, _ []gso.Options) (int, error) { return len(p), nil }
func (d *partialDev) BatchSize() int                                           { return 1 }
func (d *partialDev) Close() error                                             { d.once.Do(func() { close(d.done) }); return nil }

// partialUDP is a UDP datagram from 10.0.0.9:5000 to 10.0.0.1:53 whose
// checksum covers the pseudo-header only.
func partialUDP(payload string) []byte {
	src, dst := tcpip.AddrFrom4([4]byte{10, 0, 0, 9}), tcpip.AddrFrom4([4]byte{10, 0, 0, 1})
	p := make([]byte, header.IPv4MinimumSize+header.UDPMinimumSize+len(payload))
	ip := header.IPv4(p)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(p)), TTL: 64, Protocol: uint8(header.UDPProtocolNumber), SrcAddr: src, DstAddr: dst})
	ip.SetChecksum(^ip.CalculateChecksum())
	udp := header.UDP(p[header.IPv4MinimumSize:])
	udp.Encode(&header.UDPFields{SrcPort: 5000, DstPort: 53, Length: uint16(len(udp))})
	copy(udp.Payload(), payload)
	udp.SetChecksum(header.PseudoHeaderChecksum(header.UDPProtocolNumber, src, dst, uint16(len(udp))))
	return p
}

// A device that vouches for its packets' checksums (a kernel TUN with
// offloads does for TCP super-segments) has them delivered as they are,
// where a packet read with ReadPackets would be checked and dropped.
func ExampleValidatedReader() {
	ns, err := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		log.Fatal(err)
	}
	defer ns.Close()
	dev := &partialDev{in: make(chan []byte, 1), done: make(chan struct{})}
	if err := ns.AttachDevice(dev); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	go ns.Run(ctx)
	ch := ns.CommandChannel()
	resp, err := ch.Request(ctx, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("10.0.0.1:53")})
	if err != nil {
		log.Fatal(err)
	}
	dev.in <- partialUDP("trusted")
	buf := make([]byte, 64)
	resp, err = ch.Request(ctx, resp.(core.UDPBound).Handle, core.UDPRecv{Buf: buf})
	if err != nil {
		log.Fatal(err)
	}
	got := resp.(core.UDPRecvd)
	fmt.Printf("%q from %v\n", buf[:got.N], got.From)
	// Output: "trusted" from 10.0.0.9:5000
}

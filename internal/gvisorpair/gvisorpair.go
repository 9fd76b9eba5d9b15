// Package gvisorpair builds the reference topology netcore is measured
// against: two plain gVisor stacks on link/channel endpoints, joined by two
// forwarding goroutines, configured as core configures its own stacks
// (SACK on, the same TCP buffer sizes). Benchmarks put gVisor's gonet
// adapters on it beside netcore's.
package gvisorpair

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// The settings core gives its stacks by default (core.Config), which the
// pair copies; TestSettingsMatchCore keeps them in step.
const (
	// TCPBuffer is the default TCP send and receive buffer.
	TCPBuffer = 4 << 20
	// TCPMaxBuffer is the most a TCP buffer grows to.
	TCPMaxBuffer = 8 << 20
	// UDPRecvBuffer is the UDP receive buffer.
	UDPRecvBuffer = 1 << 20
	// QueueLen is the channel endpoints' queue, as core's outbound queue.
	QueueLen = 4096
)

// NIC is the id of each stack's one NIC.
const NIC tcpip.NICID = 1

// Pair is two running gVisor stacks joined by forwarding goroutines.
type Pair struct {
	A, B   *stack.Stack
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New makes two IPv4 stacks at addrA and addrB (each a /24 with a default
// route through its NIC) with the given MTU, and starts forwarding.
func New(addrA, addrB netip.Addr, mtu int) (*Pair, error) {
	sa, ea, err := newStack(addrA, mtu)
	if err != nil {
		return nil, err
	}
	sb, eb, err := newStack(addrB, mtu)
	if err != nil {
		closeStacks(sa)
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pair{A: sa, B: sb, cancel: cancel}
	p.wg.Go(func() { forward(ctx, ea, eb) })
	p.wg.Go(func() { forward(ctx, eb, ea) })
	return p, nil
}

// Close stops forwarding and closes both stacks, waiting for their
// goroutines.
func (p *Pair) Close() {
	p.cancel()
	p.wg.Wait()
	closeStacks(p.A, p.B)
}

// FullAddr converts an IPv4 address and port on the pair's NIC.
func FullAddr(ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: NIC, Addr: tcpip.AddrFrom4(ap.Addr().As4()), Port: ap.Port()}
}

func newStack(addr netip.Addr, mtu int) (*stack.Stack, *channel.Endpoint, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	sack := tcpip.TCPSACKEnabled(true)
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4096, Default: TCPBuffer, Max: TCPMaxBuffer}
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4096, Default: TCPBuffer, Max: TCPMaxBuffer}
	for _, opt := range []tcpip.SettableTransportProtocolOption{&sack, &snd, &rcv} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			closeStacks(s)
			return nil, nil, fmt.Errorf("tcp option %T: %s", opt, err)
		}
	}
	ep := channel.New(QueueLen, uint32(mtu), "")
	if err := s.CreateNIC(NIC, ep); err != nil {
		closeStacks(s)
		return nil, nil, fmt.Errorf("create NIC: %s", err)
	}
	pa := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(addr.As4()), PrefixLen: 24},
	}
	if err := s.AddProtocolAddress(NIC, pa, stack.AddressProperties{}); err != nil {
		closeStacks(s)
		return nil, nil, fmt.Errorf("add address: %s", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: NIC}})
	return s, ep, nil
}

func closeStacks(stacks ...*stack.Stack) {
	for _, s := range stacks {
		s.Close()
		s.Wait()
	}
}

// forward copies every packet from's stack sends into to's stack.
func forward(ctx context.Context, from, to *channel.Endpoint) {
	for {
		pkt := from.ReadContext(ctx)
		if pkt == nil {
			return
		}
		in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(pkt.ToView())})
		to.InjectInbound(pkt.NetworkProtocolNumber, in)
		in.DecRef()
		pkt.DecRef()
	}
}

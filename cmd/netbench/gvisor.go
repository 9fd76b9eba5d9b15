package main

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// gstackQueue is the channel endpoints' queue length, as netcore's
// outbound queue.
const gstackQueue = 4096

// newGStack makes a gVisor stack configured as netcore configures its own:
// SACK, 1 MiB default TCP buffers growing to 8 MiB.
func newGStack(addr netip.Addr, mtu int) (*stack.Stack, *channel.Endpoint, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	sack := tcpip.TCPSACKEnabled(true)
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4096, Default: 1 << 20, Max: 8 << 20}
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4096, Default: 1 << 20, Max: 8 << 20}
	for _, opt := range []tcpip.SettableTransportProtocolOption{&sack, &snd, &rcv} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return nil, nil, tcpipErr("tcp option", err)
		}
	}
	ep := channel.New(gstackQueue, uint32(mtu), "")
	if err := s.CreateNIC(1, ep); err != nil {
		return nil, nil, tcpipErr("create NIC", err)
	}
	pa := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(addr.As4()), PrefixLen: 24},
	}
	if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
		return nil, nil, tcpipErr("add address", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}})
	return s, ep, nil
}

type tcpipError struct {
	op  string
	err tcpip.Error
}

func (e *tcpipError) Error() string { return e.op + ": " + e.err.String() }

func tcpipErr(op string, err tcpip.Error) error { return &tcpipError{op, err} }

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

func fullAddr(ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(ap.Addr().As4()), Port: ap.Port()}
}

// startGonet joins two gVisor stacks with forwarding goroutines.
func startGonet(mtu int) (*env, error) {
	sa, ea, err := newGStack(addrA, mtu)
	if err != nil {
		return nil, err
	}
	sb, eb, err := newGStack(addrB, mtu)
	if err != nil {
		sa.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { forward(ctx, ea, eb) })
	wg.Go(func() { forward(ctx, eb, ea) })
	stop := func() {
		cancel()
		wg.Wait()
		for _, s := range []*stack.Stack{sa, sb} {
			s.Close()
			s.Wait()
		}
	}
	return gonetEnv(sa, sb, stop), nil
}

func gonetEnv(sa, sb *stack.Stack, stop func()) *env {
	serve := fullAddr(netip.AddrPortFrom(addrB, 0))
	return &env{
		listen: func() (net.Listener, error) { return gonet.ListenTCP(sb, serve, ipv4.ProtocolNumber) },
		dial: func(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
			return gonet.DialContextTCP(ctx, sa, fullAddr(to), ipv4.ProtocolNumber)
		},
		listenUDP: func() (net.PacketConn, error) { return gonetUDP(sb, serve) },
		dialUDP: func(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
			raddr := fullAddr(to)
			return gonet.DialUDP(sa, nil, &raddr, ipv4.ProtocolNumber)
		},
		close: stop,
	}
}

// gonetUDP binds a UDP endpoint with netcore's receive buffer size.
func gonetUDP(s *stack.Stack, addr tcpip.FullAddress) (net.PacketConn, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, tcpipErr("udp endpoint", terr)
	}
	ep.SocketOptions().SetReceiveBufferSize(udpRecvBuffer, true)
	if terr := ep.Bind(addr); terr != nil {
		ep.Close()
		return nil, tcpipErr("udp bind", terr)
	}
	return gonet.NewUDPConn(&wq, ep), nil
}

// startWGNetstack joins two wireguard-go netstack devices with shuttles.
func startWGNetstack() (*env, error) {
	const mtu = 1500
	ta, na, err := netstack.CreateNetTUN([]netip.Addr{addrA}, nil, mtu)
	if err != nil {
		return nil, err
	}
	tb, nb, err := netstack.CreateNetTUN([]netip.Addr{addrB}, nil, mtu)
	if err != nil {
		ta.Close()
		return nil, err
	}
	wait := joinShuttle(ta, tb)
	stop := func() {
		time.Sleep(50 * time.Millisecond) // its Close races its own writer: let it go quiet
		ta.Close()
		tb.Close()
		wait()
	}
	serve := netip.AddrPortFrom(addrB, 0)
	return &env{
		listen: func() (net.Listener, error) { return nb.ListenTCPAddrPort(serve) },
		dial: func(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
			return na.DialContextTCPAddrPort(ctx, to)
		},
		listenUDP: func() (net.PacketConn, error) { return nb.ListenUDPAddrPort(serve) },
		dialUDP: func(_ context.Context, to netip.AddrPort) (net.Conn, error) {
			return na.DialUDPAddrPort(netip.AddrPort{}, to)
		},
		close: stop,
	}, nil
}

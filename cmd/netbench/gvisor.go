package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/netcore-go/netcore/internal/gvisorpair"
	"github.com/netcore-go/netcore/tundev/tundevtest"
	"golang.zx2c4.com/wireguard/tun/netstack"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// startGonet joins two gVisor stacks with forwarding goroutines.
func startGonet(mtu int) (*env, error) {
	p, err := gvisorpair.New(addrA, addrB, mtu)
	if err != nil {
		return nil, err
	}
	return gonetEnv(p.A, p.B, p.Close), nil
}

func gonetEnv(sa, sb *stack.Stack, stop func()) *env {
	serve := gvisorpair.FullAddr(netip.AddrPortFrom(addrB, 0))
	return &env{
		listen: func() (net.Listener, error) {
			return asIface[net.Listener](gonet.ListenTCP(sb, serve, ipv4.ProtocolNumber))
		},
		dial: func(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
			return asIface[net.Conn](gonet.DialContextTCP(ctx, sa, gvisorpair.FullAddr(to), ipv4.ProtocolNumber))
		},
		listenUDP: func() (net.PacketConn, error) { return gonetUDP(sb, serve) },
		dialUDP: func(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
			raddr := gvisorpair.FullAddr(to)
			return asIface[net.Conn](gonet.DialUDP(sa, nil, &raddr, ipv4.ProtocolNumber))
		},
		close: stop,
		retransmits: func() uint64 {
			return sa.Stats().TCP.Retransmits.Value() + sb.Stats().TCP.Retransmits.Value()
		},
	}
}

// gonetUDP binds a UDP endpoint with netcore's receive buffer size.
func gonetUDP(s *stack.Stack, addr tcpip.FullAddress) (net.PacketConn, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, fmt.Errorf("udp endpoint: %s", terr)
	}
	ep.SocketOptions().SetReceiveBufferSize(udpRecvBuffer, true)
	if terr := ep.Bind(addr); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("udp bind: %s", terr)
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
	wait := tundevtest.Join(ta, tb)
	stop := func() {
		time.Sleep(50 * time.Millisecond) // its Close races its own writer: let it go quiet
		// Closing one ends the join, which closes the other.
		ta.Close()
		wait()
	}
	serve := netip.AddrPortFrom(addrB, 0)
	return &env{
		listen: func() (net.Listener, error) { return asIface[net.Listener](nb.ListenTCPAddrPort(serve)) },
		dial: func(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
			return asIface[net.Conn](na.DialContextTCPAddrPort(ctx, to))
		},
		listenUDP: func() (net.PacketConn, error) { return asIface[net.PacketConn](nb.ListenUDPAddrPort(serve)) },
		dialUDP: func(_ context.Context, to netip.AddrPort) (net.Conn, error) {
			return asIface[net.Conn](na.DialUDPAddrPort(netip.AddrPort{}, to))
		},
		close: stop,
	}, nil
}

// asIface returns c as an I, or a nil I with a non-nil err: gonet and
// wireguard-go's netstack return concrete pointers, and a nil pointer put
// in an interface makes a non-nil interface. C must implement I.
func asIface[I, C any](c C, err error) (I, error) {
	if err != nil {
		var none I
		return none, err
	}
	return any(c).(I), nil
}

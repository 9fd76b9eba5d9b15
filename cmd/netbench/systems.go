package main

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/internal/gvisorpair"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/tundev"
	"github.com/netcore-go/netcore/tundev/tundevtest"
)

// env is one fresh instance of a system under test: a client side and a
// server side that can reach each other, and the calls the workloads need.
type env struct {
	// listen listens for TCP on the server side, on an ephemeral port.
	listen func() (net.Listener, error)
	// dial connects from the client side to a server-side address.
	dial func(ctx context.Context, to netip.AddrPort) (net.Conn, error)
	// listenUDP opens a UDP socket on the server side, on an ephemeral port.
	listenUDP func() (net.PacketConn, error)
	// dialUDP opens a connected UDP socket on the client side.
	dialUDP func(ctx context.Context, to netip.AddrPort) (net.Conn, error)
	// close tears the instance down; it waits for its goroutines.
	close func()
	// fdLimited: every socket is a file descriptor (the kernel), so the
	// idle workload caps its pairs by the open-file limit.
	fdLimited bool
	// retransmits, where the system can tell, returns the TCP segments
	// both sides have retransmitted since the instance started (the
	// kernel's count is machine-wide, and wireguard-go's netstack hides
	// its stack: nil).
	retransmits func() uint64
}

// system is one contender: a name, its MTU and how to build a fresh env.
type system struct {
	name  string
	mtu   int
	about string
	start func() (*env, error)
}

// allSystems lists every contender in report order.
func allSystems() []system {
	return []system{
		{"kernel", 65536, "Go net over 127.0.0.1 (kernel loopback)", startKernel},
		{"gonet", 1500, "two gVisor stacks, link/channel endpoints joined by goroutines, adapters/gonet", func() (*env, error) { return startGonet(1500) }},
		{"gonet-64k", 65535, "the same at MTU 65535", func() (*env, error) { return startGonet(65535) }},
		{"wgnetstack", 1500, "two wireguard-go tun/netstack devices joined by a batch shuttle", startWGNetstack},
		{"netcore", 1500, "two netcore stacks on core.JoinPipe, dialer/listener", startNetcore},
		{"netcore-wg-virtual", 1500, "two netcore stacks on tundev.Virtual joined by the batch shuttle", startNetcoreVirtual},
	}
}

// addrPort turns a listener's or socket's address into a netip.AddrPort.
func addrPort(a net.Addr) netip.AddrPort {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return ap
}

func startKernel() (*env, error) {
	var d net.Dialer
	return &env{
		listen: func() (net.Listener, error) { return net.Listen("tcp4", "127.0.0.1:0") },
		dial: func(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
			return d.DialContext(ctx, "tcp4", to.String())
		},
		listenUDP: func() (net.PacketConn, error) {
			pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err == nil {
				pc.(*net.UDPConn).SetReadBuffer(udpRecvBuffer)
			}
			return pc, err
		},
		dialUDP: func(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
			return d.DialContext(ctx, "udp4", to.String())
		},
		close:     func() {},
		fdLimited: true,
	}, nil
}

// udpRecvBuffer is the UDP receive buffer every system gets where it can be
// set: netcore's default (the kernel caps it at net.core.rmem_max).
const udpRecvBuffer = gvisorpair.UDPRecvBuffer

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
)

// netcorePair starts two stacks (A dials, B serves) and returns them with
// a func that closes both and waits for Run.
func netcorePair(mtu int) (a, b *core.Netstack, stop func(), err error) {
	return netcorePairConfig(core.Config{MTU: mtu})
}

// netcorePairConfig is netcorePair with both stacks on cfg (addresses
// added).
func netcorePairConfig(cfg core.Config) (a, b *core.Netstack, stop func(), err error) {
	var stacks []*core.Netstack
	var dones []chan error
	stop = func() {
		for i, ns := range stacks {
			ns.Close()
			<-dones[i]
		}
	}
	for _, addr := range []netip.Addr{addrA, addrB} {
		c := cfg
		c.Addrs = []netip.Prefix{netip.PrefixFrom(addr, 24)}
		ns, err := core.New(c)
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		done := make(chan error, 1)
		go func() { done <- ns.Run(context.Background()) }()
		stacks, dones = append(stacks, ns), append(dones, done)
	}
	return stacks[0], stacks[1], stop, nil
}

// netcoreEnv is the env of two stacks, whatever joins them.
func netcoreEnv(a, b *core.Netstack, stop func()) *env {
	d := &dialer.Dialer{Channel: a.CommandChannel()}
	chB := b.CommandChannel()
	serve := net.JoinHostPort(addrB.String(), "0")
	return &env{
		listen: func() (net.Listener, error) { return listener.Listen(chB, "tcp4", serve) },
		dial: func(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
			return d.DialContext(ctx, "tcp4", to.String())
		},
		listenUDP: func() (net.PacketConn, error) { return listener.ListenPacket(chB, "udp4", serve) },
		dialUDP: func(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
			return d.DialContext(ctx, "udp4", to.String())
		},
		close:       stop,
		retransmits: func() uint64 { return a.Stats().TCPRetransmits + b.Stats().TCPRetransmits },
	}
}

func startNetcore() (*env, error) {
	a, b, stop, err := netcorePair(1500)
	if err != nil {
		return nil, err
	}
	if err := core.JoinPipe(a, b, 0); err != nil {
		stop()
		return nil, err
	}
	return netcoreEnv(a, b, stop), nil
}

func startNetcoreVirtual() (*env, error) {
	const mtu = 1500
	a, b, stop, err := netcorePair(mtu)
	if err != nil {
		return nil, err
	}
	va, vb := tundev.NewVirtual(tundev.VirtualConfig{MTU: mtu}), tundev.NewVirtual(tundev.VirtualConfig{MTU: mtu})
	if err := errors.Join(a.AttachDevice(va), b.AttachDevice(vb)); err != nil {
		va.Close()
		vb.Close()
		stop()
		return nil, err
	}
	wait := tundevtest.Join(va, vb)
	return netcoreEnv(a, b, func() { va.Close(); wait(); stop() }), nil // the join closes vb
}

// withTimeout runs f with a context that ends after d.
func withTimeout[T any](d time.Duration, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return f(ctx)
}

package core_test

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

var farAddr = netip.MustParseAddrPort("198.51.100.7:80")

// forwardPair is a Pair whose B forwards every address.
func forwardPair(t *testing.T, fc core.ForwardConfig) testnet.Pair {
	leakCheck(t)
	return testnet.NewPair(t, func(_, b *core.Config) { b.Forward = &fc })
}

func TestForwardCommandErrors(t *testing.T) {
	p := forwardPair(t, core.ForwardConfig{})
	if _, err := try(p.A.CommandChannel(), core.NoHandle, core.ForwardOpen{}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("ForwardOpen without Config.Forward: %v, want ErrInvalid", err)
	}
	b := p.B.CommandChannel()
	fw := do[core.ForwardOpened](t, b, core.NoHandle, core.ForwardOpen{}).Handle
	if _, err := try(b, core.NoHandle, core.ForwardOpen{}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("a second ForwardOpen: %v, want ErrInvalid", err)
	}
	for _, v := range []core.ForwardVerdict{{ID: 99, Verdict: core.Accept}, {ID: 1, Verdict: 0}, {ID: 1, Verdict: 9}} {
		if _, err := try(b, fw, v); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("%+v: %v, want ErrInvalid", v, err)
		}
	}
	if _, err := try(b, fw, core.TCPRecv{Buf: make([]byte, 1)}); !errors.Is(err, core.ErrWrongKind) {
		t.Fatalf("TCPRecv on the forwarder: %v, want ErrWrongKind", err)
	}
	u := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("0.0.0.0:0")}).Handle
	if _, err := try(b, u, core.ForwardAccept{}); !errors.Is(err, core.ErrWrongKind) {
		t.Fatalf("ForwardAccept on a UDP socket: %v, want ErrWrongKind", err)
	}
	do[core.OK](t, b, fw, core.CloseSocket{})
	do[core.ForwardOpened](t, b, core.NoHandle, core.ForwardOpen{}) // open again after a close
}

// TestForwardCloseRefusesPending checks that closing the forwarder resets
// a flow waiting for its verdict: the client hears ECONNREFUSED.
func TestForwardCloseRefusesPending(t *testing.T) {
	p := forwardPair(t, core.ForwardConfig{})
	b := p.B.CommandChannel()
	fw := do[core.ForwardOpened](t, b, core.NoHandle, core.ForwardOpen{}).Handle
	dialed := make(chan error, 1)
	go func() {
		_, err := try(p.A.CommandChannel(), core.NoHandle, core.TCPConnect{Remote: farAddr})
		dialed <- err
	}()
	fl := do[core.Flow](t, b, fw, core.ForwardAccept{})
	if fl.Proto != core.FlowTCP || fl.Handle.IsValid() || fl.Local != farAddr || fl.Remote.Addr() != testnet.AddrA {
		t.Fatalf("offer %+v, want a pending TCP flow %v <- %v", fl, farAddr, testnet.AddrA)
	}
	do[core.OK](t, b, fw, core.CloseSocket{})
	if err := <-dialed; !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect after the forwarder closed: %v, want ECONNREFUSED", err)
	}
}

// TestForwardShutdownMidHandshake closes a forwarding stack while one SYN
// waits for its verdict and another's handshake waits for an ACK that
// never comes: Close ends gVisor's handler goroutines (leakCheck).
func TestForwardShutdownMidHandshake(t *testing.T) {
	leakCheck(t)
	a := testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrA, 24)}})
	bn, err := core.New(core.Config{Forward: &core.ForwardConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- bn.Run(context.Background()) }()
	if err := core.JoinPipe(a, bn, 0); err != nil {
		t.Fatal(err)
	}
	b := bn.CommandChannel()
	fw := do[core.ForwardOpened](t, b, core.NoHandle, core.ForwardOpen{}).Handle
	raw := do[core.RawOpened](t, a.CommandChannel(), core.NoHandle, core.RawOpen{Version: 4, Protocol: 6}).Handle
	// SYNs from a source A does not own: A drops the SYN-ACKs, so an
	// accepted handshake never completes.
	for port := uint16(1); port <= 2; port++ {
		syn := synPacket(netip.MustParseAddrPort("10.1.2.3:5000"), netip.AddrPortFrom(farAddr.Addr(), port))
		do[core.RawSent](t, a.CommandChannel(), raw, &core.RawSend{Packet: syn})
	}
	first := do[core.Flow](t, b, fw, core.ForwardAccept{})
	do[core.Flow](t, b, fw, core.ForwardAccept{})
	do[core.OK](t, b, fw, core.ForwardVerdict{ID: first.ID, Verdict: core.Accept})
	for bn.Stats().Forward.TCPPending != 2 {
		time.Sleep(time.Millisecond)
	}
	bn.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := bn.Stats().Forward; st.TCPPending != 0 || st.TCPFlows != 0 {
		t.Fatalf("after Close: %+v, want nothing pending or open", st)
	}
}

// synPacket is an IPv4 TCP SYN from src to dst, checksums set.
func synPacket(src, dst netip.AddrPort) []byte {
	b := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize)
	s, d := tcpip.AddrFrom4(src.Addr().As4()), tcpip.AddrFrom4(dst.Addr().As4())
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: 6, SrcAddr: s, DstAddr: d})
	ip.SetChecksum(^ip.CalculateChecksum())
	tcp := header.TCP(b[header.IPv4MinimumSize:])
	tcp.Encode(&header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), SeqNum: 1, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagSyn, WindowSize: 65535})
	sum := header.PseudoHeaderChecksum(6, s, d, header.TCPMinimumSize)
	tcp.SetChecksum(^checksum.Checksum(tcp, sum))
	return b
}

// TestForwardAcceptTCP checks ForwardOpen.AcceptTCP: a TCP flow is
// offered once, established, with no verdict asked.
func TestForwardAcceptTCP(t *testing.T) {
	p := forwardPair(t, core.ForwardConfig{})
	b := p.B.CommandChannel()
	fw := do[core.ForwardOpened](t, b, core.NoHandle, core.ForwardOpen{AcceptTCP: true}).Handle
	dialed := make(chan core.TCPConnected, 1)
	go func() {
		c, _ := try(p.A.CommandChannel(), core.NoHandle, core.TCPConnect{Remote: farAddr})
		cc, _ := c.(core.TCPConnected)
		dialed <- cc
	}()
	fl := do[core.Flow](t, b, fw, core.ForwardAccept{})
	c := <-dialed
	if !fl.Handle.IsValid() || fl.Local != farAddr || fl.Remote != c.Local {
		t.Fatalf("offer %+v for a client at %v, want an established flow to %v", fl, c.Local, farAddr)
	}
	do[core.OK](t, b, fl.Handle, core.CloseSocket{})
}

// TestForwardAcceptTCPSkipsEngine checks that with ForwardOpen.AcceptTCP a
// SYN's handshake completes without the forwarding stack's engine (no
// verdict round trip through it: two goroutine hand-offs fewer per
// connection): B is driven by hand and serves nothing after ForwardOpen,
// yet A's connect completes; the flow is offered once B serves again.
func TestForwardAcceptTCPSkipsEngine(t *testing.T) {
	leakCheck(t)
	a := testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrA, 24)}})
	bn, err := core.New(core.Config{Forward: &core.ForwardConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	defer bn.Close()
	if err := core.JoinPipe(a, bn, 0); err != nil {
		t.Fatal(err)
	}
	opened := make(chan core.Handle, 1)
	go func() {
		resp, err := try(bn.CommandChannel(), core.NoHandle, core.ForwardOpen{AcceptTCP: true})
		if err != nil {
			t.Error(err)
		}
		opened <- resp.(core.ForwardOpened).Handle
	}()
	serveOne(t, bn)
	fw := <-opened
	conn := do[core.TCPConnected](t, a.CommandChannel(), core.NoHandle, core.TCPConnect{Remote: farAddr})
	if conn.Remote != farAddr {
		t.Fatalf("connected to %v, want %v", conn.Remote, farAddr)
	}
	for bn.Stats().Forward.TCPPending != 0 { // the endpoint is in the inbox
		time.Sleep(time.Millisecond)
	}
	offered := make(chan core.Flow, 1)
	go func() {
		resp, err := try(bn.CommandChannel(), fw, core.ForwardAccept{})
		if err != nil {
			t.Error(err)
		}
		offered <- resp.(core.Flow)
	}()
	serveOne(t, bn)
	if fl := <-offered; fl.Proto != core.FlowTCP || !fl.Handle.IsValid() || fl.Local != farAddr {
		t.Fatalf("offer %+v, want the established flow to %v", fl, farAddr)
	}
	if st := bn.Stats().Forward; st.TCPOffered != 1 || st.TCPFlows != 1 {
		t.Fatalf("stats %+v, want 1 TCP flow offered and open", st)
	}
}

// serveOne serves the next command of a stack driven by hand.
func serveOne(t *testing.T, ns *core.Netstack) {
	t.Helper()
	r, err := ns.WaitForCmd(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ns.ProcessOneCmd(r)
}

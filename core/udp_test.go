package core_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// TestUDPBySteps is the seed's udp_by_steps: bind, send to self, and carry
// the packet back into the stack through the pipe by hand.
func TestUDPBySteps(t *testing.T) {
	leakCheck(t)
	self := netip.MustParseAddrPort("192.0.2.1:1000")
	stack, err := core.New(core.Config{
		Addrs:             []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		SendLocalToDevice: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close()
	ch := stack.CommandChannel()
	pipe := core.NewPipe(0)
	dev := &core.PipeDev{End: pipe.A, MTU: 1500}

	// step runs one queued command by hand.
	step := func() {
		t.Helper()
		r, err := stack.WaitForCmd(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		stack.ProcessOneCmd(r)
	}
	async := func(cmd core.Command, h core.Handle) <-chan core.Response {
		c := make(chan core.Response, 1)
		go func() {
			resp, err := ch.Request(context.Background(), h, cmd)
			if err != nil {
				t.Errorf("%T: %v", cmd, err)
			}
			c <- resp
		}()
		return c
	}

	bound := async(core.UDPBind{Local: self}, core.NoHandle)
	step()
	h := (<-bound).(core.UDPBound).Handle

	if err := ch.RequestNonblocking(h, core.UDPSend{To: self, Buf: []byte("to myself")}); err != nil {
		t.Fatal(err)
	}
	step()
	stack.PollDeviceIO(dev)
	pkt, ok := pipe.B.TryRecv()
	if !ok {
		t.Fatal("no packet left the stack")
	}
	if ip := header.IPv4(pkt); ip.DestinationAddress().String() != "192.0.2.1" {
		t.Fatalf("packet to %v, want 192.0.2.1", ip.DestinationAddress())
	}

	buf := make([]byte, 64)
	got := async(&core.UDPRecv{Buf: buf}, h)
	step() // parks: nothing received yet
	if err := pipe.B.Send(pkt); err != nil {
		t.Fatal(err)
	}
	stack.PollDeviceIO(dev) // delivers the packet and wakes the receive
	r := (<-got).(core.UDPRecvd)
	if string(buf[:r.N]) != "to myself" || r.From != self || r.Truncated {
		t.Fatalf("received %q from %v (truncated %v)", buf[:r.N], r.From, r.Truncated)
	}
}

func TestUDPBothWays(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct {
		name string
		a, b netip.Addr
	}{{"IPv4", testnet.AddrA, testnet.AddrB}, {"IPv6", testnet.Addr6A, testnet.Addr6B}} {
		t.Run(tc.name, func(t *testing.T) {
			p := testnet.NewPair(t)
			a, b := p.A.CommandChannel(), p.B.CommandChannel()
			ua := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(tc.a, 0)})
			ub := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(tc.b, 5353)})
			if ua.Local.Port() == 0 || ub.Local.Port() != 5353 {
				t.Fatalf("bound %v and %v", ua.Local, ub.Local)
			}
			do[core.UDPSent](t, a, ua.Handle, core.UDPSend{To: ub.Local, Buf: []byte("ping")})
			buf := make([]byte, 100)
			r := do[core.UDPRecvd](t, b, ub.Handle, core.UDPRecv{Buf: buf})
			if string(buf[:r.N]) != "ping" || r.From != ua.Local {
				t.Fatalf("B got %q from %v, want ping from %v", buf[:r.N], r.From, ua.Local)
			}
			// Connected socket: sends without a destination go to the peer.
			do[core.Addrs](t, b, ub.Handle, core.UDPConnect{Remote: ua.Local})
			do[core.UDPSent](t, b, ub.Handle, core.UDPSend{Buf: []byte("pong, a longer reply")})
			small := make([]byte, 4)
			r = do[core.UDPRecvd](t, a, ua.Handle, core.UDPRecv{Buf: small})
			if string(small[:r.N]) != "pong" || !r.Truncated {
				t.Fatalf("A got %q truncated=%v, want pong truncated", small[:r.N], r.Truncated)
			}
			// The rest of the truncated datagram is gone: the next read waits.
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if _, err := a.Request(ctx, ua.Handle, core.UDPRecv{Buf: buf}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("second recv: %v, want deadline", err)
			}
		})
	}
}

func TestUDPErrors(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a := p.A.CommandChannel()
	u4 := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	big := make([]byte, 70000)
	for _, tc := range []struct {
		name string
		cmd  core.Command
		want error
	}{
		{"oversized", core.UDPSend{To: netip.AddrPortFrom(testnet.AddrB, 9), Buf: big}, core.ErrMessageTooLong},
		{"v6 on v4 socket", core.UDPSend{To: netip.AddrPortFrom(testnet.Addr6B, 9), Buf: []byte("x")}, core.ErrAddrFamily},
		{"port 0", core.UDPSend{To: netip.AddrPortFrom(testnet.AddrB, 0), Buf: []byte("x")}, core.ErrInvalidAddr},
		{"no destination", core.UDPSend{Buf: []byte("x")}, core.ErrNotConnected},
		{"empty recv buffer", core.UDPRecv{}, core.ErrEmptyBuffer},
		{"tcp command", core.TCPRecv{Buf: big}, core.ErrWrongKind},
		{"accept", core.TCPAccept{}, core.ErrWrongKind},
		{"abort", core.Abort{}, core.ErrWrongKind},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := try(a, u4.Handle, tc.cmd); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// The socket still works after all that.
	u := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("127.0.0.1:0")})
	do[core.UDPSent](t, a, u4.Handle, core.UDPSend{To: u.Local, Buf: []byte("still fine")})
}

func TestRawIP(t *testing.T) {
	leakCheck(t)
	for _, v := range []int{4, 6} {
		t.Run(map[int]string{4: "IPv4", 6: "IPv6"}[v], func(t *testing.T) {
			p := testnet.NewPair(t)
			a, b := p.A.CommandChannel(), p.B.CommandChannel()
			const proto = 253 // RFC 3692 experimental
			rb := do[core.RawOpened](t, b, core.NoHandle, core.RawOpen{Version: v, Protocol: proto})
			ra := do[core.RawOpened](t, a, core.NoHandle, core.RawOpen{Version: v, Protocol: proto})
			pkt := rawPacket(v, proto, []byte("raw payload"))
			do[core.RawSent](t, a, ra.Handle, core.RawSend{Packet: pkt})
			buf := make([]byte, 1500)
			r := do[core.RawRecvd](t, b, rb.Handle, core.RawRecv{Buf: buf})
			if !bytes.Equal(buf[:r.N], pkt) {
				t.Fatalf("received %x, want %x", buf[:r.N], pkt)
			}
			if _, err := try(a, ra.Handle, core.RawSend{Packet: rawPacket(10-v, proto, nil)}); !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("wrong-version packet: %v, want ErrInvalid", err)
			}
			if _, err := try(a, core.NoHandle, core.RawOpen{Version: 5}); !errors.Is(err, core.ErrAddrFamily) {
				t.Fatalf("version 5: %v, want ErrAddrFamily", err)
			}
		})
	}
}

// rawPacket builds an IP packet from A to B with the given payload.
func rawPacket(v int, proto uint8, payload []byte) []byte {
	if v == 4 {
		pkt := make([]byte, header.IPv4MinimumSize+len(payload))
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(pkt)), TTL: 64, Protocol: proto,
			SrcAddr: addr(testnet.AddrA), DstAddr: addr(testnet.AddrB),
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		copy(pkt[header.IPv4MinimumSize:], payload)
		return pkt
	}
	pkt := make([]byte, header.IPv6MinimumSize+len(payload))
	header.IPv6(pkt).Encode(&header.IPv6Fields{
		PayloadLength: uint16(len(payload)), TransportProtocol: 253, HopLimit: 64,
		SrcAddr: addr(testnet.Addr6A), DstAddr: addr(testnet.Addr6B),
	})
	copy(pkt[header.IPv6MinimumSize:], payload)
	return pkt
}

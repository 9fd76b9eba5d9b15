package core_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
)

// manualStack is a stack driven by hand on the test goroutine, with a UDP
// socket and a TCP listener to aim packets at.
type manualStack struct {
	ns   *core.Netstack
	ch   core.Channel
	pipe core.Pipe
	dev  *core.PipeDev
}

func newManualStack(tb testing.TB) *manualStack {
	ns, err := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::1/64")}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ns.Close() })
	p := core.NewPipe(0)
	m := &manualStack{ns: ns, ch: ns.CommandChannel(), pipe: p, dev: &core.PipeDev{End: p.A}}
	m.request(tb, core.UDPBind{Local: netip.MustParseAddrPort("0.0.0.0:53")})
	m.request(tb, core.TCPListen{Local: netip.MustParseAddrPort("[::]:80")})
	return m
}

// request runs one command through the channel, processing it by hand.
func (m *manualStack) request(tb testing.TB, cmd core.Command) (core.Response, error) {
	type result struct {
		resp core.Response
		err  error
	}
	res := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	go func() {
		r, err := m.ch.Request(ctx, core.NoHandle, cmd)
		res <- result{r, err}
	}()
	r, err := m.ns.WaitForCmd(time.Second)
	if err != nil {
		tb.Fatalf("WaitForCmd: %v", err)
	}
	m.ns.ProcessOneCmd(r)
	out := <-res
	return out.resp, out.err
}

// FuzzInboundPacket feeds arbitrary bytes to the stack as inbound packets;
// the stack must not panic and must keep serving.
func FuzzInboundPacket(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x45})
	f.Add(rawPacket(4, 17, []byte{0, 53, 0, 53, 0, 12, 0, 0, 'h', 'i', '!', '!'}))
	f.Add(rawPacket(6, 6, make([]byte, 20)))
	f.Add(rawPacket(4, 6, []byte{0, 1, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0}))
	f.Add(rawPacket(4, 1, []byte{8, 0, 0, 0, 0, 1, 0, 1}))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		m := newManualStack(t)
		if err := m.pipe.B.Send(pkt); err != nil {
			t.Fatal(err)
		}
		m.ns.PollDeviceIO(m.dev)
		m.ns.PollDeviceIO(m.dev)
		if _, err := m.request(t, core.Nop{}); err != nil {
			t.Fatalf("stack stopped serving: %v", err)
		}
	})
}

// FuzzCommands decodes bytes into a sequence of commands on a few handles;
// every command must be answered (a response or a typed error), and the
// stack must keep serving.
func FuzzCommands(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 2, 0, 3, 1, 9, 2})
	f.Add([]byte{4, 0, 5, 0, 6, 0, 7, 3, 8, 1, 10, 0, 11, 0})
	f.Add([]byte{12, 0, 13, 1, 14, 0, 15, 0, 16, 2, 17, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		m := newManualStack(t)
		var handles []core.Handle
		for len(prog) >= 2 {
			op, arg := prog[0], prog[1]
			prog = prog[2:]
			h := core.NoHandle
			if len(handles) > 0 {
				h = handles[int(arg)%len(handles)]
			}
			cmd := fuzzCommand(op, arg)
			resp, err := m.requestOn(t, h, cmd)
			if err != nil && !isTypedError(err) {
				t.Fatalf("%T on %v: untyped error %v", cmd, h, err)
			}
			if nh, ok := handleOf(resp); ok {
				handles = append(handles, nh)
			}
		}
		if _, err := m.request(t, core.Nop{}); err != nil {
			t.Fatalf("stack stopped serving: %v", err)
		}
	})
}

// requestOn is request with a handle and a short deadline (commands that
// park are cancelled).
func (m *manualStack) requestOn(tb testing.TB, h core.Handle, cmd core.Command) (core.Response, error) {
	type result struct {
		resp core.Response
		err  error
	}
	res := make(chan result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		r, err := m.ch.Request(ctx, h, cmd)
		res <- result{r, err}
	}()
	r, err := m.ns.WaitForCmd(time.Second)
	if err != nil {
		tb.Fatalf("WaitForCmd: %v", err)
	}
	m.ns.ProcessOneCmd(r)
	m.ns.PollDeviceIO(m.dev)
	select {
	case out := <-res:
		cancel()
		return out.resp, out.err
	case <-time.After(time.Millisecond):
	}
	cancel() // parked: cancel and let the engine answer
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		select {
		case out := <-res:
			return out.resp, out.err
		default:
		}
		if r, err := m.ns.WaitForCmd(10 * time.Millisecond); err == nil {
			m.ns.ProcessOneCmd(r)
		}
	}
	tb.Fatalf("%T: no answer after cancel", cmd)
	return nil, nil
}

func fuzzCommand(op, arg byte) core.Command {
	v4 := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(arg)%4)
	v6 := netip.AddrPortFrom(netip.MustParseAddr("2001:db8::2"), uint16(arg)%4)
	buf := make([]byte, int(arg)%3*600)
	switch op % 18 {
	case 0:
		return core.UDPBind{Local: v4}
	case 1:
		return core.UDPSend{To: v6, Buf: buf}
	case 2:
		return core.UDPRecv{Buf: buf}
	case 3:
		return core.CloseSocket{}
	case 4:
		return core.TCPListen{Local: v4, Backlog: int(arg) - 100}
	case 5:
		return core.TCPAccept{}
	case 6:
		return core.TCPConnect{Remote: v4}
	case 7:
		return core.TCPSend{Buf: buf}
	case 8:
		return core.TCPRecv{Buf: buf}
	case 9:
		return core.UDPConnect{Remote: v4}
	case 10:
		return core.RawOpen{Version: int(arg) % 8, Protocol: arg}
	case 11:
		return core.RawSend{Packet: buf}
	case 12:
		return core.TCPShutdown{Read: arg&1 == 1, Write: arg&2 == 2}
	case 13:
		return core.Abort{}
	case 14:
		return core.SetSockOpt{Opt: core.SockOpt(arg % 10), Value: int64(binary.BigEndian.Uint16([]byte{arg, op}))}
	case 15:
		return core.GetSocketAddrs{}
	case 16:
		return core.PingOpen{Local: v6.Addr()}
	default:
		return core.GetStats{}
	}
}

func isTypedError(err error) bool {
	var ce *core.Error
	var errno syscall.Errno
	return errors.As(err, &ce) || errors.As(err, &errno) || errors.Is(err, context.Canceled) ||
		errors.Is(err, core.ErrClosed)
}

func handleOf(resp core.Response) (core.Handle, bool) {
	switch r := resp.(type) {
	case core.UDPBound:
		return r.Handle, true
	case core.TCPListening:
		return r.Handle, true
	case core.TCPConnected:
		return r.Handle, true
	case core.TCPAccepted:
		return r.Handle, true
	case core.RawOpened:
		return r.Handle, true
	case core.PingOpened:
		return r.Handle, true
	}
	return core.NoHandle, false
}

package core_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// A send or receive with a Result is answered with that pointer, filled
// in; one without keeps the value answer.
func TestUDPResult(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	src := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	dst := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netipB(0)})
	msg := bytes.Repeat([]byte("r"), 300)

	var sent core.UDPSent
	if got := do[*core.UDPSent](t, a, src.Handle, &core.UDPSend{To: dst.Local, Buf: msg, Result: &sent}); got != &sent || sent.N != len(msg) {
		t.Fatalf("UDPSend answered %p (%+v), want %p with N %d", got, sent, &sent, len(msg))
	}
	var recvd core.UDPRecvd
	buf := make([]byte, 100)
	if got := do[*core.UDPRecvd](t, b, dst.Handle, core.UDPRecv{Buf: buf, Result: &recvd}); got != &recvd {
		t.Fatalf("UDPRecv answered %p, want %p", got, &recvd)
	}
	want := core.UDPRecvd{N: len(buf), From: src.Local, Truncated: true}
	if recvd != want || !bytes.Equal(buf, msg[:len(buf)]) {
		t.Fatalf("UDPRecv filled %+v, want %+v", recvd, want)
	}
	// Without a Result: the value answers, as before.
	if got := do[core.UDPSent](t, a, src.Handle, core.UDPSend{To: dst.Local, Buf: msg[:7]}); got.N != 7 {
		t.Fatalf("UDPSend = %+v, want N 7", got)
	}
	if got := do[core.UDPRecvd](t, b, dst.Handle, &core.UDPRecv{Buf: buf}); got.N != 7 || got.From != src.Local || got.Truncated {
		t.Fatalf("UDPRecv = %+v, want 7 bytes from %v", got, src.Local)
	}
}

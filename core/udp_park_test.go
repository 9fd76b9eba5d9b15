package core_test

import (
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// A UDP send that finds gVisor's send buffer full parks, and resumes when
// the packets ahead of it are released: readiness that only says "send
// space freed" is skipped for a datagram socket with no parked send, never
// for one with a parked send.
func TestUDPParkedSendsResume(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	ua := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netipA(0)})
	ub := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netipB(0)})
	do[core.Response](t, a, ua.Handle, core.SetSockOpt{Opt: core.OptSendBuffer, Value: 4096})
	const n, size = 200, 1200
	for i := range n {
		buf := make([]byte, size)
		buf[0], buf[1] = byte(i), byte(i>>8)
		if err := a.RequestNonblocking(ua.Handle, core.UDPSend{To: ub.Local, Buf: buf}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	// A blocking send after them answers once every one ahead of it went.
	do[core.UDPSent](t, a, ua.Handle, core.UDPSend{To: ub.Local, Buf: []byte{0xff, 0xff}})
	buf := make([]byte, 2048)
	for i := range n {
		r := do[core.UDPRecvd](t, b, ub.Handle, core.UDPRecv{Buf: buf})
		if got := int(buf[0]) | int(buf[1])<<8; r.N != size || got != i {
			t.Fatalf("datagram %d: %d bytes, number %d", i, r.N, got)
		}
	}
	st := do[core.Stats](t, a, core.NoHandle, core.GetStats{})
	if st.NonblockingHeld != 0 || st.NonblockingErrors != 0 || st.Parked != 0 {
		t.Fatalf("held %d, errors %d, parked %d; want 0", st.NonblockingHeld, st.NonblockingErrors, st.Parked)
	}
}

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
)

// Invariant 5: non-blocking sends to a peer that never reads are bounded by
// Config.MaxNonblocking; the excess is refused when submitted, so the
// stream the peer finally reads is exactly the accepted sends, in order.
func TestNonblockingSendsBounded(t *testing.T) {
	leakCheck(t)
	const max, sends, size = 32, 2000, 64 << 10
	p := testnet.NewPair(t, func(a, b *core.Config) {
		a.MaxNonblocking = max
		a.TCPSendBuffer, b.TCPRecvBuffer = 256<<10, 256<<10
	})
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	cli, srv := tcpPair(t, p, testnet.AddrB)
	var want bytes.Buffer
	refused := 0
	for i := range sends {
		buf := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2)
		switch err := a.RequestNonblocking(cli, core.TCPSend{Buf: buf}); {
		case err == nil:
			want.Write(buf)
		case errors.Is(err, core.ErrQueueFull):
			refused++
		default:
			t.Fatalf("send %d: %v", i, err)
		}
	}
	st := do[core.Stats](t, a, core.NoHandle, core.GetStats{})
	if st.Parked > max || st.NonblockingHeld > max {
		t.Errorf("parked %d, held %d; want at most %d", st.Parked, st.NonblockingHeld, max)
	}
	if refused == 0 {
		t.Fatalf("all %d sends taken with MaxNonblocking %d", sends, max)
	}
	t.Logf("%d sends taken, %d refused, %d parked", sends-refused, refused, st.Parked)
	// The peer reads: it gets exactly the accepted sends, no gap.
	got := readN(t, b, srv, want.Len())
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("peer read %d bytes, want the %d accepted ones in order", len(got), want.Len())
	}
	if st := do[core.Stats](t, a, core.NoHandle, core.GetStats{}); st.NonblockingHeld != 0 || st.NonblockingErrors != 0 {
		t.Errorf("after the read: held %d, errors %d; want 0, 0", st.NonblockingHeld, st.NonblockingErrors)
	}
}

// readN reads n bytes from stream h, then checks that no more come soon.
func readN(t *testing.T, ch core.Channel, h core.Handle, n int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	buf := make([]byte, 64<<10)
	for len(out) < n {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		resp, err := ch.Request(ctx, h, &core.TCPRecv{Buf: buf})
		cancel()
		if err != nil {
			t.Fatalf("recv after %d bytes: %v", len(out), err)
		}
		out = append(out, buf[:resp.(core.TCPRecvd).N]...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if resp, err := ch.Request(ctx, h, &core.TCPRecv{Buf: buf}); err == nil {
		t.Fatalf("%d bytes more than the %d sent", resp.(core.TCPRecvd).N, n)
	}
	return out
}

// Errors the engine meets on non-blocking requests are counted.
func TestNonblockingErrorsCounted(t *testing.T) {
	leakCheck(t)
	ns := testnet.Start(t, core.Config{})
	ch := ns.CommandChannel()
	u := do[core.UDPBound](t, ch, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("127.0.0.1:0")})
	do[core.OK](t, ch, u.Handle, core.CloseSocket{})
	for _, cmd := range []core.Command{core.UDPSend{Buf: []byte("x")}, core.TCPRecv{Buf: make([]byte, 1)}} {
		if err := ch.RequestNonblocking(u.Handle, cmd); err != nil { // a stale handle
			t.Fatal(err)
		}
	}
	st := do[core.Stats](t, ch, core.NoHandle, core.GetStats{}) // FIFO: after both
	if st.NonblockingErrors != 2 || st.NonblockingHeld != 0 {
		t.Fatalf("NonblockingErrors = %d, held %d; want 2, 0", st.NonblockingErrors, st.NonblockingHeld)
	}
}

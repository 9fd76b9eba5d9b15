package core_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// sendAll writes data to h in chunks and closes the write side.
func sendAll(t *testing.T, ch core.Channel, h core.Handle, data []byte, chunk int) {
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		resp, err := try(ch, h, &core.TCPSend{Buf: data[off:end]})
		if err != nil {
			t.Errorf("send at %d: %v", off, err)
			return
		}
		if n := resp.(core.TCPSent).N; n != end-off {
			t.Errorf("sent %d, want %d", n, end-off)
			return
		}
	}
	if _, err := try(ch, h, core.TCPShutdown{Write: true}); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// recvAll reads from h until EOF and returns the SHA-256 and count.
func recvAll(t *testing.T, ch core.Channel, h core.Handle) ([32]byte, int) {
	hash := sha256.New()
	buf := make([]byte, 256<<10)
	total := 0
	for {
		resp, err := try(ch, h, &core.TCPRecv{Buf: buf})
		if err == io.EOF {
			var sum [32]byte
			copy(sum[:], hash.Sum(nil))
			return sum, total
		}
		if err != nil {
			t.Errorf("recv after %d bytes: %v", total, err)
			return [32]byte{}, total
		}
		n := resp.(core.TCPRecvd).N
		hash.Write(buf[:n])
		total += n
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return b
}

func TestTCPTransfer64MiB(t *testing.T) {
	leakCheck(t)
	size := 64 << 20
	if testing.Short() {
		size = 4 << 20
	}
	p := testnet.NewPair(t)
	cli, srv := tcpPair(t, p, testnet.AddrB)
	data := randomBytes(size)
	go sendAll(t, p.A.CommandChannel(), cli, data, 1<<20)
	sum, n := recvAll(t, p.B.CommandChannel(), srv)
	if n != size || sum != sha256.Sum256(data) {
		t.Fatalf("received %d bytes sha %x, want %d bytes sha %x", n, sum[:8], size, sha256.Sum256(data))
	}
}

func TestTCPHalfClose(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	cli, srv := tcpPair(t, p, testnet.AddrB)
	// Client half-closes; server still writes back after seeing EOF.
	sendAll(t, a, cli, []byte("request"), 100)
	if _, n := recvAll(t, b, srv); n != len("request") {
		t.Fatalf("server got %d bytes", n)
	}
	sendAll(t, b, srv, []byte("response after EOF"), 100)
	if _, n := recvAll(t, a, cli); n != len("response after EOF") {
		t.Fatalf("client got %d bytes", n)
	}
	// Writing after our own CloseWrite is a broken pipe.
	if _, err := try(a, cli, core.TCPSend{Buf: []byte("x")}); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("send after shutdown: %v, want EPIPE", err)
	}
	// Shutting down the read side ends a parked receive with EOF.
	cli2, _ := tcpPair(t, p, testnet.AddrB)
	done := make(chan error, 1)
	go func() { _, err := try(a, cli2, core.TCPRecv{Buf: make([]byte, 10)}); done <- err }()
	time.Sleep(20 * time.Millisecond)
	do[core.OK](t, a, cli2, core.TCPShutdown{Read: true})
	if err := <-done; err != io.EOF {
		t.Fatalf("parked recv after shutdown read: %v, want io.EOF", err)
	}
}

func TestTCPConnectErrors(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a := p.A.CommandChannel()
	t.Run("refused", func(t *testing.T) {
		_, err := try(a, core.NoHandle, core.TCPConnect{Remote: netip.AddrPortFrom(testnet.AddrB, 9)})
		if !errors.Is(err, syscall.ECONNREFUSED) || !errors.Is(err, core.ErrConnRefused) {
			t.Fatalf("err = %v, want ECONNREFUSED", err)
		}
	})
	t.Run("silent with deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		silent := netip.MustParseAddrPort("192.0.2.99:80") // nobody owns it
		_, err := a.Request(ctx, core.NoHandle, core.TCPConnect{Remote: silent})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if st := do[core.Stats](t, a, core.NoHandle, core.GetStats{}); st.Sockets != 0 || st.Parked != 0 {
			t.Fatalf("after cancelled connect: %d sockets, %d parked; want 0, 0", st.Sockets, st.Parked)
		}
	})
	t.Run("port 0", func(t *testing.T) {
		_, err := try(a, core.NoHandle, core.TCPConnect{Remote: netip.AddrPortFrom(testnet.AddrB, 0)})
		if !errors.Is(err, core.ErrInvalidAddr) {
			t.Fatalf("err = %v, want ErrInvalidAddr", err)
		}
	})
	t.Run("family mismatch", func(t *testing.T) {
		_, err := try(a, core.NoHandle, core.TCPConnect{
			Local: netip.AddrPortFrom(testnet.Addr6A, 0), Remote: netip.AddrPortFrom(testnet.AddrB, 80)})
		if !errors.Is(err, core.ErrAddrFamily) {
			t.Fatalf("err = %v, want ErrAddrFamily", err)
		}
	})
}

func TestTCPPeerAbort(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	cli, srv := tcpPair(t, p, testnet.AddrB)
	do[core.TCPSent](t, a, cli, core.TCPSend{Buf: []byte("some data")})
	buf := make([]byte, 64)
	do[core.TCPRecvd](t, b, srv, core.TCPRecv{Buf: buf})
	done := make(chan error, 1)
	go func() { _, err := try(b, srv, core.TCPRecv{Buf: buf}); done <- err }()
	time.Sleep(20 * time.Millisecond)
	do[core.OK](t, a, cli, core.Abort{})
	if err := <-done; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("recv after peer abort: %v, want ECONNRESET", err)
	}
	if _, err := try(b, srv, core.TCPSend{Buf: buf}); err == nil {
		t.Fatal("send after reset succeeded")
	}
	do[core.OK](t, b, srv, core.CloseSocket{})
	if _, err := try(b, srv, core.TCPRecv{Buf: buf}); !errors.Is(err, core.ErrBadHandle) {
		t.Fatalf("recv on closed handle: %v, want ErrBadHandle", err)
	}
}

func TestTCPOptions(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a := p.A.CommandChannel()
	cli, _ := tcpPair(t, p, testnet.AddrB)
	for _, tc := range []struct {
		opt  core.SockOpt
		set  int64
		want int64
	}{
		{core.OptNoDelay, 1, 1},
		{core.OptNoDelay, 0, 0},
		{core.OptKeepAlive, 1, 1},
		{core.OptKeepAliveIdle, int64(30 * time.Second), int64(30 * time.Second)},
		{core.OptKeepAliveInterval, int64(5 * time.Second), int64(5 * time.Second)},
		{core.OptKeepAliveCount, 4, 4},
		{core.OptLinger, int64(time.Second), int64(time.Second)},
		{core.OptLinger, -1, -1},
	} {
		do[core.OK](t, a, cli, core.SetSockOpt{Opt: tc.opt, Value: tc.set})
		if got := do[core.SockOptValue](t, a, cli, core.GetSockOpt{Opt: tc.opt}).Value; got != tc.want {
			t.Errorf("option %d set %d: got %d, want %d", tc.opt, tc.set, got, tc.want)
		}
	}
	do[core.OK](t, a, cli, core.SetSockOpt{Opt: core.OptSendBuffer, Value: 64 << 10})
	if got := do[core.SockOptValue](t, a, cli, core.GetSockOpt{Opt: core.OptSendBuffer}).Value; got < 64<<10 {
		t.Errorf("send buffer = %d, want >= 64 KiB", got)
	}
	addrs := do[core.Addrs](t, a, cli, core.GetSocketAddrs{})
	if addrs.Local.Addr() != testnet.AddrA || addrs.Remote.Addr() != testnet.AddrB {
		t.Errorf("addrs = %+v", addrs)
	}
}

// TestTCPOptionDefaultsRead checks that reading an option returns the value
// gVisor filled in, not the zero it was declared with: the defaults (gVisor's
// tcp.DefaultKeepaliveIdle, DefaultKeepaliveInterval, DefaultKeepaliveCount)
// come back before anything was set.
func TestTCPOptionDefaultsRead(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a := p.A.CommandChannel()
	cli, _ := tcpPair(t, p, testnet.AddrB)
	for _, tc := range []struct {
		opt  core.SockOpt
		want int64
	}{
		{core.OptKeepAliveIdle, int64(2 * time.Hour)},
		{core.OptKeepAliveInterval, int64(75 * time.Second)},
		{core.OptKeepAliveCount, 9},
	} {
		if got := do[core.SockOptValue](t, a, cli, core.GetSockOpt{Opt: tc.opt}).Value; got != tc.want {
			t.Errorf("option %d: got %d, want %d", tc.opt, got, tc.want)
		}
	}
}

// TestConnectDeadlineErrorIsContext checks that Request reports the
// context's own error.
func TestConnectDeadlineErrorIsContext(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("my cause")
	go func() { time.Sleep(30 * time.Millisecond); cancel(cause) }()
	_, err := p.A.CommandChannel().Request(ctx, core.NoHandle, core.TCPConnect{Remote: netip.MustParseAddrPort("192.0.2.77:1")})
	if !errors.Is(err, cause) || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want the cause", err)
	}
}

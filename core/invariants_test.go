package core_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// Invariant 2: 1,000 receives cancelled at random moments while data flows
// lose no byte: every reply that raced with its cancel is still delivered.
func TestCancelledReceivesLoseNoBytes(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	cli, srv := tcpPair(t, p, testnet.AddrB)
	const total = 4 << 20
	data := randomBytes(total)
	go sendAll(t, a, cli, data, 7919)

	got := make([]byte, 0, total)
	buf := make([]byte, 3000)
	cancels := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for {
		ctx, cancel := context.WithCancel(context.Background())
		if cancels < 1000 {
			d := time.Duration(rng.IntN(200)) * time.Microsecond
			timer := time.AfterFunc(d, cancel)
			defer timer.Stop()
			cancels++
		}
		resp, err := b.Request(ctx, srv, &core.TCPRecv{Buf: buf})
		cancel()
		if errors.Is(err, context.Canceled) {
			continue
		}
		if err != nil {
			break // io.EOF
		}
		got = append(got, buf[:resp.(core.TCPRecvd).N]...)
	}
	if cancels < 1000 {
		t.Fatalf("only %d cancels", cancels)
	}
	if len(got) != total || string(got) != string(data) {
		t.Fatalf("received %d bytes (equal: %v), want %d", len(got), string(got) == string(data), total)
	}
}

// Invariant 2: a send cut by a cancel reports exactly what went out.
func TestCancelledSendReportsProgress(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t, func(a, b *core.Config) { a.TCPSendBuffer, b.TCPRecvBuffer = 64<<10, 64<<10 })
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	cli, srv := tcpPair(t, p, testnet.AddrB)
	data := randomBytes(16 << 20)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	resp, err := a.Request(ctx, cli, &core.TCPSend{Buf: data})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send: %v, want deadline (peer never reads)", err)
	}
	n := resp.(core.TCPSent).N
	if n <= 0 || n >= len(data) {
		t.Fatalf("partial send N = %d", n)
	}
	do[core.OK](t, a, cli, core.TCPShutdown{Write: true})
	sum, got := recvAll(t, b, srv)
	if got != n || sum != sha256Sum(data[:n]) {
		t.Fatalf("peer got %d bytes, send reported %d", got, n)
	}
}

// Invariant 4: a device that never drains does not stop the engine serving
// commands on other sockets.
func TestStuckDeviceDoesNotBlockEngine(t *testing.T) {
	leakCheck(t)
	ns := testnet.Start(t, core.Config{
		Addrs:            []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		OutboundQueueLen: 64,
	})
	dev := newStuckDevice()
	if err := ns.AttachDevice(dev); err != nil {
		t.Fatal(err)
	}
	ch := ns.CommandChannel()
	u := do[core.UDPBound](t, ch, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("192.0.2.1:0")})
	for range 1000 { // far more than the device or the queue takes
		do[core.UDPSent](t, ch, u.Handle, core.UDPSend{To: netip.MustParseAddrPort("192.0.2.50:9"), Buf: make([]byte, 1000)})
	}
	<-dev.blocked
	if st := do[core.Stats](t, ch, core.NoHandle, core.GetStats{}); st.OutboundDrops == 0 {
		t.Fatalf("no outbound drops recorded: %+v", st)
	}
	// Loopback TCP on the same stack still works end to end.
	ln := do[core.TCPListening](t, ch, core.NoHandle, core.TCPListen{Local: netip.MustParseAddrPort("127.0.0.1:0")})
	go try(ch, ln.Handle, core.TCPAccept{})
	c := do[core.TCPConnected](t, ch, core.NoHandle, core.TCPConnect{Remote: ln.Local})
	do[core.TCPSent](t, ch, c.Handle, core.TCPSend{Buf: []byte("still served")})
}

// stuckDevice accepts one write, then blocks every write until closed.
type stuckDevice struct {
	once    sync.Once
	blocked chan struct{}
	closed  chan struct{}
}

func newStuckDevice() *stuckDevice {
	return &stuckDevice{blocked: make(chan struct{}), closed: make(chan struct{})}
}

func (d *stuckDevice) ReadPackets([][]byte, []int) (int, error) {
	<-d.closed
	return 0, net.ErrClosed
}

func (d *stuckDevice) WritePackets([][]byte) (int, error) {
	d.once.Do(func() { close(d.blocked) })
	<-d.closed
	return 0, net.ErrClosed
}

func (d *stuckDevice) BatchSize() int { return 8 }
func (d *stuckDevice) Close() error {
	select {
	case <-d.closed:
	default:
		close(d.closed)
	}
	return nil
}

// Invariant 5: a full command queue makes Request wait and
// RequestNonblocking fail with ErrQueueFull; nothing is silently dropped.
func TestFullQueue(t *testing.T) {
	leakCheck(t)
	ns, err := core.New(core.Config{QueueLen: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	ch := ns.CommandChannel()
	for i := range 4 {
		if err := ch.RequestNonblocking(core.NoHandle, core.Nop{}); err != nil {
			t.Fatalf("nonblocking %d: %v", i, err)
		}
	}
	if err := ch.RequestNonblocking(core.NoHandle, core.Nop{}); !errors.Is(err, core.ErrQueueFull) {
		t.Fatalf("5th nonblocking: %v, want ErrQueueFull", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := ch.Request(ctx, core.NoHandle, core.Nop{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocking on a full queue: %v, want it to wait until the deadline", err)
	}
	// Room frees up: a waiting Request goes through.
	done := make(chan error, 1)
	go func() { _, err := ch.Request(context.Background(), core.NoHandle, core.Nop{}); done <- err }()
	for range 5 {
		r, err := ns.WaitForCmd(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ns.ProcessOneCmd(r)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiting request: %v", err)
	}
	if st, _ := statsByHand(t, ns); st.Commands != 6 {
		t.Fatalf("commands processed = %d, want 6", st.Commands)
	}
}

func statsByHand(t *testing.T, ns *core.Netstack) (core.Stats, error) {
	ch := ns.CommandChannel()
	res := make(chan core.Response, 1)
	go func() { r, _ := ch.Request(context.Background(), core.NoHandle, core.GetStats{}); res <- r }()
	r, err := ns.WaitForCmd(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ns.ProcessOneCmd(r)
	return (<-res).(core.Stats), nil
}

// Bad input gets a typed error and the engine keeps serving.
func TestBadHandlesAndInput(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	u := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	stale := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)}).Handle
	do[core.OK](t, a, stale, core.CloseSocket{})
	// The slot is reused, but the stale handle still fails.
	reused := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)}).Handle
	foreign := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrB, 0)}).Handle
	ln := do[core.TCPListening](t, a, core.NoHandle, core.TCPListen{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	cli, _ := tcpPair(t, p, testnet.AddrB)
	for _, tc := range []struct {
		name string
		h    core.Handle
		cmd  core.Command
		want error
	}{
		{"stale", stale, core.UDPRecv{Buf: make([]byte, 10)}, core.ErrBadHandle},
		{"stale close", stale, core.CloseSocket{}, core.ErrBadHandle},
		{"foreign", foreign, core.GetSocketAddrs{}, core.ErrBadHandle},
		{"never issued", core.NoHandle, core.UDPRecv{Buf: make([]byte, 10)}, core.ErrBadHandle},
		{"wrong kind", ln.Handle, core.TCPRecv{Buf: make([]byte, 10)}, core.ErrWrongKind},
		{"wrong kind udp", cli, core.UDPSend{Buf: []byte("x")}, core.ErrWrongKind},
		{"shutdown on listener", ln.Handle, core.TCPShutdown{Write: true}, core.ErrWrongKind},
		{"zero-length send", cli, core.TCPSend{}, core.ErrEmptyBuffer},
		{"zero-length recv", cli, core.TCPRecv{Buf: []byte{}}, core.ErrEmptyBuffer},
		{"oversized datagram", u.Handle, core.UDPSend{To: netip.AddrPortFrom(testnet.AddrB, 9), Buf: make([]byte, 1<<17)}, core.ErrMessageTooLong},
		{"version mismatch", u.Handle, core.UDPConnect{Remote: netip.AddrPortFrom(testnet.Addr6B, 9)}, core.ErrAddrFamily},
		{"port-0 connect", core.NoHandle, core.TCPConnect{Remote: netip.AddrPortFrom(testnet.AddrB, 0)}, core.ErrInvalidAddr},
		{"invalid bind", core.NoHandle, core.UDPBind{}, core.ErrInvalidAddr},
		{"listen in use", core.NoHandle, core.TCPListen{Local: ln.Local}, core.ErrAddrInUse},
		{"nil command", core.NoHandle, nil, core.ErrUnknownCommand},
		{"bad option", cli, core.SetSockOpt{Opt: 200}, core.ErrInvalid},
		{"bad address", core.NoHandle, core.SetStackAddrs{Addrs: []netip.Prefix{{}}}, core.ErrInvalidAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := try(a, tc.h, tc.cmd); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := try(a, reused, core.GetSocketAddrs{}); err != nil {
		t.Fatalf("reused slot's handle: %v", err)
	}
	do[core.TCPSent](t, a, cli, core.TCPSend{Buf: []byte("the engine still serves")})
}

// Invariant 5: 10,000 connections opened and closed leave no socket and no
// goroutine behind.
func TestManyConnectionsReaped(t *testing.T) {
	leakCheck(t)
	n := 10000
	if testing.Short() {
		n = 1000
	}
	p := testnet.NewPair(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	ln := do[core.TCPListening](t, b, core.NoHandle, core.TCPListen{Local: netip.AddrPortFrom(testnet.AddrB, 80)})
	baseline := runtime.NumGoroutine()
	acceptorDone := make(chan struct{})
	go func() {
		defer close(acceptorDone)
		for {
			resp, err := try(b, ln.Handle, core.TCPAccept{})
			if err != nil {
				return
			}
			try(b, resp.(core.TCPAccepted).Handle, core.CloseSocket{})
		}
	}()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				resp, err := try(a, core.NoHandle, core.TCPConnect{Remote: ln.Local})
				if err != nil {
					failed.Add(1)
					continue
				}
				try(a, resp.(core.TCPConnected).Handle, core.CloseSocket{})
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d connects failed", f, n)
	}
	do[core.OK](t, b, ln.Handle, core.CloseSocket{}) // ends the acceptor's parked Accept
	<-acceptorDone
	sa := do[core.Stats](t, a, core.NoHandle, core.GetStats{})
	sb := do[core.Stats](t, b, core.NoHandle, core.GetStats{})
	if sa.Sockets != 0 || sb.Sockets != 0 || sa.Parked+sb.Parked != 0 {
		t.Fatalf("sockets left: A %d, B %d; parked %d", sa.Sockets, sb.Sockets, sa.Parked+sb.Parked)
	}
	if sa.TCPActiveOpens < uint64(n) {
		t.Fatalf("active opens = %d, want >= %d", sa.TCPActiveOpens, n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > baseline {
		t.Fatalf("goroutines: %d, baseline %d", g, baseline)
	}
}

// Invariant 6: Close answers every pending request with net.ErrClosed and
// leaves no goroutine.
func TestClosePendingRequests(t *testing.T) {
	leakCheck(t)
	ns, err := core.New(core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ch := ns.CommandChannel()
	ran := make(chan error, 1)
	go func() { ran <- ns.Run(context.Background()) }()
	u := do[core.UDPBound](t, ch, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("127.0.0.1:0")})
	errs := make(chan error, 100)
	for range 100 {
		go func() {
			_, err := ch.Request(context.Background(), u.Handle, core.UDPRecv{Buf: make([]byte, 10)})
			errs <- err
		}()
	}
	for {
		if st := do[core.Stats](t, ch, core.NoHandle, core.GetStats{}); st.Parked == 100 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := ns.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 100 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("pending request: %v, want net.ErrClosed", err)
		}
	}
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := ch.Request(context.Background(), core.NoHandle, core.Nop{}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("request after Close: %v", err)
	}
	if err := ch.RequestNonblocking(core.NoHandle, core.Nop{}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("nonblocking after Close: %v", err)
	}
	if err := ns.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
}

// Invariant 7: a parked request costs no engine work until gVisor says the
// socket is ready.
func TestParkedRequestsDoNotPoll(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	ub := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrB, 7)})
	got := make(chan error, 1)
	go func() { _, err := try(b, ub.Handle, core.UDPRecv{Buf: make([]byte, 10)}); got <- err }()
	for do[core.Stats](t, b, core.NoHandle, core.GetStats{}).Parked != 1 {
		time.Sleep(time.Millisecond)
	}
	before := do[core.Stats](t, b, core.NoHandle, core.GetStats{}).EngineWakeups
	time.Sleep(200 * time.Millisecond)
	after := do[core.Stats](t, b, core.NoHandle, core.GetStats{}).EngineWakeups
	if after-before > 1 { // the one GetStats command itself
		t.Fatalf("engine woke %d times while idle", after-before)
	}
	ua := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	do[core.UDPSent](t, a, ua.Handle, core.UDPSend{To: ub.Local, Buf: []byte("wake")})
	if err := <-got; err != nil {
		t.Fatalf("parked recv: %v", err)
	}
}

// Invariant 1: many goroutines on shared sockets; the race detector checks
// that only the engine touches socket state.
func TestConcurrentUseUnderRace(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	ub := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrB, 9)})
	ua := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	var wg sync.WaitGroup
	var received atomic.Int64
	for range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 50 {
				do[core.UDPSent](t, a, ua.Handle, core.UDPSend{To: ub.Local, Buf: []byte("x")})
				do[core.Stats](t, a, core.NoHandle, core.GetStats{})
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 8)
			for range 50 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if _, err := b.Request(ctx, ub.Handle, core.UDPRecv{Buf: buf}); err == nil {
					received.Add(1)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	if received.Load() != 400 {
		t.Fatalf("received %d of 400 datagrams", received.Load())
	}
}

// Invariant 3 and the round-trip target: a request round trip allocates
// nothing in steady state (requests and reply channels are pooled).
func TestRoundTripAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this without -race")
	}
	leakCheck(t)
	ns := testnet.Start(t, core.Config{})
	ch := ns.CommandChannel()
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() { ch.Request(ctx, core.NoHandle, core.Nop{}) })
	if allocs != 0 {
		t.Fatalf("round trip allocates %.1f times, want 0", allocs)
	}
}

func TestZeroChannel(t *testing.T) {
	var ch core.Channel
	if _, err := ch.Request(context.Background(), core.NoHandle, core.Nop{}); !errors.Is(err, core.ErrNoStack) {
		t.Fatalf("Request on zero Channel: %v", err)
	}
	if err := ch.RequestNonblocking(core.NoHandle, core.Nop{}); !errors.Is(err, core.ErrNoStack) {
		t.Fatalf("RequestNonblocking on zero Channel: %v", err)
	}
}

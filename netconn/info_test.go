package netconn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
)

// impairedPair joins two running stacks through impaired links (ab: A's
// packets to B, ba: B's to A), closed in t.Cleanup.
func impairedPair(t *testing.T, ab, ba impair.Config) testnet.Pair {
	t.Helper()
	t.Cleanup(func() { goleakVerify(t) })
	a := testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrA, 24)}})
	b := testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrB, 24)}})
	if _, _, err := impair.Join(a, b, ab, ba); err != nil {
		t.Fatalf("Join: %v", err)
	}
	return testnet.Pair{A: a, B: b}
}

// send writes size bytes from cli and reads them all on srv.
func send(t *testing.T, cli, srv *netconn.TCPConn, size int) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := cli.Write(bytes.Repeat([]byte{'x'}, size))
		done <- err
	}()
	if _, err := io.ReadFull(srv, make([]byte, size)); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
}

func info(t *testing.T, c *netconn.TCPConn) core.TCPInfo {
	t.Helper()
	i, err := c.Info()
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	return i
}

// checkTransfer checks what both ends' Info say after size bytes went from
// cli to srv and srv read them all.
func checkTransfer(t *testing.T, cli, srv core.TCPInfo, size int) {
	t.Helper()
	if cli.State != core.TCPStateEstablished || srv.State != core.TCPStateEstablished {
		t.Errorf("states %v, %v, want ESTABLISHED", cli.State, srv.State)
	}
	if cli.BytesWritten != uint64(size) || srv.BytesRead != uint64(size) {
		t.Errorf("sender BytesWritten %d, receiver BytesRead %d, want %d", cli.BytesWritten, srv.BytesRead, size)
	}
	if cli.BytesRead != 0 || srv.BytesWritten != 0 {
		t.Errorf("sender BytesRead %d, receiver BytesWritten %d, want 0", cli.BytesRead, srv.BytesWritten)
	}
	if srv.RecvQueued != 0 {
		t.Errorf("receiver RecvQueued %d after reading all, want 0", srv.RecvQueued)
	}
	if cli.SegmentsSent == 0 || srv.SegmentsReceived == 0 || cli.SegmentsReceived == 0 {
		t.Errorf("segments: sender sent %d received %d, receiver received %d; want > 0",
			cli.SegmentsSent, cli.SegmentsReceived, srv.SegmentsReceived)
	}
	if cli.RTT <= 0 || cli.RTO <= 0 || cli.SendCwnd == 0 || cli.SendBuffer <= 0 || srv.RecvBuffer <= 0 {
		t.Errorf("sender RTT %v RTO %v cwnd %d sndbuf %d, receiver rcvbuf %d: want > 0",
			cli.RTT, cli.RTO, cli.SendCwnd, cli.SendBuffer, srv.RecvBuffer)
	}
}

// checkClean checks a sender's counts on a path that loses nothing (see
// isClean).
func checkClean(t *testing.T, ci core.TCPInfo) {
	t.Helper()
	if !isClean(ci) {
		t.Errorf("clean path: %d retransmits (%d fast), %d RTO expirations; want 0 fast, 0 RTO, at most 3 tail-loss probes",
			ci.SegmentsRetransmitted, ci.FastRetransmits, ci.RTOExpirations)
	}
}

// isClean reports whether a sender's counts are those of a path that loses
// nothing: no fast retransmit and no RTO expiration. gVisor may still send
// a tail-loss probe (the last segment again, when its ACK is later than
// twice the smoothed RTT, as when the receiving goroutine waits for a
// CPU), and counts it as a retransmit: a few, never more.
func isClean(ci core.TCPInfo) bool {
	return ci.FastRetransmits == 0 && ci.RTOExpirations == 0 && ci.SegmentsRetransmitted <= 3
}

// A clean pipe: no fast retransmit and no timeout.
func TestTCPInfoCleanTransfer(t *testing.T) {
	ci := cleanTransfer(t, newPair(t), 1<<20)
	t.Logf("sender %+v", ci)
}

// A delayed link: the RTT is at least the two one-way delays, and no
// segment is retransmitted.
func TestTCPInfoDelayedLink(t *testing.T) {
	const delay = 10 * time.Millisecond
	p := impairedPair(t, impair.Config{Delay: delay}, impair.Config{Delay: delay})
	ci := cleanTransfer(t, p, 256<<10)
	if ci.RTT < 2*delay || ci.RTT > 2*time.Second {
		t.Errorf("RTT %v over a link of %v each way, want within [%v, 2s]", ci.RTT, delay, 2*delay)
	}
	if ci.RTO < ci.RTT {
		t.Errorf("RTO %v below RTT %v", ci.RTO, ci.RTT)
	}
	t.Logf("sender RTT %v ±%v RTO %v cwnd %d segments out %d", ci.RTT, ci.RTTVar, ci.RTO, ci.SendCwnd, ci.SegmentsSent)
}

// cleanTransfer sends size bytes over a fresh connection of p, checks both
// ends' Info and that the sender's counts are clean, and returns the
// sender's. A timer can still fire spuriously when a loaded machine
// starves the stacks' goroutines for longer than the 200 ms minimum RTO,
// so the transfer gets three tries on fresh connections: a path that
// really loses segments fails every one.
func cleanTransfer(t *testing.T, p testnet.Pair, size int) core.TCPInfo {
	t.Helper()
	var ci core.TCPInfo
	for try := range 3 {
		cli, srv := tcpConns(t, p, testnet.AddrB)
		send(t, cli, srv, size)
		var si core.TCPInfo
		ci, si = info(t, cli), info(t, srv)
		checkTransfer(t, ci, si, size)
		if isClean(ci) {
			break
		}
		t.Logf("try %d not clean (a starved timer?): %+v", try+1, ci)
	}
	checkClean(t, ci)
	return ci
}

// A lossy link: the sender retransmits, and says so.
func TestTCPInfoLossyLink(t *testing.T) {
	p := impairedPair(t, impair.Config{Seed: 7, Loss: 0.05, Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond})
	cli, srv := tcpConns(t, p, testnet.AddrB)
	const size = 256 << 10
	send(t, cli, srv, size)
	ci, si := info(t, cli), info(t, srv)
	checkTransfer(t, ci, si, size)
	if ci.SegmentsRetransmitted == 0 {
		t.Errorf("5%% loss: 0 retransmits, want > 0")
	}
	if ci.FastRetransmits+ci.RTOExpirations == 0 {
		t.Errorf("5%% loss: no fast retransmit and no RTO expiration")
	}
	t.Logf("sender retransmits %d (fast %d), RTO expirations %d, state %v, reorder seen %v",
		ci.SegmentsRetransmitted, ci.FastRetransmits, ci.RTOExpirations, ci.Congestion, ci.ReorderSeen)
}

// RecvQueued counts what arrived and was not read.
func TestTCPInfoRecvQueued(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	if _, err := cli.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(srv, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	// The 1000 bytes crossed as one segment: the other 999 are queued.
	if si := info(t, srv); si.RecvQueued != 999 || si.BytesRead != 1 {
		t.Errorf("RecvQueued %d, BytesRead %d; want 999, 1", si.RecvQueued, si.BytesRead)
	}
}

func TestTCPInfoAfterClose(t *testing.T) {
	p := newPair(t)
	cli, _ := tcpConns(t, p, testnet.AddrB)
	cli.Close()
	_, err := cli.Info()
	checkOpError(t, err, "info", net.ErrClosed)
}

// Info is one round trip and allocates nothing.
func TestTCPInfoAllocs(t *testing.T) {
	if testnet.RaceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this without -race")
	}
	p := newPair(t)
	cli, _ := tcpConns(t, p, testnet.AddrB)
	if allocs := testing.AllocsPerRun(200, func() { cli.Info() }); allocs != 0 {
		t.Fatalf("Info allocates %.1f times, want 0", allocs)
	}
}

// The core command: a listener answers LISTEN; a UDP socket and a nil
// Info are refused with typed errors.
func TestGetTCPInfoCommand(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	ch := p.B.CommandChannel()
	resp, err := ch.Request(ctx, core.NoHandle, core.TCPListen{Local: netip.AddrPortFrom(testnet.AddrB, 0)})
	if err != nil {
		t.Fatal(err)
	}
	ln := resp.(core.TCPListening).Handle
	var ti core.TCPInfo
	if _, err := ch.Request(ctx, ln, core.GetTCPInfo{Info: &ti}); err != nil || ti.State != core.TCPStateListen {
		t.Errorf("listener: state %v, err %v; want LISTEN", ti.State, err)
	}
	if ti.State.String() != "LISTEN" {
		t.Errorf("String() = %q", ti.State.String())
	}
	if _, err := ch.Request(ctx, ln, core.GetTCPInfo{}); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("nil Info: %v, want ErrInvalid", err)
	}
	resp, err = ch.Request(ctx, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrB, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Request(ctx, resp.(core.UDPBound).Handle, core.GetTCPInfo{Info: &ti}); !errors.Is(err, core.ErrWrongKind) {
		t.Errorf("UDP socket: %v, want ErrWrongKind", err)
	}
}

package listener_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
	"go.uber.org/goleak"
)

// Destinations no stack owns: B forwards them.
var (
	far4 = netip.MustParseAddr("198.51.100.7")
	far6 = netip.MustParseAddr("2001:db8:ff::7")
)

// forwardPair joins A (a client) to B, which forwards every address, and
// serves B's flows with fw until the test ends.
func forwardPair(t *testing.T, fc core.ForwardConfig, fw *listener.Forwarder) testnet.Pair {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
	p := testnet.NewPair(t, func(a, b *core.Config) { b.Forward = &fc })
	serveForward(t, p.B, fw)
	return p
}

// serveForward runs fw.Serve on ns until the test ends.
func serveForward(t *testing.T, ns *core.Netstack, fw *listener.Forwarder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Serve(ctx, ns.CommandChannel()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v, want context.Canceled", err)
		}
	})
	waitFor(t, "forwarder open", func() bool { return ns.Stats().Forward.Open == 1 })
}

// waitFor polls cond until it holds, failing after a long bound (a loaded
// machine is slow, never this slow).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// seen records the addresses the handler saw.
type seen struct {
	mu            sync.Mutex
	local, remote []netip.AddrPort
}

func (s *seen) add(local, remote net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.local = append(s.local, addrPortOf(local))
	s.remote = append(s.remote, addrPortOf(remote))
}

func (s *seen) last() (local, remote netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local[len(s.local)-1], s.remote[len(s.remote)-1]
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// echoTCP is a HandleTCP that sends back what it reads and passes the
// client's half-close on once it has.
func echoTCP(s *seen) func(context.Context, *netconn.TCPConn) {
	return func(_ context.Context, c *netconn.TCPConn) {
		s.add(c.LocalAddr(), c.RemoteAddr())
		io.Copy(c, c)
		c.CloseWrite()
	}
}

func TestForwardTCP(t *testing.T) {
	var s seen
	p := forwardPair(t, core.ForwardConfig{}, &listener.Forwarder{HandleTCP: echoTCP(&s)})
	for _, dst := range []netip.AddrPort{netip.AddrPortFrom(far4, 80), netip.AddrPortFrom(far6, 443)} {
		t.Run(dst.String(), func(t *testing.T) {
			c := dial(t, p, dst)
			data := make([]byte, 1<<20)
			rand.Read(data)
			go func() {
				c.Write(data)
				c.CloseWrite() // the half-close passes through
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Fatalf("echoed %d bytes, not the %d sent", len(got), len(data))
			}
			local, remote := s.last()
			if local != dst || remote != c.LocalAddr().(*net.TCPAddr).AddrPort() {
				t.Fatalf("handler saw local %v remote %v, want %v and %v", local, remote, dst, c.LocalAddr())
			}
		})
	}
	if st := p.B.Stats().Forward; st.TCPOffered != 2 || st.TCPRefused != 0 {
		t.Fatalf("stats %+v, want 2 offered, none refused", st)
	}
}

func TestForwardTCPRefused(t *testing.T) {
	verdicts := map[uint16]core.Verdict{81: core.Reset, 82: core.Unreachable}
	fw := &listener.Forwarder{
		Allow: func(_ context.Context, f core.Flow) core.Verdict {
			if v, ok := verdicts[f.Local.Port()]; ok {
				return v
			}
			return core.Accept
		},
		HandleTCP: echoTCP(new(seen)),
	}
	p := forwardPair(t, core.ForwardConfig{}, fw)
	refused := 0
	for _, a := range []netip.Addr{far4, far6} {
		for port, v := range verdicts {
			dst := netip.AddrPortFrom(a, port)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, err := netconn.DialTCP(ctx, p.A.CommandChannel(), "tcp", netip.AddrPort{}, dst)
			cancel()
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial %v (verdict %d): %v, want ECONNREFUSED", dst, v, err)
			}
			refused++
		}
	}
	dial(t, p, netip.AddrPortFrom(far4, 80)).Close() // others still pass
	if st := p.B.Stats().Forward; st.TCPRefused != uint64(refused) {
		t.Fatalf("TCPRefused %d, want %d", st.TCPRefused, refused)
	}
}

// echoUDP is a HandleUDP that sends every datagram back until the flow
// ends, then reports the Read error.
func echoUDP(s *seen, ended chan<- error) func(context.Context, *listener.UDPFlow) {
	return func(_ context.Context, c *listener.UDPFlow) {
		s.add(c.LocalAddr(), c.RemoteAddr())
		buf := make([]byte, 2048)
		for {
			n, err := c.Read(buf)
			if err != nil {
				if ended != nil {
					ended <- err
				}
				return
			}
			c.Write(buf[:n])
		}
	}
}

func dialUDP(t *testing.T, p testnet.Pair, dst netip.AddrPort) *netconn.UDPConn {
	t.Helper()
	c, err := netconn.DialUDP(context.Background(), p.A.CommandChannel(), "udp", netip.AddrPort{}, dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	return c
}

func TestForwardUDP(t *testing.T) {
	var s seen
	fw := &listener.Forwarder{
		Allow: func(_ context.Context, f core.Flow) core.Verdict {
			if f.Local.Port() == 54 {
				return core.Unreachable
			}
			return core.Accept
		},
		HandleUDP: echoUDP(&s, nil),
	}
	p := forwardPair(t, core.ForwardConfig{}, fw)
	for _, a := range []netip.Addr{far4, far6} {
		dst := netip.AddrPortFrom(a, 53)
		c := dialUDP(t, p, dst)
		for _, q := range []string{"query one", "query two"} {
			if _, err := c.Write([]byte(q)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != q {
				t.Fatalf("reply %q, %v; want %q", buf[:n], err, q)
			}
		}
		local, remote := s.last()
		if local != dst || remote != c.LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Fatalf("handler saw local %v remote %v, want %v and %v", local, remote, dst, c.LocalAddr())
		}
		r := dialUDP(t, p, netip.AddrPortFrom(a, 54))
		r.Write([]byte("refused"))
		if _, err := r.Read(make([]byte, 100)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("read on a refused flow: %v, want ECONNREFUSED", err)
		}
	}
	if st := p.B.Stats().Forward; st.UDPOffered != 4 || st.UDPRefused != 2 || st.UDPFlows != 2 {
		t.Fatalf("stats %+v, want 4 offered, 2 refused, 2 open", st)
	}
}

func TestForwardUDPExpiry(t *testing.T) {
	ended := make(chan error, 2)
	fc := core.ForwardConfig{UDPTimeout: 50 * time.Millisecond, UDPAssuredTimeout: 100 * time.Millisecond}
	p := forwardPair(t, fc, &listener.Forwarder{HandleUDP: func(ctx context.Context, c *listener.UDPFlow) {
		buf := make([]byte, 100)
		for {
			if _, err := c.Read(buf); err != nil {
				_, again := c.Read(buf)
				ended <- err
				ended <- again
				return
			}
		}
	}})
	c := dialUDP(t, p, netip.AddrPortFrom(far4, 9999))
	c.Write([]byte("one way only"))
	if err, again := <-ended, <-ended; err != io.EOF || again != io.EOF {
		t.Fatalf("handler's reads after expiry: %v, then %v; want io.EOF twice", err, again)
	}
	waitFor(t, "flow state freed", func() bool {
		st := p.B.Stats()
		return st.Forward.UDPFlows == 0 && st.UDPSockets == 0
	})
	if st := p.B.Stats().Forward; st.UDPExpired != 1 {
		t.Fatalf("UDPExpired %d, want 1", st.UDPExpired)
	}
}

func TestForwardLimits(t *testing.T) {
	var s seen
	fc := core.ForwardConfig{MaxTCPFlows: 2, MaxUDPFlows: 1}
	hold := make(chan struct{})
	fw := &listener.Forwarder{
		HandleTCP: func(ctx context.Context, c *netconn.TCPConn) { s.add(c.LocalAddr(), c.RemoteAddr()); <-ctx.Done() },
		HandleUDP: func(ctx context.Context, c *listener.UDPFlow) { <-hold },
	}
	p := forwardPair(t, fc, fw)
	defer close(hold)
	dial(t, p, netip.AddrPortFrom(far4, 1))
	dial(t, p, netip.AddrPortFrom(far4, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := netconn.DialTCP(ctx, p.A.CommandChannel(), "tcp", netip.AddrPort{}, netip.AddrPortFrom(far4, 3)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("third flow past MaxTCPFlows 2: %v, want ECONNREFUSED", err)
	}
	dialUDP(t, p, netip.AddrPortFrom(far4, 53)).Write([]byte("first"))
	waitFor(t, "the first UDP flow", func() bool { return p.B.Stats().Forward.UDPFlows == 1 })
	c := dialUDP(t, p, netip.AddrPortFrom(far4, 54))
	c.Write([]byte("second"))
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("second UDP flow past MaxUDPFlows 1: %v, want ECONNREFUSED", err)
	}
	if st := p.B.Stats().Forward; st.TCPLimitRefused != 1 || st.UDPLimitRefused != 1 || st.TCPFlows != 2 {
		t.Fatalf("stats %+v, want one refusal each, 2 TCP flows", st)
	}
}

func TestForwardEcho(t *testing.T) {
	for _, answer := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[answer], func(t *testing.T) {
			p := forwardPair(t, core.ForwardConfig{AnswerEcho: answer}, &listener.Forwarder{})
			for i, a := range []netip.Addr{far4, far6} {
				network := map[bool]string{true: "ping4", false: "ping6"}[a.Is4()]
				c, err := netconn.DialPing(context.Background(), p.A.CommandChannel(), network, netip.Addr{}, a)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write(netconn.EchoRequest(a.Is6(), 1, []byte("hi"))); err != nil {
					t.Fatal(err)
				}
				if !answer {
					waitFor(t, "echo request dropped", func() bool { return p.B.Stats().Forward.EchoDropped == uint64(i+1) })
					continue
				}
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				buf := make([]byte, 100)
				n, err := c.Read(buf)
				if err != nil || !bytes.HasSuffix(buf[:n], []byte("hi")) {
					t.Fatalf("echo reply %x, %v", buf[:n], err)
				}
			}
		})
	}
}

func TestForwardNotEnabled(t *testing.T) {
	p := newPair(t)
	err := (&listener.Forwarder{}).Serve(context.Background(), p.B.CommandChannel())
	if !errors.Is(err, listener.ErrNoForwarding) || !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("Serve without Config.Forward: %v, want ErrNoForwarding", err)
	}
}

// TestForwardTCPEthernet forwards over the Ethernet medium: the client
// resolves the far IPv4 address on its link (gVisor's ARP answers for it in
// promiscuous mode) and the forwarding stack, whose frame filter keeps
// other hosts' frames in forwarding mode, takes the flow. IPv6 is left
// out: gVisor's NDP answers solicitations for its own addresses only, so
// an IPv6 client must route far addresses through the stack's address as
// its gateway, which this pair's on-link routes cannot express.
func TestForwardTCPEthernet(t *testing.T) {
	var s seen
	t.Cleanup(func() { goleak.VerifyNone(t) })
	fc := core.ForwardConfig{}
	p := testnet.NewPair(t, testnet.WithEthernet(), func(a, b *core.Config) { b.Forward = &fc })
	serveForward(t, p.B, &listener.Forwarder{HandleTCP: echoTCP(&s)})
	for _, dst := range []netip.AddrPort{netip.AddrPortFrom(far4, 80)} {
		t.Run(dst.String(), func(t *testing.T) {
			c := dial(t, p, dst)
			data := make([]byte, 256<<10)
			rand.Read(data)
			go func() {
				c.Write(data)
				c.CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Fatalf("echoed %d bytes, not the %d sent", len(got), len(data))
			}
			if local, _ := s.last(); local != dst {
				t.Fatalf("handler saw local %v, want %v", local, dst)
			}
		})
	}
}

// TestForwardHandleEcho hands the echo requests to far addresses to
// HandleEcho, with their original addresses, identifier, sequence number
// and data, and answers those it says to answer, IPv4 and IPv6, whatever
// AnswerEcho says.
func TestForwardHandleEcho(t *testing.T) {
	got := make(chan listener.Echo, 8)
	fw := &listener.Forwarder{HandleEcho: func(_ context.Context, e listener.Echo) bool {
		got <- e
		return string(e.Data) != "refuse"
	}}
	p := forwardPair(t, core.ForwardConfig{AnswerEcho: true}, fw)
	for _, far := range []netip.Addr{far4, far6} {
		network := map[bool]string{true: "ping4", false: "ping6"}[far.Is4()]
		c, err := netconn.DialPing(context.Background(), p.A.CommandChannel(), network, netip.Addr{}, far)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		client := testnet.AddrA
		if far.Is6() {
			client = testnet.Addr6A
		}
		for seq, data := range []string{"refuse", "answer"} {
			if _, err := c.Write(netconn.EchoRequest(far.Is6(), uint16(seq+1), []byte(data))); err != nil {
				t.Fatal(err)
			}
			e := <-got
			if e.Local != far || e.Remote != client || e.Seq != uint16(seq+1) || string(e.Data) != data {
				t.Fatalf("HandleEcho got %v → %v seq %d %q, want %v → %v seq %d %q", e.Remote, e.Local, e.Seq, e.Data, client, far, seq+1, data)
			}
		}
		// The refused request was never answered: the first reply is the
		// second request's.
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || n < 8 || binary.BigEndian.Uint16(buf[6:]) != 2 || string(buf[8:n]) != "answer" {
			t.Fatalf("%s echo reply %x, %v; want seq 2 \"answer\"", network, buf[:n], err)
		}
	}
	if st := p.B.Stats().Forward; st.EchoDropped != 0 {
		t.Fatalf("%d echo requests dropped, want 0", st.EchoDropped)
	}
}

// TestForwardEchoHandlerSlots drops, and counts (ForwardStats.EchoDropped),
// the echo requests that come while MaxEchoHandlers HandleEcho calls run;
// those running answer once they return.
func TestForwardEchoHandlerSlots(t *testing.T) {
	var running atomic.Int64
	release := make(chan struct{})
	fw := &listener.Forwarder{HandleEcho: func(ctx context.Context, e listener.Echo) bool {
		running.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return true
	}}
	p := forwardPair(t, core.ForwardConfig{}, fw)
	c, err := netconn.DialPing(context.Background(), p.A.CommandChannel(), "ping4", netip.Addr{}, far4)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(seq int) {
		t.Helper()
		if _, err := c.Write(netconn.EchoRequest(false, uint16(seq), []byte("slot"))); err != nil {
			t.Fatal(err)
		}
	}
	for seq := range listener.MaxEchoHandlers {
		send(seq)
	}
	waitFor(t, "every handler slot taken", func() bool { return running.Load() == listener.MaxEchoHandlers })
	const extra = 3
	for seq := range extra {
		send(listener.MaxEchoHandlers + seq)
	}
	waitFor(t, "the extra requests dropped", func() bool { return p.B.Stats().Forward.EchoDropped == extra })
	close(release)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 100)
	for range listener.MaxEchoHandlers {
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("echo reply: %v", err)
		}
	}
	if got := p.B.Stats().Forward.EchoDropped; got != extra {
		t.Fatalf("%d echo requests dropped, want %d", got, extra)
	}
}

package impair_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
)

// impairedPair is two running stacks joined through impaired links.
type impairedPair struct {
	a, b    *core.Netstack
	ab, ba  *impair.Link
	addrB   netip.Addr // B's address of the test's family
	network string     // "4" or "6": the suffix of "tcp" and "udp"
}

// newImpairedPair starts stacks A and B (testnet's addresses) and joins
// them through ab and ba; they are closed in tb.Cleanup.
func newImpairedPair(tb testing.TB, v6 bool, ab, ba impair.Config) impairedPair {
	tb.Helper()
	return newImpairedPairConfig(tb, v6, core.Config{}, ab, ba)
}

// seeded returns cfg for the two directions of a path, with seeds ab and
// ba.
func seeded(cfg impair.Config, ab, ba uint64) (impair.Config, impair.Config) {
	a, b := cfg, cfg
	a.Seed, b.Seed = ab, ba
	return a, b
}

// bothIPVersions runs f as a subtest over IPv4 and over IPv6.
func bothIPVersions(t *testing.T, f func(t *testing.T, v6 bool)) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("ipv%d", map[bool]int{false: 4, true: 6}[v6]), func(t *testing.T) { f(t, v6) })
	}
}

// newImpairedPairConfig is newImpairedPair with both stacks' Config
// (their addresses added).
func newImpairedPairConfig(tb testing.TB, v6 bool, cfg core.Config, ab, ba impair.Config) impairedPair {
	tb.Helper()
	ca, cb := cfg, cfg
	ca.Addrs = []netip.Prefix{netip.PrefixFrom(testnet.AddrA, 24), netip.PrefixFrom(testnet.Addr6A, 64)}
	cb.Addrs = []netip.Prefix{netip.PrefixFrom(testnet.AddrB, 24), netip.PrefixFrom(testnet.Addr6B, 64)}
	a := testnet.Start(tb, ca)
	b := testnet.Start(tb, cb)
	abl, bal, err := impair.Join(a, b, ab, ba)
	if err != nil {
		tb.Fatalf("Join: %v", err)
	}
	p := impairedPair{a: a, b: b, ab: abl, ba: bal, addrB: testnet.AddrB, network: "4"}
	if v6 {
		p.addrB, p.network = testnet.Addr6B, "6"
	}
	return p
}

// transfer sends size bytes of seeded data from A to B over one TCP
// connection and checks that B got the same bytes (SHA-256). It gives up
// after a minute.
func (p impairedPair) transfer(tb testing.TB, size int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, ln, got := p.connect(tb, ctx)
	stop := context.AfterFunc(ctx, func() { c.Close(); ln.Close() })
	defer stop()
	want := sha256.New()
	src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{1}), int64(size)), want)
	if _, err := io.Copy(c, src); err != nil {
		tb.Fatalf("send: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		tb.Fatalf("CloseWrite: %v", err)
	}
	sum := <-got
	c.Close()
	if ctx.Err() != nil {
		tb.Fatalf("%d bytes not delivered in time: %v", size, ctx.Err())
	}
	if [sha256.Size]byte(want.Sum(nil)) != sum {
		tb.Fatalf("SHA-256 of the received bytes differs from the sent")
	}
}

// connect dials from A to a listener on B's port 80, whose one accepted
// connection's bytes are summed (receiveAll) into got. The connection and
// the listener are closed when tb ends.
func (p impairedPair) connect(tb testing.TB, ctx context.Context) (c *netconn.TCPConn, ln net.Listener, got <-chan [sha256.Size]byte) {
	tb.Helper()
	ln, err := listener.Listen(p.b.CommandChannel(), "tcp"+p.network, netip.AddrPortFrom(p.addrB, 80).String())
	if err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	tb.Cleanup(func() { ln.Close() })
	sums := make(chan [sha256.Size]byte, 1)
	go func() { sums <- receiveAll(ln) }()
	c, err = netconn.DialTCP(ctx, p.a.CommandChannel(), "tcp"+p.network, netip.AddrPort{}, netip.AddrPortFrom(p.addrB, 80))
	if err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c, ln, sums
}

// sendChecked writes size bytes seeded by seed on c, closes its write
// side and waits, a minute at most, for got (connect's) to hold the
// SHA-256 of the same bytes.
func sendChecked(tb testing.TB, c *netconn.TCPConn, got <-chan [sha256.Size]byte, size int, seed byte) {
	tb.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{seed}).Read(data)
	if _, err := c.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		tb.Fatal(err)
	}
	select {
	case sum := <-got:
		if sum != sha256.Sum256(data) {
			tb.Fatal("SHA-256 of the received bytes differs from the sent")
		}
	case <-time.After(time.Minute):
		tb.Fatal("not delivered in a minute")
	}
}

// receiveAll accepts one connection and returns the SHA-256 of all it
// reads.
func receiveAll(ln net.Listener) [sha256.Size]byte {
	h := sha256.New()
	if c, err := ln.Accept(); err == nil {
		io.Copy(h, c)
		c.Close()
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// sized returns n, or under -short a quarter of it, but no less than
// 1 MiB (enough packets for a 1% impairment to happen).
func sized(n int) int {
	if testing.Short() {
		return max(n/4, min(n, 1*MiB))
	}
	return n
}

const (
	MiB = 1 << 20
	KiB = 1 << 10
)

// tcpCases are the impairments a TCP transfer must survive, alone and
// combined, with the bytes to move (lossy links move fewer: gVisor's TCP
// is slow under loss).
var tcpCases = []struct {
	name string
	cfg  impair.Config
	size int
}{
	{"none", impair.Config{}, 4 * MiB},
	{"loss", impair.Config{Loss: 0.05}, 2 * MiB},
	{"burst", impair.Config{Burst: impair.GilbertElliott{PGoodBad: 0.01, PBadGood: 0.3, LossBad: 0.5}}, 2 * MiB},
	{"reorder", impair.Config{Reorder: 0.05}, 2 * MiB},
	{"duplicate", impair.Config{Duplicate: 0.05}, 2 * MiB},
	{"corrupt", impair.Config{Corrupt: 0.02}, 1 * MiB},
	{"delay", impair.Config{Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond}, 2 * MiB},
	{"rate", impair.Config{Rate: 100e6, QueueLimit: 64}, 2 * MiB},
	{"combined", impair.Config{Loss: 0.05, Reorder: 0.05, Duplicate: 0.02, Corrupt: 0.01}, 2 * MiB},
}

// TestJoinTCP moves TCP through each impairment alone and all combined,
// both ways impaired, IPv4 and IPv6, and checks the bytes by SHA-256 and
// that the impairment did happen.
func TestJoinTCP(t *testing.T) {
	for _, tc := range tcpCases {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ipv%d", tc.name, map[bool]int{false: 4, true: 6}[v6]), func(t *testing.T) {
				leakCheck(t)
				ab, ba := seeded(tc.cfg, 1, 2)
				p := newImpairedPair(t, v6, ab, ba)
				p.transfer(t, sized(tc.size))
				checkImpaired(t, "a→b", tc.cfg, p.ab.Stats())
			})
		}
	}
}

// checkImpaired checks that the impairments cfg asks for happened on a
// link that carried a transfer.
func checkImpaired(t *testing.T, name string, cfg impair.Config, s impair.Stats) {
	t.Helper()
	checkSum(t, s)
	checks := []struct {
		on   bool
		n    uint64
		name string
	}{
		{cfg.Loss > 0, s.Lost, "Lost"},
		{cfg.Burst.LossBad > 0, s.LostBurst, "LostBurst"},
		{cfg.Reorder > 0, s.Reordered, "Reordered"},
		{cfg.Duplicate > 0, s.Duplicated, "Duplicated"},
		{cfg.Corrupt > 0, s.Corrupted, "Corrupted"},
		{cfg.Delay > 0 || cfg.Rate > 0, s.Delayed, "Delayed"},
	}
	for _, c := range checks {
		if c.on != (c.n > 0) {
			t.Errorf("%s = %d with %+v", c.name, c.n, cfg)
		}
	}
	if s.Delivered == 0 {
		t.Errorf("nothing delivered: %+v", s)
	}
	t.Logf("%s: %+v", name, s)
}

// TestJoinUDPCorrupt sends datagrams through a link that corrupts 10% of
// packets: none that arrives is corrupted (each carries its own SHA-256),
// and over IPv4, where every bit is under a checksum, exactly the
// uncorrupted ones arrive.
func TestJoinUDPCorrupt(t *testing.T) {
	bothIPVersions(t, func(t *testing.T, v6 bool) {
		leakCheck(t)
		p := newImpairedPair(t, v6, impair.Config{Seed: 5, Corrupt: 0.1}, impair.Config{})
		testUDPCorrupt(t, p, v6)
	})
}

func testUDPCorrupt(t *testing.T, p impairedPair, v6 bool) {
	n := sized(2000)
	dst := netip.AddrPortFrom(p.addrB, 9)
	rc, err := listener.ListenPacket(p.b.CommandChannel(), "udp"+p.network, dst.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	sc, err := listener.ListenPacket(p.a.CommandChannel(), "udp"+p.network, ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	before := p.ab.Stats()
	for i := range n {
		if _, err := sc.WriteTo(datagram(i), net.UDPAddrFromAddrPort(dst)); err != nil {
			t.Fatal(err)
		}
	}
	// WriteTo returns once the stack queued the datagram: wait until the
	// stack's device gave all of them to the link, then until it let go.
	for deadline := time.Now().Add(time.Minute); p.ab.Stats().Sent-before.Sent < uint64(n); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the link got %d of %d datagrams", p.ab.Stats().Sent-before.Sent, n)
		}
	}
	drain(t, p.ab)
	after := p.ab.Stats()
	sent, corrupted := after.Sent-before.Sent, after.Corrupted-before.Corrupted
	if sent != uint64(n) || corrupted == 0 {
		t.Fatalf("link carried %d packets (%d corrupted), want %d with some corrupted", sent, corrupted, n)
	}
	got := readDatagrams(t, rc, n-int(corrupted))
	if !v6 && got != n-int(corrupted) {
		t.Errorf("received %d datagrams, want %d sent - %d corrupted", got, n, corrupted)
	}
	t.Logf("%d sent, %d corrupted, %d received intact", n, corrupted, got)
}

// datagram is test datagram i: its index, a pattern, and the SHA-256 of
// both.
func datagram(i int) []byte {
	b := make([]byte, 200)
	for k := range 168 {
		b[k] = byte(i>>(8*(k%4)) + k)
	}
	sum := sha256.Sum256(b[:168])
	copy(b[168:], sum[:])
	return b
}

// readDatagrams reads until at least want datagrams arrived (giving up
// after a minute), then what else arrives within a moment, checks each
// one's SHA-256 and returns how many it read.
func readDatagrams(t *testing.T, c net.PacketConn, want int) int {
	t.Helper()
	buf := make([]byte, 2048)
	got := 0
	deadline := time.Now().Add(time.Minute)
	for {
		if got >= want {
			deadline = time.Now().Add(200 * time.Millisecond) // stragglers
		}
		c.SetReadDeadline(deadline)
		n, _, err := c.ReadFrom(buf)
		if err != nil { // the deadline, at the end
			if got < want {
				t.Fatalf("received %d datagrams, want at least %d: %v", got, want, err)
			}
			return got
		}
		if n != 200 || [sha256.Size]byte(buf[168:200]) != sha256.Sum256(buf[:168]) {
			t.Fatalf("received a corrupted datagram (%d bytes): %x", n, buf[:n])
		}
		got++
	}
}

// tcpFlags returns the TCP flags of an IPv4 or IPv6 packet with no
// extension headers, and false if it is not TCP.
func tcpFlags(pkt []byte) (byte, bool) {
	if len(pkt) < 1 {
		return 0, false
	}
	var off int
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 || pkt[9] != 6 {
			return 0, false
		}
		off = int(pkt[0]&0xf) * 4
	case 6:
		if len(pkt) < 40 || pkt[6] != 6 {
			return 0, false
		}
		off = 40
	default:
		return 0, false
	}
	if len(pkt) < off+14 {
		return 0, false
	}
	return pkt[off+13], true
}

const (
	flagSYN = 0x02
	flagACK = 0x10
)

// dropFirst returns a Config.Drop that drops the first TCP packet whose
// flags are exactly flags.
func dropFirst(flags byte) func([]byte) bool {
	done := false // Drop is called under the link's lock
	return func(pkt []byte) bool {
		if f, ok := tcpFlags(pkt); ok && f == flags && !done {
			done = true
			return true
		}
		return false
	}
}

// TestJoinDropHandshake loses the SYN and the SYN-ACK by Config.Drop: the
// connection is made by their retransmissions and moves the bytes intact.
func TestJoinDropHandshake(t *testing.T) {
	leakCheck(t)
	p := newImpairedPair(t, false, impair.Config{Drop: dropFirst(flagSYN)}, impair.Config{Drop: dropFirst(flagSYN | flagACK)})
	p.transfer(t, 256*KiB)
	if ab, ba := p.ab.Stats(), p.ba.Stats(); ab.Dropped != 1 || ba.Dropped != 1 {
		t.Errorf("Dropped: a→b %d, b→a %d; want 1 each", ab.Dropped, ba.Dropped)
	}
}

// TestWrap impairs a PipeDev with Wrap, both ways, and moves TCP through
// it: the bytes arrive intact and the impairments happened.
func TestWrap(t *testing.T) {
	leakCheck(t)
	a := testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrA, 24)}})
	b := testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrB, 24)}})
	pipe := core.NewPipe(1024)
	cfg := impair.Config{Loss: 0.02, Reorder: 0.05, Duplicate: 0.02, Corrupt: 0.01}
	out, in := cfg, cfg
	out.Seed, in.Seed = 1, 2
	d, err := impair.Wrap(&core.PipeDev{End: pipe.A, MTU: a.MTU()}, out, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AttachDevice(d); err != nil {
		t.Fatal(err)
	}
	if err := b.AttachDevice(&core.PipeDev{End: pipe.B, MTU: b.MTU()}); err != nil {
		t.Fatal(err)
	}
	p := impairedPair{a: a, b: b, ab: d.Out(), ba: d.In(), addrB: testnet.AddrB, network: "4"}
	p.transfer(t, sized(2*MiB))
	checkImpaired(t, "out", cfg, d.Out().Stats())
	checkImpaired(t, "in", cfg, d.In().Stats())
}

// TestWrapClose checks that closing a wrapped device closes the inner one
// and both links, and that a second Close fails.
func TestWrapClose(t *testing.T) {
	leakCheck(t)
	pipe := core.NewPipe(0)
	d, err := impair.Wrap(&core.PipeDev{End: pipe.A}, impair.Config{}, impair.Config{})
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan error)
	go func() {
		_, err := d.ReadPackets(make([][]byte, 1), make([]int, 1))
		read <- err
	}()
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-read; !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked ReadPackets: got %v, want net.ErrClosed", err)
	}
	if err := d.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: got %v, want net.ErrClosed", err)
	}
	if _, err := d.WritePackets([][]byte{{0x45}}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WritePackets after Close: got %v, want net.ErrClosed", err)
	}
	if err := pipe.B.Send([]byte{1}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the inner pipe is open after Close: Send got %v", err)
	}
}

// TestJoinInvalid checks that Join refuses a bad Config and leaves both
// stacks without a device.
func TestJoinInvalid(t *testing.T) {
	leakCheck(t)
	a := testnet.Start(t, core.Config{})
	b := testnet.Start(t, core.Config{})
	if _, _, err := impair.Join(a, b, impair.Config{}, impair.Config{Loss: 2}); !errors.Is(err, impair.ErrInvalid) {
		t.Fatalf("Join: got %v, want ErrInvalid", err)
	}
	if _, _, err := impair.Join(a, b, impair.Config{}, impair.Config{}); err != nil {
		t.Fatalf("Join after a refused Join: %v", err)
	}
}

// TestJoinWireSized checks what Join's links carry: no packet larger than
// the MTU, and every one with valid IPv4 header and TCP checksums, as a
// real wire needs (no offloads).
func TestJoinWireSized(t *testing.T) {
	bothIPVersions(t, func(t *testing.T, v6 bool) {
		leakCheck(t)
		var bad [2]string
		var largest [2]int
		var sample []byte // a full-sized TCP segment
		check := func(dir int) func([]byte) bool {
			return func(pkt []byte) bool { // under the link's lock
				largest[dir] = max(largest[dir], len(pkt))
				if _, ok := tcpFlags(pkt); ok && dir == 0 && len(pkt) > 1000 && sample == nil {
					sample = bytes.Clone(pkt)
				}
				if err := checkWire(pkt); err != nil && bad[dir] == "" {
					bad[dir] = fmt.Sprintf("%v: %x", err, pkt[:min(len(pkt), 60)])
				}
				return false
			}
		}
		p := newImpairedPair(t, v6, impair.Config{Drop: check(0)}, impair.Config{Drop: check(1)})
		p.transfer(t, 1*MiB)
		p.ab.Close() // ends Drop's calls: bad and largest are ours now
		p.ba.Close()
		for dir, name := range []string{"a→b", "b→a"} {
			if bad[dir] != "" {
				t.Errorf("%s: %s", name, bad[dir])
			}
			if largest[dir] > p.a.MTU() {
				t.Errorf("%s: a %d-byte packet, MTU %d", name, largest[dir], p.a.MTU())
			}
		}
		sample[len(sample)-1] ^= 1 // the checker is no rubber stamp
		if checkWire(sample) == nil {
			t.Errorf("checkWire passed a segment with a flipped bit")
		}
		if largest[0] < p.a.MTU()-100 {
			t.Errorf("a→b: largest packet %d bytes, want about the MTU %d", largest[0], p.a.MTU())
		}
	})
}

// checkWire checks a TCP packet's checksums (IPv4 header, TCP with its
// pseudo-header); other packets pass.
func checkWire(pkt []byte) error {
	if _, ok := tcpFlags(pkt); !ok {
		return nil
	}
	var pseudo []byte
	var seg []byte
	if pkt[0]>>4 == 4 {
		hl := int(pkt[0]&0xf) * 4
		if onesSum(pkt[:hl]) != 0xffff {
			return errors.New("bad IPv4 header checksum")
		}
		seg = pkt[hl:binary.BigEndian.Uint16(pkt[2:])]
		pseudo = append(append(pseudo, pkt[12:20]...), 0, 6, byte(len(seg)>>8), byte(len(seg)))
	} else {
		seg = pkt[40 : 40+int(binary.BigEndian.Uint16(pkt[4:]))]
		pseudo = append(append(pseudo, pkt[8:40]...), 0, 0, byte(len(seg)>>8), byte(len(seg)), 0, 0, 0, 6)
	}
	if onesSum(append(pseudo, seg...)) != 0xffff {
		return errors.New("bad TCP checksum")
	}
	return nil
}

// onesSum is the ones' complement sum of b in 16-bit words.
func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// TestJoinDSACK: reordering makes the sender retransmit segments that
// were not lost; their second copies draw duplicate-SACK reports from the
// receiving stack, which the sender's gVisor counts as such (the bytes
// arrive intact, SHA-256); Config.DisableDSACK sends none. IPv4 and IPv6.
func TestJoinDSACK(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, off := range []bool{false, true} {
			t.Run(fmt.Sprintf("v6=%v/DisableDSACK=%v", v6, off), func(t *testing.T) {
				// No reorder hold: it would put the packets back in order.
				p := newImpairedPairConfig(t, v6, core.Config{DisableDSACK: off, ReorderHold: -1}, impair.Config{Seed: 7, Reorder: 0.05}, impair.Config{})
				p.transfer(t, sized(2*MiB))
				sent, got := p.b.Stats().DSACKsSent, p.a.Stats().TCPDSACKedSegments
				if held := p.ab.Stats().Reordered; held == 0 {
					t.Fatal("the link reordered nothing")
				}
				switch {
				case off && (sent != 0 || got != 0):
					t.Fatalf("DisableDSACK: %d reports sent, %d segments reported to the sender; want none", sent, got)
				case !off && (sent == 0 || got < sent):
					t.Fatalf("%d reports sent, sender counted %d segments reported; want some, at least one per report", sent, got)
				}
			})
		}
	}
}

// TestJoinLostSYNACKRTO loses the first SYN-ACK: the connecting stack
// retransmits its SYN and the listener its SYN-ACK, which echoes the first
// SYN's timestamp, a second old. The connecting stack's link clears that
// echo, so the connection's RTT and retransmission timeout stay those of
// the path (gVisor's would start at about 1 s and 3 s) once data flows.
// IPv4 and IPv6.
func TestJoinLostSYNACKRTO(t *testing.T) {
	leakCheck(t)
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
			// No early SYN copies (Config.SYNRetry): their SYN-ACK echoes a
			// fresh timestamp, and this is about gVisor's own retries.
			p := newImpairedPairConfig(t, v6, core.Config{SYNRetry: -1}, impair.Config{}, impair.Config{Drop: dropFirst(flagSYN | flagACK)})
			c, _, got := p.connect(t, context.Background())
			sendChecked(t, c, got, 256*KiB, 3)
			info, err := c.Info() // all data acknowledged: RTT sampled
			if err != nil {
				t.Fatal(err)
			}
			if n := p.a.Stats().SYNACKEchoesFixed; n != 1 || p.ba.Stats().Dropped != 1 {
				t.Fatalf("SYNACKEchoesFixed %d, SYN-ACKs dropped %d; want 1 and 1", n, p.ba.Stats().Dropped)
			}
			// Generous bounds: the bug gives at least 1 s and 3 s.
			if info.RTT >= 500*time.Millisecond || info.RTO >= time.Second {
				t.Fatalf("after the handshake's retransmissions: RTT %v, RTO %v; want the path's (under 500 ms, RTO under 1 s)", info.RTT, info.RTO)
			}
		})
	}
}

// afterTimeout waits until c's retransmission timer fired and the
// retransmission was acknowledged (the sender is back in the open state),
// and returns its info then. It polls (TCPConn.Info has no notification),
// up to a minute.
func afterTimeout(t *testing.T, c *netconn.TCPConn) core.TCPInfo {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		info, err := c.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.RTOExpirations > 0 && info.Congestion == core.CongestionOpen {
			return info
		}
	}
	info, _ := c.Info()
	t.Fatalf("no acknowledged timeout in a minute: %+v", info)
	return core.TCPInfo{}
}

// TestJoinLostACKEcho loses the receiver's ACKs of the first data and of
// the tail-loss probe: the sender's retransmission timer fires and its
// retransmission reaches a receiver that has the bytes. The receiver's
// link echoes that duplicate's timestamp in its ACK, so the sender samples
// the retransmission's round trip, not the time since the first
// transmission. IPv4 and IPv6.
func TestJoinLostACKEcho(t *testing.T) {
	leakCheck(t)
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
			ackSize := 20 + 20 + 12 // IPv4, TCP, timestamps
			if v6 {
				ackSize += 20
			}
			// B's ACKs (with or without a DSACK block) are lost until A's link carries a data
			// segment a third time: the timeout's retransmission, after
			// the tail-loss probe's.
			var retransmitted atomic.Bool
			dataSeen := 0 // under a→b's lock
			ab := impair.Config{Drop: func(pkt []byte) bool {
				if f, ok := tcpFlags(pkt); ok && f&flagSYN == 0 && len(pkt) > ackSize {
					if dataSeen++; dataSeen == 3 {
						retransmitted.Store(true)
					}
				}
				return false
			}}
			ba := impair.Config{Drop: func(pkt []byte) bool {
				f, ok := tcpFlags(pkt)
				return ok && f == flagACK && !retransmitted.Load() // B sends no data
			}}
			// No recovery probes: they would repair the loss before the timeout.
			p := newImpairedPairConfig(t, v6, core.Config{DisableRecoveryProbes: true}, ab, ba)
			c, _, got := p.connect(t, context.Background())
			data := []byte("one segment, whose ACKs are lost")
			if _, err := c.Write(data); err != nil {
				t.Fatal(err)
			}
			// The FIN must not go before the timeout: its ACK would
			// cover the data.
			info := afterTimeout(t, c)
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if sum := <-got; sum != sha256.Sum256(data) {
				t.Fatal("SHA-256 of the received bytes differs from the sent")
			}
			if d := p.ba.Stats().Dropped; d < 2 || info.RTOExpirations == 0 {
				t.Fatalf("%d ACKs dropped, %d timeouts; want at least 2 and 1", d, info.RTOExpirations)
			}
			if n := p.b.Stats().ACKEchoesFixed; n == 0 {
				t.Fatal("ACKEchoesFixed 0: the duplicate's timestamp was not echoed")
			}
			// gVisor's own echo makes the sample the 0.4 s since the
			// first transmission (probe and timeout): RTO about 450 ms.
			// The path's keeps it at gVisor's 200 ms floor.
			if info.RTO >= 300*time.Millisecond {
				t.Fatalf("after the timeout: RTT %v, RTTVar %v, RTO %v; want an RTO under 300 ms", info.RTT, info.RTTVar, info.RTO)
			}
		})
	}
}

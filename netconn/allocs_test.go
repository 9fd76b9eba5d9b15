package netconn_test

import (
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"github.com/netcore-go/netcore/internal/allocsite"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
	"golang.org/x/net/ipv4"
)

// Invariant 3 through the adapter: a blocking Write hands the engine the
// caller's slice and a blocking Read the caller's buffer, so a 1 MiB
// round trip allocates a small, size-independent amount (gVisor's own
// bookkeeping), not a copy of the megabyte on either side.
func TestTCPNoCopyAllocs(t *testing.T) {
	if testnet.RaceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this without -race")
	}
	const size, rounds = 1 << 20, 50
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	msg, buf := make([]byte, size), make([]byte, size)
	roundTrip := func() {
		if _, err := cli.Write(msg); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if _, err := io.ReadFull(srv, buf); err != nil {
			t.Fatalf("ReadFull: %v", err)
		}
	}
	for range rounds { // steady state: windows open, pools filled
		roundTrip()
	}
	perOp := allocatedBytes(func() {
		for range rounds {
			roundTrip()
		}
	}) / rounds
	if perOp >= size/16 {
		t.Fatalf("a %d-byte write and read allocate %d bytes, want < %d (no copy of the caller's buffer)", size, perOp, size/16)
	}
}

// allocatedBytes is how many heap bytes the process allocated while f ran.
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// netcore's own code allocates nothing per datagram in steady state: a
// WriteTo on one stack and a ReadFrom of it on the other (quic-go's
// pattern over a net.PacketConn) leave every allocation to gVisor. The
// counts by owner are logged (go test -v) beside gVisor's, which are at
// most maxGVisorAllocs: an unconnected WriteTo takes its route from the
// socket's cache, not from gVisor's FindRoute (which made a route, and
// with it three allocations, for every datagram: 9 then).
func TestUDPDatagramAllocs(t *testing.T) {
	if testnet.RaceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this without -race")
	}
	const rounds = 2000
	p := newPair(t)
	snd, rcv := udpListeners(t, p)
	to, src := rcv.LocalAddr(), snd.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, size := range []int{64, 1200} {
		msg, buf := make([]byte, size), make([]byte, 2048)
		roundTrip := func() {
			if _, err := snd.WriteTo(msg, to); err != nil {
				t.Fatalf("WriteTo: %v", err)
			}
			n, from, err := rcv.ReadFrom(buf)
			if err != nil || n != size || from.(*net.UDPAddr).AddrPort() != src {
				t.Fatalf("ReadFrom = %d, %v, %v; want %d from %v", n, from, err, size, src)
			}
		}
		checkDatagramAllocs(t, rounds, size, roundTrip)
	}
}

// checkDatagramAllocs warms roundTrip up, then counts its allocations by
// owner over rounds calls: none of netcore's, at most maxGVisorAllocs of
// gVisor's per datagram of size bytes.
func checkDatagramAllocs(t *testing.T, rounds, size int, roundTrip func()) {
	t.Helper()
	for range rounds / 4 {
		roundTrip()
	}
	owners, sites := allocsite.PerOp(rounds, roundTrip)
	t.Logf("%d B: allocations per datagram by owner: %v", size, owners)
	if owners["netcore"] > 0.01 {
		t.Errorf("%d B: netcore allocates %.3g times per datagram, want none (by site: %v)", size, owners["netcore"], sites)
	}
	if owners["gvisor"] > maxGVisorAllocs+0.1 {
		t.Errorf("%d B: gVisor allocates %.3g times per datagram, want ≤ %d (by site: %v)", size, owners["gvisor"], maxGVisorAllocs, sites)
	}
}

// maxGVisorAllocs is what gVisor allocates per datagram sent and
// received: none. The send's payload costs none (netcore hands gVisor's
// buffer a reader it reuses; gVisor's own send made one per datagram),
// the NIC's queueing discipline hands the packet to the link without
// gVisor's one-packet list, and the receive takes the link's fast path
// into the socket's inbox (core's udpFast), past gVisor's UDP
// HandlePacket and its four allocations (three PacketBuffer.Network views
// and the receive record: 4 until then).
const maxGVisorAllocs = 0

// A connected socket's Write (netbench's dgram senders, a DNS client) and
// a ReadFrom of it allocate no more than an unconnected WriteTo does: the
// send takes the socket's cached route, not gVisor's endpoint, whose write
// context made a packet-release closure and a payload reader per datagram
// (7 allocations then).
func TestUDPConnectedDatagramAllocs(t *testing.T) {
	if testnet.RaceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this without -race")
	}
	const rounds = 2000
	p := newPair(t)
	_, rcv := udpListeners(t, p)
	snd, err := netconn.DialUDP(testCtx(t), p.A.CommandChannel(), "udp4", netip.AddrPortFrom(testnet.AddrA, 0), rcv.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		t.Fatalf("DialUDP: %v", err)
	}
	defer snd.Close()
	src := snd.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, size := range []int{64, 1200} {
		msg, buf := make([]byte, size), make([]byte, 2048)
		roundTrip := func() {
			if _, err := snd.Write(msg); err != nil {
				t.Fatalf("Write: %v", err)
			}
			n, from, err := rcv.ReadFrom(buf)
			if err != nil || n != size || from.(*net.UDPAddr).AddrPort() != src {
				t.Fatalf("ReadFrom = %d, %v, %v; want %d from %v", n, from, err, size, src)
			}
		}
		checkDatagramAllocs(t, rounds, size, roundTrip)
	}
}

// ReadBatch and WriteBatch allocate nothing of netcore's per datagram
// either: 16 datagrams from each of 4 senders, written in batches and read
// in batches, addresses included.
func TestUDPBatchAllocs(t *testing.T) {
	if testnet.RaceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this without -race")
	}
	const senders, batch, rounds = 4, 16, 100
	p := newPair(t)
	rcv, _ := udpListeners(t, p)
	var snds []*netconn.UDPConn
	for range senders {
		_, s := udpListeners(t, p)
		snds = append(snds, s)
	}
	out, in := make([]ipv4.Message, batch), make([]ipv4.Message, batch)
	for i := range out {
		out[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 1200)}, Addr: rcv.LocalAddr()}
		in[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	round := func() {
		for _, s := range snds {
			if k, err := s.WriteBatch(out, 0); k != batch || err != nil {
				t.Fatalf("WriteBatch = %d, %v", k, err)
			}
		}
		for got := 0; got < senders*batch; {
			k, err := rcv.ReadBatch(in, 0)
			if err != nil {
				t.Fatalf("ReadBatch: %v", err)
			}
			got += k
		}
	}
	for range rounds / 4 {
		round()
	}
	owners, sites := allocsite.PerOp(rounds, round)
	perDgram := map[string]float64{}
	for k, v := range owners {
		perDgram[k] = v / (senders * batch)
	}
	t.Logf("allocations per datagram by owner: %v", perDgram)
	if perDgram["netcore"] > 0.01 {
		t.Errorf("netcore allocates %.3g times per datagram, want none (by site, per round: %v)", perDgram["netcore"], sites)
	}
	if perDgram["gvisor"] > maxGVisorAllocs+0.1 {
		t.Errorf("gVisor allocates %.3g times per datagram, want ≤ %d (by site, per round: %v)", perDgram["gvisor"], maxGVisorAllocs, sites)
	}
}

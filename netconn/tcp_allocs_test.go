package netconn_test

import (
	"io"
	"testing"

	"github.com/netcore-go/netcore/internal/allocsite"
	"github.com/netcore-go/netcore/internal/testnet"
	"go.uber.org/goleak"
)

// A 1-byte request and its 1-byte reply allocate nothing in steady state,
// netcore's code or gVisor's: the NIC's queueing discipline hands each of
// the four packets (request, its ACK, reply, its ACK) to the link without
// the one-element PacketBufferList gVisor's default discipline makes per
// packet (4 allocations per RR before). The counts by owner are logged
// (go test -v).
func TestTCPRRAllocs(t *testing.T) {
	if testnet.RaceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this without -race")
	}
	for _, tc := range []struct {
		name string
		opts []testnet.Option
	}{
		{"ip", nil},
		{"ethernet", []testnet.Option{testnet.WithEthernet()}}, // gVisor's Ethernet endpoint in front of the link
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) })
			rrAllocs(t, testnet.NewPair(t, tc.opts...))
		})
	}
}

// rrAllocs counts the allocations per 1-byte RR between p's stacks.
func rrAllocs(t *testing.T, p testnet.Pair) {
	const rounds = 2000
	cli, srv := tcpConns(t, p, testnet.AddrB)
	req, rsp, buf := []byte{'q'}, []byte{'r'}, make([]byte, 1)
	rr := func() {
		if _, err := cli.Write(req); err != nil {
			t.Fatalf("client Write: %v", err)
		}
		if _, err := io.ReadFull(srv, buf); err != nil || buf[0] != 'q' {
			t.Fatalf("server Read = %q, %v; want %q", buf, err, req)
		}
		if _, err := srv.Write(rsp); err != nil {
			t.Fatalf("server Write: %v", err)
		}
		if _, err := io.ReadFull(cli, buf); err != nil || buf[0] != 'r' {
			t.Fatalf("client Read = %q, %v; want %q", buf, err, rsp)
		}
	}
	for range rounds / 4 {
		rr()
	}
	owners, sites := allocsite.PerOp(rounds, rr)
	t.Logf("allocations per 1-byte RR by owner: %v", owners)
	if owners["netcore"] > maxNetcoreRRAllocs {
		t.Errorf("netcore allocates %.3g times per 1-byte RR, want none (by site: %v)", owners["netcore"], sites)
	}
	if owners["gvisor"] > maxGVisorRRAllocs {
		t.Errorf("gVisor allocates %.3g times per 1-byte RR, want ≤ %.2g (by site: %v)", owners["gvisor"], maxGVisorRRAllocs, sites)
	}
}

// maxNetcoreRRAllocs bounds netcore's allocations per 1-byte RR: none,
// with room for a rare one (a request pool refilled after a collection).
const maxNetcoreRRAllocs = 0.05

// maxGVisorRRAllocs bounds gVisor's allocations per 1-byte RR: none, with
// room for a rare one (a pool refilled after a garbage collection).
const maxGVisorRRAllocs = 0.05

package netconn_test

import (
	"io"
	"runtime"
	"testing"

	"github.com/netcore-go/netcore/internal/testnet"
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

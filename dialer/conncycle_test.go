package dialer_test

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"

	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/internal/allocsite"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/listener"
)

// cycler makes connections as netbench's conn workload does: a Dialer and
// a listener with their defaults (keep-alive on both sides), an Accept
// waiting on a goroutine of its own, both ends closed after each
// connection.
type cycler struct {
	t    testing.TB
	d    *dialer.Dialer
	ln   net.Listener
	to   string
	acc  chan net.Conn
	next chan struct{}
}

func newCycler(t *testing.T, p testnet.Pair) *cycler {
	t.Helper()
	ln, err := listener.Listen(p.B.CommandChannel(), "tcp4", testnet.AddrB.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cycler{t: t, d: &dialer.Dialer{Channel: p.A.CommandChannel()}, ln: ln, to: ln.Addr().String(),
		acc: make(chan net.Conn, 1), next: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() { // one accept goroutine: its own allocations are not the conn's
		defer close(done)
		for range c.next {
			s, _ := ln.Accept()
			c.acc <- s
		}
	}()
	t.Cleanup(func() { close(c.next); ln.Close(); <-done })
	return c
}

// cycle makes one connection, accepts it and closes both ends.
func (c *cycler) cycle() {
	c.next <- struct{}{}
	cli, err := c.d.DialContext(context.Background(), "tcp4", c.to)
	if err != nil {
		c.t.Fatalf("dial: %v", err)
	}
	srv := <-c.acc
	if srv == nil {
		c.t.Fatal("accept failed")
	}
	if err := srv.Close(); err != nil {
		c.t.Fatalf("server Close: %v", err)
	}
	if err := cli.Close(); err != nil {
		c.t.Fatalf("client Close: %v", err)
	}
}

// A connection through the Dialer and a listener with their defaults
// (keep-alive on) costs each side the fewest requests: the dial one
// (connect, its keep-alive options inside), the accept one (options set
// inside the engine), each Close one.
func TestConnCycleRequests(t *testing.T) {
	p := newPair(t)
	c := newCycler(t, p)
	c.cycle() // the first dial resolves nothing, but warms pools
	const n = 200
	a0, b0 := p.A.Stats(), p.B.Stats()
	for range n {
		c.cycle()
	}
	a1, b1 := p.A.Stats(), p.B.Stats()
	da, db := a1.Commands-a0.Commands, b1.Commands-b0.Commands
	wakeups := (a1.EngineWakeups - a0.EngineWakeups) + (b1.EngineWakeups - b0.EngineWakeups)
	t.Logf("per connection: requests %.2f (dialer side) + %.2f (listener side), engine wake-ups %.2f, caller turns %.2f",
		float64(da)/n, float64(db)/n, float64(wakeups)/n,
		float64((a1.CallerTurns-a0.CallerTurns)+(b1.CallerTurns-b0.CallerTurns))/n)
	// Counts, not timing: readiness with nothing parked (a handshake before
	// the Accept, a FIN after our Close began) wakes no engine goroutine;
	// timers may, now and then.
	if wakeups >= n/20 {
		t.Errorf("engine goroutines woke %d times in %d connections, want almost never", wakeups, n)
	}
	if da != 2*n || db != 2*n {
		t.Errorf("%d connections took %d requests on the dialer's stack and %d on the listener's; want %d each (one to open, one to close)", n, da, db, 2*n)
	}
}

// netcore's own code allocates little per connection: counted by owner
// (go test -v logs netcore's sites beside gVisor's total).
func TestConnCycleAllocs(t *testing.T) {
	if testnet.RaceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this without -race")
	}
	p := newPair(t)
	c := newCycler(t, p)
	for range 50 {
		c.cycle()
	}
	owners, sites := allocsite.PerOp(300, c.cycle)
	t.Logf("allocations per connection by owner: %v", owners)
	t.Logf("netcore's by site: %s", netcoreSites(sites))
	if got := owners["netcore"]; got > maxNetcoreAllocsPerConn {
		t.Errorf("netcore allocates %.1f times per connection (dial, accept, two closes), want at most %d; by site: %s",
			got, maxNetcoreAllocsPerConn, netcoreSites(sites))
	}
	// gVisor's default queueing discipline made a one-element packet list
	// for each of the ~9 packets of a connection; netcore's hands them to
	// the link without one.
	if got := sites[pushBackSite]; got > 0.05 {
		t.Errorf("%s allocates %.2f times per connection, want none (the NIC's queueing discipline)", pushBackSite, got)
	}
}

// pushBackSite is where gVisor's default queueing discipline allocated
// the one-element list it wraps each written packet in.
const pushBackSite = "gvisor.dev/gvisor/pkg/tcpip/stack.(*PacketBufferList).PushBack"

// maxNetcoreAllocsPerConn bounds netcore's allocations per connection,
// both ends (25 before issue 11's cuts, 8 after the first pass, 4 now,
// with room for a stray one): the two socket records (the dialled one
// with its waiter queue) and the two conns (one block each). The connect
// command and the two handshake replies are no longer boxed as
// interfaces (core.Channel.Connect and Accept).
const maxNetcoreAllocsPerConn = 5

// netcoreSites lists the netcore sites of bySite, largest first.
func netcoreSites(bySite map[string]float64) string {
	var keys []string
	for k := range bySite {
		if strings.HasPrefix(k, "github.com/netcore-go/netcore/") && !strings.Contains(k, "_test.") {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return bySite[keys[i]] > bySite[keys[j]] })
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %5.2f %s", bySite[k], strings.TrimPrefix(k, "github.com/netcore-go/netcore/"))
	}
	return b.String()
}

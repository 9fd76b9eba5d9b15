package netconn_test

import (
	"bytes"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

// timeoutTests are in the style of net/timeout_test.go: a deadline relative
// to now, and whether each of two successive calls should time out.
var timeoutTests = []struct {
	name    string
	timeout time.Duration
}{
	{"past", -5 * time.Second},
	{"now", 0},
	{"near", 50 * time.Millisecond},
}

// namedConn is a conn for a table of subtests, and the stack it is on.
type namedConn struct {
	name string
	conn net.Conn
	ns   *core.Netstack
}

// idleConns returns a connected TCP conn and a connected UDP conn, on a new
// pair, whose peers send nothing.
func idleConns(t *testing.T) []namedConn {
	p := newPair(t)
	cli, _ := tcpConns(t, p, testnet.AddrB)
	ua, _ := udpConns(t, p)
	return []namedConn{{"tcp", cli, p.A}, {"udp", ua, p.A}}
}

// TestReadTimeout checks that Read fails with a timeout, n == 0, once its
// deadline is past, and again on a second call.
func TestReadTimeout(t *testing.T) {
	for _, c := range idleConns(t) {
		for _, tt := range timeoutTests {
			t.Run(c.name+"/"+tt.name, func(t *testing.T) {
				deadline := time.Now().Add(tt.timeout)
				if tt.timeout == 0 {
					deadline = time.Now()
				}
				c.conn.SetReadDeadline(deadline)
				for i := range 2 {
					n, err := c.conn.Read(make([]byte, 10))
					if n != 0 {
						t.Errorf("#%d: n = %d, want 0", i, n)
					}
					checkOpError(t, err, "read", os.ErrDeadlineExceeded)
				}
				c.conn.SetReadDeadline(time.Time{})
			})
		}
	}
}

// TestWriteTimeout checks that a TCP Write cut by its deadline reports
// exactly the bytes that went out: the peer reads that many, no more.
func TestWriteTimeout(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	cli.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	big := make([]byte, 64<<20) // far more than the windows and buffers hold
	start := time.Now()
	n, err := cli.Write(big)
	checkOpError(t, err, "write", os.ErrDeadlineExceeded)
	if n == len(big) { // n == 0 is possible on a loaded machine
		t.Fatalf("Write cut by deadline wrote %d of %d", n, len(big))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Write returned after %v", d)
	}
	if n2, err := cli.Write(big[:1]); n2 != 0 {
		t.Fatalf("Write past deadline = %d, %v; want 0", n2, err)
	}
	cli.SetWriteDeadline(time.Time{})
	cli.CloseWrite()
	got, err := io.Copy(io.Discard, srv)
	if err != nil || got != int64(n) {
		t.Fatalf("peer read %d, %v; Write reported %d", got, err, n)
	}
}

// TestZeroDeadlineClears checks that the zero time clears a deadline that
// already fired: the next Read blocks until data comes.
func TestZeroDeadlineClears(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	cli.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := cli.Read(make([]byte, 1)); !os.IsTimeout(err) {
		t.Fatalf("Read with past deadline: %v", err)
	}
	cli.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		srv.Write([]byte("x"))
	}()
	buf := make([]byte, 1)
	if n, err := cli.Read(buf); n != 1 || err != nil {
		t.Fatalf("Read after clearing deadline = %d, %v; want 1, nil", n, err)
	}
}

// readResult is what a Read in another goroutine returned, and when.
type readResult struct {
	n   int
	err error
	end time.Time
}

func readAsync(c net.Conn, buf []byte) <-chan readResult {
	res := make(chan readResult, 1)
	go func() {
		n, err := c.Read(buf)
		res <- readResult{n, err, time.Now()}
	}()
	return res
}

// unblockRead ends a Read started by readAsync whatever its deadline was
// (it fails with a timeout either way) and clears the deadline again.
func unblockRead(t *testing.T, c net.Conn, res <-chan readResult) {
	t.Helper()
	c.SetReadDeadline(time.Now())
	checkOpError(t, (<-res).err, "read", os.ErrDeadlineExceeded)
	c.SetReadDeadline(time.Time{})
}

// TestDeadlineMovedWhileBlocked moves, shortens and clears the deadline of
// a Read already blocked (parked in the engine). Extending and clearing
// must happen before the first deadline: where a loaded machine makes the
// set-up miss it, the case runs again with a longer one.
func TestDeadlineMovedWhileBlocked(t *testing.T) {
	for _, c := range idleConns(t) {
		t.Run(c.name+"/extend", func(t *testing.T) { growTimeout(t, 100*time.Millisecond, deadlineExtended(t, c)) })
		t.Run(c.name+"/shorten", func(t *testing.T) { testDeadlineShortened(t, c) })
		t.Run(c.name+"/clear", func(t *testing.T) { growTimeout(t, 100*time.Millisecond, deadlineCleared(t, c)) })
	}
}

// deadlineExtended blocks a Read with deadline d and moves the deadline to
// 4d later: the Read times out, and not before the new deadline.
func deadlineExtended(t *testing.T, c namedConn) func(d time.Duration) (time.Duration, bool) {
	return func(d time.Duration) (time.Duration, bool) {
		start := time.Now()
		c.conn.SetReadDeadline(start.Add(d))
		res := readAsync(c.conn, make([]byte, 10))
		blocked := waitParked(t, c.ns, 1, start.Add(d))
		extended := time.Now().Add(4 * d)
		c.conn.SetReadDeadline(extended)
		if took := time.Since(start); !blocked || took >= d {
			unblockRead(t, c.conn, res)
			return took, false
		}
		r := <-res
		checkOpError(t, r.err, "read", os.ErrDeadlineExceeded)
		if r.end.Before(extended) {
			t.Fatalf("Read timed out %v before its extended deadline", extended.Sub(r.end))
		}
		c.conn.SetReadDeadline(time.Time{})
		return 0, true
	}
}

func testDeadlineShortened(t *testing.T, c namedConn) {
	c.conn.SetReadDeadline(time.Now().Add(time.Hour))
	res := readAsync(c.conn, make([]byte, 10))
	if !waitParked(t, c.ns, 1, time.Now().Add(maxDynamicTimeout)) {
		t.Fatalf("Read not blocked in the engine after %v", maxDynamicTimeout)
	}
	shortened := time.Now().Add(50 * time.Millisecond)
	c.conn.SetReadDeadline(shortened)
	select {
	case r := <-res:
		checkOpError(t, r.err, "read", os.ErrDeadlineExceeded)
		if r.end.Before(shortened) {
			t.Fatalf("Read timed out %v before its shortened deadline", shortened.Sub(r.end))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5s after its deadline was shortened to 50ms")
	}
	c.conn.SetReadDeadline(time.Time{})
}

// deadlineCleared blocks a Read with deadline d and clears the deadline:
// the Read is still blocked 4d later, and a deadline in the past wakes it.
func deadlineCleared(t *testing.T, c namedConn) func(d time.Duration) (time.Duration, bool) {
	return func(d time.Duration) (time.Duration, bool) {
		start := time.Now()
		c.conn.SetReadDeadline(start.Add(d))
		res := readAsync(c.conn, make([]byte, 10))
		blocked := waitParked(t, c.ns, 1, start.Add(d))
		c.conn.SetReadDeadline(time.Time{})
		if took := time.Since(start); !blocked || took >= d {
			unblockRead(t, c.conn, res)
			return took, false
		}
		select {
		case r := <-res:
			t.Fatalf("Read returned %v after its deadline was cleared", r.err)
		case <-time.After(4 * d):
		}
		c.conn.SetReadDeadline(time.Now()) // set in the past: wakes it
		if r := <-res; !os.IsTimeout(r.err) {
			t.Fatalf("Read = %v, want a timeout", r.err)
		}
		c.conn.SetReadDeadline(time.Time{})
		return 0, true
	}
}

// TestReadDeadlineLosesNoBytes races many short read deadlines against a
// steady trickle of data: every byte written is read, in order.
func TestReadDeadlineLosesNoBytes(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	const total = 2000
	go func() {
		for i := range total {
			srv.Write([]byte{byte(i)})
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		srv.CloseWrite()
	}()
	var got bytes.Buffer
	buf := make([]byte, 7)
	timeouts := 0
	for i := 0; ; i++ {
		cli.SetReadDeadline(time.Now().Add(time.Duration(i%40) * 10 * time.Microsecond))
		n, err := cli.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if os.IsTimeout(err) {
			timeouts++
			if n != 0 {
				t.Fatalf("timed-out Read returned %d bytes", n)
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if got.Len() != total {
		t.Fatalf("read %d bytes, want %d (%d timeouts)", got.Len(), total, timeouts)
	}
	for i, b := range got.Bytes() {
		if b != byte(i) {
			t.Fatalf("byte %d = %d, want %d", i, b, byte(i))
		}
	}
	t.Logf("%d reads timed out", timeouts)
}

// TestWriteDeadlineSetWhileBlocked sets a write deadline on a Write
// already blocked (the peer reads nothing): it returns with exactly the
// bytes that went out.
func TestWriteDeadlineSetWhileBlocked(t *testing.T) {
	p := newPair(t)
	cli, srv := tcpConns(t, p, testnet.AddrB)
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		n, err := cli.Write(make([]byte, 64<<20))
		res <- result{n, err}
	}()
	time.Sleep(100 * time.Millisecond)
	cli.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	var r result
	select {
	case r = <-res:
	case <-time.After(5 * time.Second):
		t.Fatal("Write still blocked 5s after a 50ms deadline was set")
	}
	checkOpError(t, r.err, "write", os.ErrDeadlineExceeded)
	cli.SetWriteDeadline(time.Time{})
	cli.CloseWrite()
	got, err := io.Copy(io.Discard, srv)
	if err != nil || got != int64(r.n) {
		t.Fatalf("peer read %d, %v; Write reported %d", got, err, r.n)
	}
}

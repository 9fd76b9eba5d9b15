package netconn_test

import (
	"bytes"
	"io"
	"net"
	"os"
	"testing"
	"time"

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

// namedConn is a conn for a table of subtests.
type namedConn struct {
	name string
	conn net.Conn
}

// idleConns returns a connected TCP conn and a connected UDP conn, on a new
// pair, whose peers send nothing.
func idleConns(t *testing.T) []namedConn {
	p := newPair(t)
	cli, _ := tcpConns(t, p, testnet.AddrB)
	ua, _ := udpConns(t, p)
	return []namedConn{{"tcp", cli}, {"udp", ua}}
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

// readResult is what a Read in another goroutine returned.
type readResult struct {
	n   int
	err error
	at  time.Duration
}

func readAsync(c net.Conn, buf []byte) <-chan readResult {
	res := make(chan readResult, 1)
	start := time.Now()
	go func() {
		n, err := c.Read(buf)
		res <- readResult{n, err, time.Since(start)}
	}()
	return res
}

// TestDeadlineMovedWhileBlocked moves, shortens and clears the deadline of
// a Read already blocked.
func TestDeadlineMovedWhileBlocked(t *testing.T) {
	for _, c := range idleConns(t) {
		t.Run(c.name+"/extend", func(t *testing.T) { testDeadlineExtended(t, c.conn) })
		t.Run(c.name+"/shorten", func(t *testing.T) { testDeadlineShortened(t, c.conn) })
		t.Run(c.name+"/clear", func(t *testing.T) { testDeadlineCleared(t, c.conn) })
	}
}

func testDeadlineExtended(t *testing.T, c net.Conn) {
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	res := readAsync(c, make([]byte, 10))
	time.Sleep(20 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	r := <-res
	if !os.IsTimeout(r.err) || r.at < 350*time.Millisecond {
		t.Fatalf("Read = %v after %v; want a timeout after ~420ms", r.err, r.at)
	}
	c.SetReadDeadline(time.Time{})
}

func testDeadlineShortened(t *testing.T, c net.Conn) {
	c.SetReadDeadline(time.Now().Add(time.Hour))
	res := readAsync(c, make([]byte, 10))
	time.Sleep(20 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	select {
	case r := <-res:
		checkOpError(t, r.err, "read", os.ErrDeadlineExceeded)
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5s after its deadline was shortened to 50ms")
	}
	c.SetReadDeadline(time.Time{})
}

func testDeadlineCleared(t *testing.T, c net.Conn) {
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	res := readAsync(c, make([]byte, 10))
	time.Sleep(20 * time.Millisecond)
	c.SetReadDeadline(time.Time{})
	select {
	case r := <-res:
		t.Fatalf("Read returned %v after its deadline was cleared", r.err)
	case <-time.After(400 * time.Millisecond):
	}
	c.SetReadDeadline(time.Now()) // set in the past: wakes it
	if r := <-res; !os.IsTimeout(r.err) {
		t.Fatalf("Read = %v, want a timeout", r.err)
	}
	c.SetReadDeadline(time.Time{})
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

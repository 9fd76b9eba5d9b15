package quicbench_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/netcore-go/netcore/internal/proctime"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/goleak"
)

// streamServer accepts QUIC connections on ln and answers every stream
// with the SHA-256 of what it carried, until tb ends.
func streamServer(tb testing.TB, ln *quic.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	tb.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				for {
					s, err := c.AcceptStream(ctx)
					if err != nil {
						return
					}
					wg.Go(func() { sumStream(s) })
				}
			})
		}
	})
}

// sumStream reads s to its end and writes back its SHA-256.
func sumStream(s *quic.Stream) {
	h := sha256.New()
	if _, err := io.Copy(h, s); err != nil {
		s.CancelWrite(1)
		return
	}
	s.Write(h.Sum(nil))
	s.Close()
}

// quicPair starts a stream server on s.srv and dials it from s.cli, both
// with InitialPacketSize packet.
func quicPair(tb testing.TB, s sockets, packet uint16) *quic.Conn {
	tb.Helper()
	srvTLS, cliTLS := tlsConfigs(tb, "netcore-sum")
	cliTr, srvTr := transports(tb, s)
	ln, err := srvTr.Listen(srvTLS, quicConfig(packet))
	if err != nil {
		tb.Fatal(err)
	}
	streamServer(tb, ln)
	c, err := cliTr.Dial(context.Background(), s.srv.LocalAddr(), cliTLS, quicConfig(packet))
	if err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	tb.Cleanup(func() { c.CloseWithError(0, "") })
	return c
}

// sendStream sends n bytes of source(n, seed) on a new stream of c and
// returns the SHA-256 the server read.
func sendStream(c *quic.Conn, n int64, seed uint64) ([32]byte, error) {
	var sum [32]byte
	s, err := c.OpenStreamSync(context.Background())
	if err != nil {
		return sum, err
	}
	if _, err := io.Copy(s, source(n, seed)); err != nil {
		return sum, fmt.Errorf("write: %w", err)
	}
	s.Close()
	if _, err := io.ReadFull(s, sum[:]); err != nil {
		return sum, fmt.Errorf("read the sum: %w", err)
	}
	return sum, nil
}

// streamSize is the bytes of the correctness test's stream.
func streamSize() int64 {
	if testing.Short() {
		return 256 << 10
	}
	return 2 << 20
}

// A QUIC stream between two netcore stacks arrives whole: the server's
// SHA-256 of it is the client's.
func TestQUICStream(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	c := quicPair(t, netcoreSockets(t), 0)
	n := streamSize()
	for seed := range uint64(2) { // two streams, one after the other, on one connection
		got, err := sendStream(c, n, seed)
		if err != nil {
			t.Fatal(err)
		}
		if want := digest(n, seed); got != want {
			t.Fatalf("stream %d: the server read SHA-256 %x, want %x", seed, got, want)
		}
	}
}

// h3Pair starts an HTTP/3 server on s.srv whose /blob?n=N&seed=S answers
// source(N, S), and returns a client whose requests go to it; both ends
// use InitialPacketSize packet.
func h3Pair(tb testing.TB, s sockets, packet uint16) *http.Client {
	tb.Helper()
	srvTLS, cliTLS := tlsConfigs(tb, http3.NextProtoH3)
	cliTr, srvTr := transports(tb, s)
	ln, err := srvTr.Listen(http3.ConfigureTLSConfig(srvTLS), quicConfig(packet))
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http3.Server{Handler: http.HandlerFunc(blob)}
	var wg sync.WaitGroup
	wg.Go(func() { srv.ServeListener(ln) })
	to := s.srv.LocalAddr()
	rt := &http3.Transport{
		TLSClientConfig: cliTLS,
		QUICConfig:      quicConfig(packet),
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return cliTr.Dial(ctx, to, tlsCfg, cfg)
		},
	}
	tb.Cleanup(func() { rt.Close(); srv.Close(); ln.Close(); wg.Wait() })
	return &http.Client{Transport: rt}
}

// blob writes n bytes of source(n, seed).
func blob(w http.ResponseWriter, r *http.Request) {
	n, err1 := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	seed, err2 := strconv.ParseUint(r.URL.Query().Get("seed"), 10, 64)
	if err1 != nil || err2 != nil || n < 0 {
		http.Error(w, "bad n or seed", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	io.Copy(w, source(n, seed))
}

// get fetches /blob with n and seed and returns the SHA-256 of the body.
func get(c *http.Client, n int64, seed uint64) ([32]byte, error) {
	var sum [32]byte
	resp, err := c.Get(fmt.Sprintf("https://%s/blob?n=%d&seed=%d", serverName, n, seed))
	if err != nil {
		return sum, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/3.0" {
		return sum, fmt.Errorf("status %s, proto %s", resp.Status, resp.Proto)
	}
	h := sha256.New()
	if m, err := io.Copy(h, resp.Body); err != nil || m != n {
		return sum, fmt.Errorf("body: %d bytes, %v; want %d", m, err, n)
	}
	return [32]byte(h.Sum(nil)), nil
}

// An HTTP/3 GET between two netcore stacks: the body arrives whole.
func TestHTTP3Get(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	c := h3Pair(t, netcoreSockets(t), 0)
	n := streamSize()
	got, err := get(c, n, 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := digest(n, 7); got != want {
		t.Fatalf("body SHA-256 %x, want %x", got, want)
	}
}

// benchSize is the bytes of one benchmark stream or GET: 64 MiB.
const benchSize = 64 << 20

// sides are the systems every benchmark runs on, side by side, each with
// quic-go's default packet size and with netcorePacketSize (the "-pkt1452"
// figures: the same setting on both, so the comparison stays fair).
var sides = []struct {
	name string
	open func(testing.TB) sockets
}{
	{"netcore", netcoreSockets},
	{"netcore-pumped", pumpedSockets},
	{"kernel-nogso", kernelSockets},
}

// packetSizes are the InitialPacketSizes of every side, with the suffix
// of their figures' names.
var packetSizes = []struct {
	suffix string
	size   uint16
}{{"", 0}, {"-pkt1452", netcorePacketSize}}

// reportCPU reports the process's CPU time per MiB moved (both ends, all
// goroutines; over the kernel, the loopback's work in the syscalls too):
// unlike MB/s it holds up on a loaded machine.
func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/(benchSize>>20), "cpu-µs/MiB")
}

// BenchmarkQUICStream sends one 64 MiB stream per op over one QUIC
// connection; the server checks nothing but answers the SHA-256, which the
// client compares.
func BenchmarkQUICStream(b *testing.B) {
	want := digest(benchSize, 1)
	for _, sd := range sides {
		for _, ps := range packetSizes {
			b.Run(sd.name+ps.suffix, func(b *testing.B) {
				c := quicPair(b, sd.open(b), ps.size)
				b.SetBytes(benchSize)
				c0 := proctime.CPU()
				for b.Loop() {
					got, err := sendStream(c, benchSize, 1)
					if err != nil || got != want {
						b.Fatalf("stream: %v (sum %x, want %x)", err, got, want)
					}
				}
				reportCPU(b, proctime.CPU()-c0)
			})
		}
	}
}

// BenchmarkHTTP3Get fetches one 64 MiB body per op over HTTP/3.
func BenchmarkHTTP3Get(b *testing.B) {
	want := digest(benchSize, 1)
	for _, sd := range sides {
		for _, ps := range packetSizes {
			b.Run(sd.name+ps.suffix, func(b *testing.B) {
				c := h3Pair(b, sd.open(b), ps.size)
				b.SetBytes(benchSize)
				c0 := proctime.CPU()
				for b.Loop() {
					got, err := get(c, benchSize, 1)
					if err != nil || got != want {
						b.Fatalf("GET: %v (sum %x, want %x)", err, got, want)
					}
				}
				reportCPU(b, proctime.CPU()-c0)
			})
		}
	}
}

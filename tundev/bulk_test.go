package tundev_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// bothWays sends n pseudo-random bytes each way at once and compares the
// SHA-256 of what was sent and what arrived.
func bothWays(t *testing.T, a, b net.Conn, n int64) {
	t.Helper()
	var wg sync.WaitGroup
	sums := make([][sha256.Size]byte, 4) // sent a→b, got at b, sent b→a, got at a
	errs := make([]error, 4)
	for i, dir := range []struct{ from, to net.Conn }{{a, b}, {b, a}} {
		wg.Add(2)
		go func() { defer wg.Done(); sums[2*i], errs[2*i] = sendHashed(dir.from, n, uint64(i)) }()
		go func() { defer wg.Done(); sums[2*i+1], errs[2*i+1] = recvHashed(dir.to, n) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if sums[0] != sums[1] || sums[2] != sums[3] {
		t.Fatalf("SHA-256 mismatch: a→b %x/%x, b→a %x/%x", sums[0], sums[1], sums[2], sums[3])
	}
}

// bulkChunk is the size of each read and write of the bulk tests: large,
// so that per-call costs do not dominate.
const bulkChunk = 1 << 20

func sendHashed(c net.Conn, n int64, seed uint64) ([sha256.Size]byte, error) {
	h := sha256.New()
	src, buf := newPRNG(seed), make([]byte, bulkChunk)
	var err error
	for left := n; left > 0 && err == nil; left -= int64(len(buf)) {
		buf = buf[:min(int64(len(buf)), left)]
		src.Read(buf)
		h.Write(buf)
		_, err = c.Write(buf)
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok && err == nil {
		err = cw.CloseWrite()
	}
	return [sha256.Size]byte(h.Sum(nil)), err
}

func recvHashed(c net.Conn, n int64) ([sha256.Size]byte, error) {
	h := sha256.New()
	got, err := io.CopyBuffer(h, struct{ io.Reader }{c}, make([]byte, bulkChunk))
	if err == nil && got != n {
		err = fmt.Errorf("received %d bytes, want %d", got, n)
	}
	return [sha256.Size]byte(h.Sum(nil)), err
}

// prng is a fast deterministic byte stream (xorshift64*), cheap enough not to
// limit the bulk tests.
type prng struct{ s uint64 }

func newPRNG(seed uint64) *prng { return &prng{s: seed*0x9E3779B97F4A7C15 + 1} }

func (p *prng) Read(b []byte) (int, error) {
	for i := 0; i < len(b); i += 8 {
		p.s ^= p.s >> 12
		p.s ^= p.s << 25
		p.s ^= p.s >> 27
		v := p.s * 2685821657736338717
		for j := i; j < min(i+8, len(b)); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return len(b), nil
}

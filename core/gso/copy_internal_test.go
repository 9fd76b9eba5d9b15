package gso

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestCopyRange cuts a buffer into random parts and copies random ranges
// out of them.
func TestCopyRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for range 200 {
		var parts [][]byte
		for rest := data; len(rest) > 0; {
			n := min(len(rest), rng.IntN(700)) // empty parts too
			parts, rest = append(parts, rest[:n]), rest[n:]
		}
		off := rng.IntN(len(data))
		dst := make([]byte, rng.IntN(len(data)-off+1))
		copyRange(dst, parts, off)
		if !bytes.Equal(dst, data[off:off+len(dst)]) {
			t.Fatalf("copyRange(%d bytes at %d) over %d parts differs", len(dst), off, len(parts))
		}
	}
}

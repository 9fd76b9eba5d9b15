package gso_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/netcore-go/netcore/core/gso"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// TestSplitterMatchesSplit writes super-segments out through a Splitter,
// the packet cut into parts, and checks it writes exactly what Split does.
func TestSplitterMatchesSplit(t *testing.T) {
	const mss = 1000
	flags := header.TCPFlagAck | header.TCPFlagPsh
	for _, v6 := range []bool{false, true} {
		for _, cut := range []int{1, 7, 3000} {
			t.Run(fmt.Sprintf("v6=%v/cut=%d", v6, cut), func(t *testing.T) {
				pkt, o := superSegment(v6, make([]byte, 10*mss+5), mss, flags, nil)
				out, sizes := makeOut(64, 1500)
				n, err := gso.Split(pkt, o, out, sizes)
				if err != nil {
					t.Fatal(err)
				}
				var s gso.Splitter
				if err := s.Reset([][]byte{pkt[:cut], pkt[cut:]}, o); err != nil {
					t.Fatal(err)
				}
				if s.Remaining() != n {
					t.Fatalf("Remaining = %d, Split made %d", s.Remaining(), n)
				}
				for i := range n {
					b := make([]byte, 1500)
					m, err := s.Next(b)
					if err != nil || !bytes.Equal(b[:m], out[i][:sizes[i]]) {
						t.Fatalf("wire packet %d: %d bytes, %v; want Split's %d bytes", i, m, err, sizes[i])
					}
				}
				if s.Remaining() != 0 {
					t.Fatalf("Remaining = %d after every packet, want 0", s.Remaining())
				}
			})
		}
	}
}

// TestSplitterErrors checks what a Splitter refuses: a super-segment its
// Options do not describe, a buffer too small, a read past the end.
func TestSplitterErrors(t *testing.T) {
	pkt, o := superSegment(false, make([]byte, 3000), 1000, header.TCPFlagAck, nil)
	var s gso.Splitter
	bad := o
	bad.HdrLen += 4
	if err := s.Reset([][]byte{pkt}, bad); !errors.Is(err, gso.ErrBad) || s.Remaining() != 0 {
		t.Fatalf("Reset with bad options = %v, %d left; want ErrBad, 0", err, s.Remaining())
	}
	if err := s.Reset([][]byte{pkt}, o); err != nil || s.Remaining() != 3 {
		t.Fatalf("Reset = %v, %d left; want nil, 3", err, s.Remaining())
	}
	if _, err := s.Next(make([]byte, 100)); !errors.Is(err, gso.ErrBuffers) || s.Remaining() != 3 {
		t.Fatalf("Next into 100 bytes = %v, %d left; want ErrBuffers, 3", err, s.Remaining())
	}
	for range 3 {
		if _, err := s.Next(make([]byte, 1500)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Next(make([]byte, 1500)); !errors.Is(err, gso.ErrBad) {
		t.Fatalf("Next past the end = %v; want ErrBad", err)
	}
}

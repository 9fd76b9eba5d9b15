package core_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// TestPCAP captures a UDP exchange and parses the pcap records back.
func TestPCAP(t *testing.T) {
	leakCheck(t)
	var capture lockedBuffer
	p := testnet.NewPair(t, func(a, b *core.Config) { a.PCAP = &capture })
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	ub := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrB, 7)})
	ua := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	do[core.UDPSent](t, a, ua.Handle, core.UDPSend{To: ub.Local, Buf: []byte("captured!")})
	do[core.UDPRecvd](t, b, ub.Handle, core.UDPRecv{Buf: make([]byte, 64)})
	do[core.Addrs](t, b, ub.Handle, core.UDPConnect{Remote: ua.Local})
	do[core.UDPSent](t, b, ub.Handle, core.UDPSend{Buf: []byte("reply")})
	do[core.UDPRecvd](t, a, ua.Handle, core.UDPRecv{Buf: make([]byte, 64)})

	data := capture.Bytes()
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		t.Fatalf("no pcap header: %x", data[:min(len(data), 24)])
	}
	var packets [][]byte
	for rest := data[24:]; len(rest) >= 16; {
		n := int(binary.LittleEndian.Uint32(rest[8:]))
		packets = append(packets, rest[16:16+n])
		rest = rest[16+n:]
	}
	if len(packets) != 2 {
		t.Fatalf("captured %d packets, want 2", len(packets))
	}
	if !bytes.HasSuffix(packets[0], []byte("captured!")) || !bytes.HasSuffix(packets[1], []byte("reply")) {
		t.Fatalf("packets %x", packets)
	}
	if err := p.A.PCAPError(); err != nil {
		t.Fatal(err)
	}
}

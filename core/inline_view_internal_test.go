package core

import (
	"sync"
	"testing"
	"unsafe"

	"github.com/netcore-go/netcore/core/gso"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// validDev is an OffloadDevice and ValidatedReader that reads what the
// test injects (marked valid or not) and records the buffer each read was
// given.
type validDev struct {
	offloadTestDev
	in   chan validPacket
	mu   sync.Mutex
	bufs []*byte // bufs[0] of each read, in order
}

type validPacket struct {
	b     []byte
	valid bool
}

func (d *validDev) ReadPacketsValidated(bufs [][]byte, sizes []int, valid []bool) (int, error) {
	d.mu.Lock()
	d.bufs = append(d.bufs, unsafe.SliceData(bufs[0]))
	d.mu.Unlock()
	select {
	case p := <-d.in:
		sizes[0] = copy(bufs[0], p.b)
		clear(valid)
		valid[0] = p.valid
		return 1, nil
	case <-d.closed:
		return 0, ErrClosed
	}
}

func (d *validDev) reads() []*byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*byte(nil), d.bufs...)
}

func (*validDev) WritePacketsGSO(pkts [][]byte, _ []gso.Options) (int, error) { return len(pkts), nil }

// A TCP segment a ValidatedReader marks valid goes to gVisor in the
// buffer it was read into (a gVisor view): the next read gets a new one;
// a packet not marked valid is copied, and the read buffer kept.
func TestValidatedReadGoesToGVisorUncopied(t *testing.T) {
	ns := newIdleStack(t, "192.0.2.1/24")
	dev := &validDev{offloadTestDev: offloadTestDev{injectDev: newInjectDev(1)}, in: make(chan validPacket, 2)}
	if err := ns.AttachDevice(dev); err != nil {
		t.Fatal(err)
	}
	_, cancel, _, _ := runWithUDP(t, ns)
	defer cancel()
	seg := func(seq uint32) []byte {
		l4 := make([]byte, header.TCPMinimumSize)
		header.TCP(l4).Encode(&header.TCPFields{SrcPort: 3000, DstPort: 81, SeqNum: seq, AckNum: 1, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck, WindowSize: 65535})
		return inboundPacket(header.TCPProtocolNumber, l4, header.TCPChecksumOffset, make([]byte, 1000))
	}
	stats := ns.s.Stats().TCP
	dev.in <- validPacket{seg(1), true}
	dev.in <- validPacket{seg(1001), false}
	eventually(t, "both segments answered (a reset each) and a third read begun", func() bool {
		return stats.ResetsSent.Value() == 2 && len(dev.reads()) >= 3
	})
	r := dev.reads()
	if r[0] == r[1] {
		t.Errorf("the read after a valid segment got the same buffer: the segment was copied, not handed to gVisor")
	}
	if r[1] != r[2] {
		t.Errorf("the read after a segment not marked valid got a new buffer, want the same (the segment copied)")
	}
}

package core

import (
	"bytes"
	"sync"
	"testing"
	"unsafe"

	"github.com/netcore-go/netcore/core/gso"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
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

// recordingDispatcher keeps what the link delivers.
type recordingDispatcher struct {
	mu   sync.Mutex
	pkts []*stack.PacketBuffer
}

func (d *recordingDispatcher) DeliverNetworkPacket(_ tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pkts = append(d.pkts, pkt.IncRef())
}

func (*recordingDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

func (d *recordingDispatcher) taken() []*stack.PacketBuffer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*stack.PacketBuffer(nil), d.pkts...)
}

// A TCP segment a ValidatedReader marks valid goes to gVisor in the
// buffer it was read into (a gVisor view): its payload is that memory,
// and the next read gets a new buffer; a packet not marked valid is
// copied, and the read buffer kept. Both arrive byte for byte.
func TestValidatedReadGoesToGVisorUncopied(t *testing.T) {
	ns := newIdleStack(t, "192.0.2.1/24")
	dev := &validDev{offloadTestDev: offloadTestDev{injectDev: newInjectDev(1)}, in: make(chan validPacket, 2)}
	if err := ns.AttachDevice(dev); err != nil {
		t.Fatal(err)
	}
	rec := &recordingDispatcher{}
	ns.link.dispMu.Lock()
	ns.link.dispatcher = rec
	ns.link.dispMu.Unlock()
	seg := func(seq uint32) []byte {
		l4 := make([]byte, header.TCPMinimumSize)
		header.TCP(l4).Encode(&header.TCPFields{SrcPort: 3000, DstPort: 81, SeqNum: seq, AckNum: 1, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck, WindowSize: 65535})
		payload := make([]byte, 1000)
		for i := range payload {
			payload[i] = byte(seq + uint32(i))
		}
		return inboundPacket(header.TCPProtocolNumber, l4, header.TCPChecksumOffset, payload)
	}
	want := [][]byte{seg(1), seg(1001)}
	dev.in <- validPacket{want[0], true}
	dev.in <- validPacket{want[1], false}
	eventually(t, "both segments delivered and a third read begun", func() bool {
		return len(rec.taken()) == 2 && len(dev.reads()) >= 3
	})
	pkts := rec.taken()
	defer func() {
		for _, p := range pkts {
			p.DecRef()
		}
	}()
	for i, p := range pkts {
		if got := p.ToView().AsSlice(); !bytes.Equal(got, want[i]) {
			t.Errorf("packet %d: gVisor got %d bytes, not the %d read", i, len(got), len(want[i]))
		}
	}
	r := dev.reads()
	if s := pkts[0].AsSlices(); unsafe.SliceData(s[len(s)-1]) != (*byte)(unsafe.Add(unsafe.Pointer(r[0]), len(want[0])-len(s[len(s)-1]))) {
		t.Errorf("the valid segment's payload is not the memory it was read into: copied")
	}
	if s := pkts[0].AsSlices(); len(s) < 2 || within(s[0], r[0], 1<<16) {
		t.Errorf("the valid segment's headers share the chunk it was read into (gVisor would copy it whole to read them)")
	}
	if r[0] == r[1] {
		t.Errorf("the read after a valid segment got the same buffer, which gVisor holds")
	}
	if r[1] != r[2] {
		t.Errorf("the read after a segment not marked valid got a new buffer, want the same (the segment copied)")
	}
}

// within reports whether b starts in the size bytes from base.
func within(b []byte, base *byte, size int) bool {
	d := uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(unsafe.Pointer(base))
	return d < uintptr(size)
}

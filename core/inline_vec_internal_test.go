package core

import (
	"bytes"
	"slices"
	"testing"

	"github.com/netcore-go/netcore/core/gso"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// vecDev is a VectoredWriter that records, in order, each write it gets:
// "copy" for a packet through WritePacketsGSO, "vec" for one through
// WritePacketVectored (with the packet's bytes and how many parts).
type vecDev struct {
	inlineDev
	take   bool // WritePacketVectored takes what it is offered
	writes []vecWrite
}

type vecWrite struct {
	how   string
	data  []byte
	parts int
}

func (d *vecDev) WritePacketsGSO(pkts [][]byte, _ []gso.Options) (int, error) {
	for _, p := range pkts {
		d.writes = append(d.writes, vecWrite{how: "copy", data: bytes.Clone(p), parts: 1})
	}
	return len(pkts), nil
}

func (d *vecDev) WritePacketVectored(parts [][]byte, o gso.Options) (bool, error) {
	if !d.take {
		return false, nil
	}
	if o.Kind != gso.TCPv4 || o.MSS != 100 {
		return false, nil
	}
	d.writes = append(d.writes, vecWrite{how: "vec", data: bytes.Join(parts, nil), parts: len(parts)})
	return true, nil
}

// gsoTestPacket is a TCP packet (IPv4, 20-byte headers, zeroed) whose
// payload is held in the given views; with mss > 0 a super-segment.
func gsoTestPacket(mss int, views ...string) *stack.PacketBuffer {
	var payload buffer.Buffer
	for _, v := range views {
		payload.Append(buffer.NewViewWithData([]byte(v)))
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{ReserveHeaderBytes: 64, Payload: payload})
	copy(pkt.TransportHeader().Push(header.TCPMinimumSize), "tcp-header-bytes....")
	copy(pkt.NetworkHeader().Push(header.IPv4MinimumSize), "ip-header-bytes.....")
	if mss > 0 {
		pkt.GSOOptions = stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, CsumOffset: 16, MSS: uint16(mss), L3HdrLen: header.IPv4MinimumSize}
	}
	return pkt
}

// A VectoredWriter gets each super-segment from gVisor's own views (no
// copy), in its place between the packets copied before and after it,
// which go out before and after it; one it declines is copied instead;
// the writer lets go of every packet either way.
//
// +checklocksignore
func TestGSOWriterVectored(t *testing.T) {
	big := [3]string{string(bytes.Repeat([]byte{'a'}, 150)), string(bytes.Repeat([]byte{'b'}, 90)), string(bytes.Repeat([]byte{'c'}, 60))}
	for _, take := range []bool{true, false} {
		dev := &vecDev{take: take}
		w := newGSOWriter(dev)
		batch := []*stack.PacketBuffer{gsoTestPacket(0, "before"), gsoTestPacket(100, big[:]...), gsoTestPacket(0, "after")}
		want := make([][]byte, len(batch))
		for i, p := range batch {
			p.IncRef() // the test's, to look at it after
			want[i] = packetInto(p, nil)
		}
		w.mu.Lock()
		err := w.send(slices.Clone(batch))
		w.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		wantHow := []string{"copy", "vec", "copy"}
		if !take {
			wantHow[1] = "copy"
		}
		if len(dev.writes) != len(want) {
			t.Fatalf("take=%v: device got %d writes, want %d", take, len(dev.writes), len(want))
		}
		for i, got := range dev.writes {
			if got.how != wantHow[i] || !bytes.Equal(got.data, want[i]) {
				t.Errorf("take=%v: write %d: %s of %d bytes, want %s of %d bytes (the packet's)", take, i, got.how, len(got.data), wantHow[i], len(want[i]))
			}
		}
		if take && dev.writes[1].parts < len(big) {
			t.Errorf("the super-segment came in %d parts, want its views (at least %d)", dev.writes[1].parts, len(big))
		}
		for i, p := range batch {
			if n := p.ReadRefs(); n != 1 {
				t.Errorf("take=%v: packet %d holds %d references after send, want 1 (the test's)", take, i, n)
			}
			p.DecRef()
		}
	}
}

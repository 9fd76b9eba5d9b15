package tundev

import (
	"bytes"
	"os"
	"testing"

	"golang.zx2c4.com/wireguard/tun"
)

// bsdTUN is a tun.Device that reads as wireguard-go's does on macOS and the
// BSDs: the packet's 4-byte address family lands in front of offset (which
// must be at least 4, or the read panics as theirs does).
type bsdTUN struct {
	pkts   chan []byte
	events chan tun.Event
}

func (d *bsdTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	p, ok := <-d.pkts
	if !ok {
		return 0, os.ErrClosed
	}
	buf := bufs[0][offset-4:]
	n := copy(buf, append([]byte{0, 0, 0, 2}, p...))
	sizes[0] = n - 4
	return 1, nil
}

func (d *bsdTUN) Write(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }
func (d *bsdTUN) MTU() (int, error)                            { return 1500, nil }
func (d *bsdTUN) Name() (string, error)                        { return "utun9", nil }
func (d *bsdTUN) File() *os.File                               { return nil }
func (d *bsdTUN) Events() <-chan tun.Event                     { return d.events }
func (d *bsdTUN) BatchSize() int                               { return 1 }
func (d *bsdTUN) Close() error                                 { close(d.pkts); close(d.events); return nil }

// TestReadHeadroom reads through a TUN over a device that puts a header in
// front of each packet (the BSDs' and macOS's): ReadPackets hands out the
// bare packet at bufs[0][0:], into a buffer that is just big enough.
func TestReadHeadroom(t *testing.T) {
	dev := &bsdTUN{pkts: make(chan []byte, 1), events: make(chan tun.Event)}
	tn, err := Wrap(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	tn.headroom = 4 // readHeadroom on darwin, freebsd and openbsd
	pkt := bytes.Repeat([]byte{0x45, 1, 2, 3, 4}, 300)
	dev.pkts <- pkt
	bufs, sizes := [][]byte{make([]byte, len(pkt))}, []int{0}
	n, err := tn.ReadPackets(bufs, sizes)
	if err != nil || n != 1 || !bytes.Equal(bufs[0][:sizes[0]], pkt) {
		t.Fatalf("ReadPackets = %d, %v, %d bytes; want 1 packet of %d bytes equal to the one sent", n, err, sizes[0], len(pkt))
	}
}

package core_test

import (
	"crypto/sha256"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/internal/pcap"
	"github.com/netcore-go/netcore/internal/testnet"
)

// TestEthernetPipeDevices runs TCP between two Ethernet stacks attached
// to the two ends of a pipe as plain devices (not JoinPipe): the frames
// cross the pipe and its pumps, pure ACKs are repeated without Offload
// (the link has no peer), and with Offload the 64 KiB super-segments pass as frames too.
func TestEthernetPipeDevices(t *testing.T) {
	for _, offload := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "offload"}[offload], func(t *testing.T) {
			leakCheck(t)
			ca := core.Config{Medium: core.MediumEthernet, Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrA, 24)}}
			cb := core.Config{Medium: core.MediumEthernet, Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrB, 24)}}
			a, b := testnet.Start(t, ca), testnet.Start(t, cb)
			p := core.NewPipe(1024)
			if err := a.AttachDevice(&core.PipeDev{End: p.A, Medium: core.MediumEthernet, Offload: offload}); err != nil {
				t.Fatal(err)
			}
			if err := b.AttachDevice(&core.PipeDev{End: p.B, Medium: core.MediumEthernet, Offload: offload}); err != nil {
				t.Fatal(err)
			}
			pair := testnet.Pair{A: a, B: b}
			cli, srv := tcpPair(t, pair, testnet.AddrB)
			size := 8 << 20
			if testing.Short() {
				size = 2 << 20
			}
			data := randomBytes(size)
			go sendAll(t, a.CommandChannel(), cli, data, 1<<20)
			sum, n := recvAll(t, b.CommandChannel(), srv)
			if n != size || sum != sha256.Sum256(data) {
				t.Fatalf("received %d bytes sha %x, want %d bytes sha %x", n, sum[:8], size, sha256.Sum256(data))
			}
			st := b.Stats()
			// With Offload gVisor marks every TCP packet, pure ACKs too,
			// with GSO options, which the repeater leaves alone (on
			// MediumIP as well).
			if !offload && st.ACKsRepeated == 0 {
				t.Errorf("ACKsRepeated = 0: want the pure ACKs repeated on a link without a peer")
			}
			if dropped := st.FramesOtherHost + st.FramesRunt + st.FramesOversized + st.FramesUnknownType; dropped != 0 {
				t.Errorf("%d frames dropped", dropped)
			}
		})
	}
}

// TestEthernetPCAP: an Ethernet stack's capture has link type Ethernet,
// and its records are whole frames: the ARP exchange, then IPv4 frames
// whose header names both stacks' MACs.
func TestEthernetPCAP(t *testing.T) {
	leakCheck(t)
	capture := &lockedBuffer{}
	macA, macB := core.MustParseMAC("02:00:00:00:00:0a"), core.MustParseMAC("02:00:00:00:00:0b")
	p := testnet.NewPair(t, testnet.WithEthernet(), func(a, b *core.Config) { a.MAC, b.MAC, a.PCAP = macA, macB, capture })
	udpRoundTrip(t, p, testnet.AddrB)
	p.A.Close()
	f, err := pcap.Parse(capture.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.LinkType != pcap.LinkTypeEthernet {
		t.Fatalf("link type %d, want LINKTYPE_ETHERNET (1)", f.LinkType)
	}
	var arp, ip int
	for _, r := range f.Records {
		if len(r.Data) < 14 || r.Len != len(r.Data) {
			t.Fatalf("record of %d bytes (%d captured): want whole frames", r.Len, len(r.Data))
		}
		switch etherType(r.Data) {
		case etherARP:
			arp++
		case etherIPv4:
			ip++
			if src, dst := core.MAC(r.Data[6:12]), core.MAC(r.Data[:6]); !(src == macA && dst == macB) && !(src == macB && dst == macA) {
				t.Errorf("IPv4 frame %v -> %v: want between %v and %v", src, dst, macA, macB)
			}
		}
	}
	if arp < 2 || ip < 1 {
		t.Errorf("%d ARP and %d IPv4 frames captured: want the request and reply, and the datagram", arp, ip)
	}
}

// crossDev is an Ethernet device whose outbound frames a forwarder takes
// from the stack's Source and whose inbound frames it pushes into the
// stack's Receiver (a PullDevice and PushDevice that wants GSO, as
// tundev.Virtual is on MediumIP).
type crossDev struct {
	medium core.Medium
	src    chan core.Source
	recv   chan core.Receiver
	closed chan struct{}
	once   sync.Once
}

func newCrossDev(m core.Medium) *crossDev {
	return &crossDev{medium: m, src: make(chan core.Source, 1), recv: make(chan core.Receiver, 1), closed: make(chan struct{})}
}

func (d *crossDev) SetSource(s core.Source)     { d.src <- s }
func (d *crossDev) SetReceiver(r core.Receiver) { d.recv <- r }
func (d *crossDev) LinkMedium() core.Medium     { return d.medium }
func (d *crossDev) WantsGSO() bool              { return true }
func (d *crossDev) BatchSize() int              { return 64 }
func (d *crossDev) ReadPackets([][]byte, []int) (int, error) {
	<-d.closed
	return 0, net.ErrClosed
}
func (d *crossDev) WritePackets(p [][]byte) (int, error) { return len(p), nil }
func (d *crossDev) Close() error                         { d.once.Do(func() { close(d.closed) }); return nil }

// forward moves frames from one stack's Source to another's Receiver until
// either side closes, and records the largest frame.
func forward(from, to *crossDev, largest *atomic.Int64, wg *sync.WaitGroup) {
	defer wg.Done()
	src, recv := <-from.src, <-to.recv
	bufs, sizes := make([][]byte, 64), make([]int, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	out := make([][]byte, 64)
	for {
		n, err := src.ReadPackets(from.closed, bufs, sizes, 0)
		if err != nil {
			return
		}
		for i := range n {
			out[i] = bufs[i][:sizes[i]]
			if int64(sizes[i]) > largest.Load() {
				largest.Store(int64(sizes[i]))
			}
		}
		if recv.Receive(out[:n], 0) != nil {
			return
		}
	}
}

// TestEthernetSourceReceiver runs TCP between two stacks whose devices are
// a Source and a Receiver joined by forwarders: super-segments are cut
// into wire-sized frames behind their Ethernet header, and the receiving
// stack coalesces them again behind it. MediumIP runs alongside, as the
// reference.
func TestEthernetSourceReceiver(t *testing.T) {
	for _, m := range []core.Medium{core.MediumIP, core.MediumEthernet} {
		t.Run(m.String(), func(t *testing.T) { testSourceReceiver(t, m) })
	}
}

func testSourceReceiver(t *testing.T, m core.Medium) {
	leakCheck(t)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the stacks' cleanups, which end the forwarders
	ca := core.Config{Medium: m, Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrA, 24)}}
	cb := core.Config{Medium: m, Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrB, 24)}}
	a, b := testnet.Start(t, ca), testnet.Start(t, cb)
	da, db := newCrossDev(m), newCrossDev(m)
	var largest atomic.Int64
	wg.Add(2)
	go forward(da, db, &largest, &wg)
	go forward(db, da, &largest, &wg)
	if err := a.AttachDevice(da); err != nil {
		t.Fatal(err)
	}
	if err := b.AttachDevice(db); err != nil {
		t.Fatal(err)
	}
	cli, srv := tcpPair(t, testnet.Pair{A: a, B: b}, testnet.AddrB)
	size := 8 << 20
	if testing.Short() {
		size = 2 << 20
	}
	data := randomBytes(size)
	go sendAll(t, a.CommandChannel(), cli, data, 1<<20)
	sum, n := recvAll(t, b.CommandChannel(), srv)
	if n != size || sum != sha256.Sum256(data) {
		t.Fatalf("received %d bytes sha %x, want %d bytes sha %x", n, sum[:8], size, sha256.Sum256(data))
	}
	hdr := 0
	if m == core.MediumEthernet {
		hdr = core.EthernetHeaderLen
	}
	t.Logf("largest frame %d bytes", largest.Load())
	if got := largest.Load(); got > int64(1500+hdr) {
		t.Errorf("largest frame %d bytes, want at most %d (wire-sized)", got, 1500+hdr)
	}
	if st := b.Stats(); st.InboundInvalid+st.FramesRunt+st.FramesOversized+st.FramesOtherHost+st.FramesUnknownType+st.TCPChecksumErrors != 0 {
		t.Errorf("B dropped packets: %+v", st)
	}
}

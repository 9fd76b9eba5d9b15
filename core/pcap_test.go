package core_test

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/sniffer"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/internal/pcap"
	"github.com/netcore-go/netcore/internal/testnet"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer // +checklocks:mu
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

// readCapture closes ns (the capture is complete then) and reads it back.
func readCapture(t *testing.T, ns *core.Netstack, capture *lockedBuffer) []pcap.Record {
	t.Helper()
	ns.Close()
	if err := ns.PCAPError(); err != nil {
		t.Fatalf("PCAPError: %v", err)
	}
	data := capture.Bytes()
	f, err := pcap.Parse(data)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	if f.LinkType != pcap.LinkTypeRaw {
		t.Fatalf("link type %d, want LINKTYPE_RAW", f.LinkType)
	}
	for i := 1; i < len(f.Records); i++ {
		if f.Records[i].Time.Before(f.Records[i-1].Time) {
			t.Fatalf("record %d at %v is before record %d at %v", i, f.Records[i].Time, i-1, f.Records[i-1].Time)
		}
	}
	capinfosInOrder(t, data)
	return f.Records
}

// capinfosInOrder checks a capture with Wireshark's capinfos, where it is
// installed (.ci/run installs it): it must read the file and find it in
// strict time order, with nanosecond timestamps.
func capinfosInOrder(t *testing.T, data []byte) {
	t.Helper()
	capinfos, err := exec.LookPath("capinfos")
	if err != nil {
		t.Log("capinfos not installed: time order checked by pcap.Parse only")
		return
	}
	file := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(capinfos, "-o", "-t", "-E", file).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos: %v\n%s", err, out)
	}
	for _, want := range []string{`Strict time order:\s+True`, `nanosecond`, `Raw IP`} {
		if !regexp.MustCompile(want).Match(out) {
			t.Fatalf("capinfos lacks %q:\n%s", want, out)
		}
	}
}

// udpExchange sends msg from A to B and reply back, over p.
func udpExchange(t *testing.T, p testnet.Pair, msg, reply string) {
	t.Helper()
	a, b := p.A.CommandChannel(), p.B.CommandChannel()
	ub := do[core.UDPBound](t, b, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrB, 7)})
	ua := do[core.UDPBound](t, a, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(testnet.AddrA, 0)})
	do[core.UDPSent](t, a, ua.Handle, core.UDPSend{To: ub.Local, Buf: []byte(msg)})
	do[core.UDPRecvd](t, b, ub.Handle, core.UDPRecv{Buf: make([]byte, 64)})
	do[core.Addrs](t, b, ub.Handle, core.UDPConnect{Remote: ua.Local})
	do[core.UDPSent](t, b, ub.Handle, core.UDPSend{Buf: []byte(reply)})
	do[core.UDPRecvd](t, a, ua.Handle, core.UDPRecv{Buf: make([]byte, 64)})
	do[core.OK](t, a, ua.Handle, core.CloseSocket{})
	do[core.OK](t, b, ub.Handle, core.CloseSocket{})
}

// wantUDPPayloads checks that recs are exactly the datagrams want, in order.
func wantUDPPayloads(t *testing.T, recs []pcap.Record, want ...string) {
	t.Helper()
	if len(recs) != len(want) {
		t.Fatalf("captured %d packets, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		if r.Len != len(r.Data) || !bytes.HasSuffix(r.Data, []byte(want[i])) {
			t.Fatalf("packet %d: %x, want the datagram %q", i, r.Data, want[i])
		}
	}
}

// TestPCAP captures a UDP exchange and parses the pcap records back.
func TestPCAP(t *testing.T) {
	leakCheck(t)
	var capture lockedBuffer
	p := testnet.NewPair(t, func(a, b *core.Config) { a.PCAP = &capture })
	udpExchange(t, p, "captured!", "reply")
	wantUDPPayloads(t, readCapture(t, p.A, &capture), "captured!", "reply")
}

// TestPCAPPerStack runs two pairs in one process, one stack of each with a
// capture of its own: each file holds exactly its own stack's packets, the
// stacks without Config.PCAP capture nothing, and gVisor's process-wide
// sniffer.LogPackets is left as it was.
func TestPCAPPerStack(t *testing.T) {
	leakCheck(t)
	old := sniffer.LogPackets.Load()
	sniffer.LogPackets.Store(1) // gVisor's default
	t.Cleanup(func() { sniffer.LogPackets.Store(old) })

	var c1, c2 lockedBuffer
	p1 := testnet.NewPair(t, func(a, b *core.Config) { a.PCAP = &c1 })
	p2 := testnet.NewPair(t, func(a, b *core.Config) { a.PCAP = &c2 })
	if got := sniffer.LogPackets.Load(); got != 1 {
		t.Fatalf("sniffer.LogPackets = %d after stacks with Config.PCAP, want 1 (untouched)", got)
	}
	udpExchange(t, p1, "pair one", "one back")
	udpExchange(t, p2, "pair two", "two back")
	udpExchange(t, p1, "one again", "one more")
	wantUDPPayloads(t, readCapture(t, p1.A, &c1), "pair one", "one back", "one again", "one more")
	wantUDPPayloads(t, readCapture(t, p2.A, &c2), "pair two", "two back")
	if p1.B.PCAPError() != nil || p2.B.PCAPError() != nil {
		t.Fatal("a stack without a capture reports a capture error")
	}
}

// TestPCAPSuperSegments moves 1 MiB of TCP over JoinPipe (TCP crosses in
// host-GSO super-segments) and checks both captures hold what each stack
// saw: super-segments whole, out of A and into B, and A's data segments
// reassemble to exactly the bytes sent.
func TestPCAPSuperSegments(t *testing.T) {
	leakCheck(t)
	var ca, cb lockedBuffer
	p := testnet.NewPair(t, func(a, b *core.Config) { a.PCAP, b.PCAP = &ca, &cb })
	cli, srv := tcpPair(t, p, testnet.AddrB)
	data := randomBytes(1 << 20)
	go sendAll(t, p.A.CommandChannel(), cli, data, 256<<10)
	if sum, n := recvAll(t, p.B.CommandChannel(), srv); n != len(data) || sum != sha256Sum(data) {
		t.Fatalf("received %d bytes, want %d intact", n, len(data))
	}
	recsA, recsB := readCapture(t, p.A, &ca), readCapture(t, p.B, &cb)
	got, bigA := reassemble(t, recsA, testnet.AddrA)
	if !bytes.Equal(got, data) {
		t.Fatalf("A's capture reassembles to %d bytes, not the %d sent", len(got), len(data))
	}
	gotB, bigB := reassemble(t, recsB, testnet.AddrA)
	if !bytes.Equal(gotB, data) {
		t.Fatalf("B's capture reassembles to %d bytes, not the %d received", len(gotB), len(data))
	}
	if bigA == 0 || bigB == 0 {
		t.Fatalf("super-segments (> MTU %d) captured: %d out of A, %d into B; want some each", p.A.MTU(), bigA, bigB)
	}
}

// reassemble rebuilds the TCP stream from src in recs (IPv4), checking
// every record is whole, and counts the packets larger than the MTU.
func reassemble(t *testing.T, recs []pcap.Record, src netip.Addr) (stream []byte, big int) {
	t.Helper()
	var isn uint32
	seen := false
	var out []byte
	for i, r := range recs {
		if r.Len != len(r.Data) {
			t.Fatalf("record %d holds %d of %d bytes", i, len(r.Data), r.Len)
		}
		ip := header.IPv4(r.Data)
		if !ip.IsValid(len(r.Data)) || ip.TransportProtocol() != header.TCPProtocolNumber || ip.SourceAddress().As4() != src.As4() {
			continue
		}
		tcp := header.TCP(r.Data[ip.HeaderLength():])
		if tcp.Flags().Contains(header.TCPFlagSyn) {
			isn, seen = tcp.SequenceNumber(), true
			continue
		}
		payload := tcp[tcp.DataOffset():]
		if len(payload) == 0 || !seen {
			continue
		}
		if len(r.Data) > 1500 {
			big++
		}
		off := int(tcp.SequenceNumber() - isn - 1)
		if off+len(payload) > len(out) {
			out = append(out, make([]byte, off+len(payload)-len(out))...)
		}
		copy(out[off:], payload)
	}
	return out, big
}

// failAfter fails every write past its first n bytes.
type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(b []byte) (int, error) {
	if len(b) > f.n {
		return 0, f.err
	}
	f.n -= len(b)
	return len(b), nil
}

// TestPCAPError checks that a capture whose writer fails is reported by
// PCAPError, matchable, and stops neither the traffic nor Close: the writer
// takes the file header, then fails as soon as records are written, which
// is at the latest when Close writes out the buffer.
func TestPCAPError(t *testing.T) {
	leakCheck(t)
	errFull := errors.New("disk full")
	p := testnet.NewPair(t, func(a, b *core.Config) { a.PCAP = &failAfter{n: 24, err: errFull} })
	udpExchange(t, p, "lost capture", "still delivered")
	if err := p.A.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.A.PCAPError(); !errors.Is(err, errFull) {
		t.Fatalf("PCAPError: %v, want the writer's error", err)
	}
	ns, err := core.New(core.Config{PCAP: &failAfter{err: errFull}})
	if err == nil {
		ns.Close()
	}
	if !errors.Is(err, errFull) {
		t.Fatalf("New with a writer that fails at once: %v, want its error", err)
	}
}

package pcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// inbound makes a packet as a link delivers it: all of it payload.
func inbound(b []byte) *stack.PacketBuffer {
	return stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
}

// outbound makes a packet as gVisor writes one: headers pushed into the
// reserved space, the payload in views of chunk bytes each.
func outbound(netHdr, transHdr, payload []byte, chunk int) *stack.PacketBuffer {
	var data buffer.Buffer
	for p := payload; len(p) > 0; p = p[min(chunk, len(p)):] {
		data.Append(buffer.NewViewWithData(p[:min(chunk, len(p))]))
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: len(netHdr) + len(transHdr) + 14,
		Payload:            data,
	})
	copy(pkt.TransportHeader().Push(len(transHdr)), transHdr)
	copy(pkt.NetworkHeader().Push(len(netHdr)), netHdr)
	return pkt
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func parse(t *testing.T, b []byte) File {
	t.Helper()
	f, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func newWriter(t *testing.T, w io.Writer, opts Options) *Writer {
	t.Helper()
	pw, err := NewWriter(w, opts)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	return pw
}

// TestFileHeader checks the header readers rely on: nanosecond magic,
// version 2.4, zone 0, the snap length and LINKTYPE_RAW.
func TestFileHeader(t *testing.T) {
	var out bytes.Buffer
	newWriter(t, &out, Options{SnapLen: 1234})
	want := []byte{0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xd2, 0x04, 0, 0, 101, 0, 0, 0}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("header %x, want %x", out.Bytes(), want)
	}
}

// TestWholePackets checks that a record holds the packet as gVisor's views
// hold it, inbound (one payload) and outbound (pushed headers before a
// payload in several views), and nothing of a link header.
func TestWholePackets(t *testing.T) {
	ip, tcp, payload := pattern(20, 1), pattern(32, 50), pattern(3000, 100)
	withLink := outbound(ip, tcp, payload, 1000)
	copy(withLink.LinkHeader().Push(14), pattern(14, 200))
	for _, tc := range []struct {
		name string
		pkt  *stack.PacketBuffer
		want []byte
	}{
		{"inbound", inbound(pattern(1500, 9)), pattern(1500, 9)},
		{"outbound", outbound(ip, tcp, payload, 1000), concat(ip, tcp, payload)},
		{"outbound super-segment", outbound(ip, tcp, pattern(65000, 3), 4096), concat(ip, tcp, pattern(65000, 3))},
		{"link header skipped", withLink, concat(ip, tcp, payload)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.pkt.DecRef()
			var out bytes.Buffer
			w := newWriter(t, &out, Options{})
			if err := w.WritePacket(tc.pkt); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			f := parse(t, out.Bytes())
			if len(f.Records) != 1 {
				t.Fatalf("%d records, want 1", len(f.Records))
			}
			if r := f.Records[0]; r.Len != len(tc.want) || !bytes.Equal(r.Data, tc.want) {
				t.Fatalf("record of %d bytes (len %d), want the %d bytes of the packet", len(r.Data), r.Len, len(tc.want))
			}
		})
	}
}

func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// TestSnapLen checks that a record keeps the first SnapLen bytes, across
// view boundaries, and the packet's whole length.
func TestSnapLen(t *testing.T) {
	ip, tcp, payload := pattern(20, 1), pattern(32, 50), pattern(3000, 100)
	for _, snap := range []int{1, 20, 30, 52, 53, 1052, 3052, 5000} {
		t.Run(fmt.Sprint(snap), func(t *testing.T) {
			pkt := outbound(ip, tcp, payload, 1000)
			defer pkt.DecRef()
			var out bytes.Buffer
			w := newWriter(t, &out, Options{SnapLen: snap})
			if err := w.WritePacket(pkt); err != nil {
				t.Fatal(err)
			}
			w.Close()
			f := parse(t, out.Bytes())
			whole := concat(ip, tcp, payload)
			want := whole[:min(snap, len(whole))]
			if f.SnapLen != snap || len(f.Records) != 1 {
				t.Fatalf("snaplen %d, %d records", f.SnapLen, len(f.Records))
			}
			if r := f.Records[0]; r.Len != len(whole) || !bytes.Equal(r.Data, want) {
				t.Fatalf("got %d bytes of len %d, want %d of %d", len(r.Data), r.Len, len(want), len(whole))
			}
		})
	}
}

// TestConcurrentWritersTimeOrder writes from many goroutines at once and
// checks every record is whole and the timestamps never go backwards.
func TestConcurrentWritersTimeOrder(t *testing.T) {
	const writers, each = 8, 2000
	var out bytes.Buffer
	w := newWriter(t, &out, Options{})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				b := make([]byte, 40+i%200)
				binary.BigEndian.PutUint32(b, uint32(g))
				binary.BigEndian.PutUint32(b[4:], uint32(i))
				pkt := inbound(b)
				if err := w.WritePacket(pkt); err != nil {
					t.Error(err)
				}
				pkt.DecRef()
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f := parse(t, out.Bytes())
	if len(f.Records) != writers*each {
		t.Fatalf("%d records, want %d", len(f.Records), writers*each)
	}
	next := make([]uint32, writers)
	for i, r := range f.Records {
		if i > 0 && r.Time.Before(f.Records[i-1].Time) {
			t.Fatalf("record %d at %v, before record %d at %v", i, r.Time, i-1, f.Records[i-1].Time)
		}
		g, seq := binary.BigEndian.Uint32(r.Data), binary.BigEndian.Uint32(r.Data[4:])
		if seq != next[g] || r.Len != 40+int(seq)%200 {
			t.Fatalf("record %d: writer %d's packet %d (len %d), want its packet %d", i, g, seq, r.Len, next[g])
		}
		next[g]++
	}
	capinfosInOrder(t, out.Bytes())
}

// TestClockBackwards checks that a clock that goes back (a wall clock
// stepped, a test clock) never makes a record older than the one before.
func TestClockBackwards(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	times := []time.Duration{0, 5 * time.Millisecond, 2 * time.Millisecond, 7 * time.Millisecond, -time.Second, 9 * time.Millisecond}
	i := 0
	now := func() time.Time {
		d := times[min(i, len(times)-1)]
		i++
		return base.Add(d)
	}
	var out bytes.Buffer
	w := newWriter(t, &out, Options{Now: now}) // NewWriter takes times[0]
	for range len(times) - 1 {
		pkt := inbound(pattern(40, 0))
		w.WritePacket(pkt)
		pkt.DecRef()
	}
	w.Close()
	var got []time.Duration
	for _, r := range parse(t, out.Bytes()).Records {
		got = append(got, r.Time.Sub(base))
	}
	want := []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond, 9 * time.Millisecond}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("record times %v, want %v", got, want)
	}
}

// failWriter fails every write once it has taken n bytes.
type failWriter struct {
	n   int
	buf bytes.Buffer
}

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(b []byte) (int, error) {
	if f.buf.Len()+len(b) > f.n {
		k := max(0, f.n-f.buf.Len())
		f.buf.Write(b[:k])
		return k, errDiskFull
	}
	return f.buf.Write(b)
}

// TestWriteErrors checks that a failing io.Writer is reported, matchable,
// by NewWriter, WritePacket, Err and Close, and never panics.
func TestWriteErrors(t *testing.T) {
	if _, err := NewWriter(&failWriter{n: 10}, Options{}); !errors.Is(err, errDiskFull) {
		t.Fatalf("NewWriter on a failing writer: %v, want errDiskFull", err)
	}
	fw := &failWriter{n: 24 + 100<<10}
	w := newWriter(t, fw, Options{})
	var first error
	for range 200 { // 200 KiB: past the buffer, so the io.Writer fails mid-run
		pkt := inbound(pattern(1024, 1))
		if err := w.WritePacket(pkt); err != nil && first == nil {
			first = err
		}
		pkt.DecRef()
	}
	if !errors.Is(first, errDiskFull) || !errors.Is(w.Err(), errDiskFull) {
		t.Fatalf("WritePacket: %v, Err: %v; want errDiskFull", first, w.Err())
	}
	if err := w.Close(); !errors.Is(err, errDiskFull) {
		t.Fatalf("Close: %v, want errDiskFull", err)
	}
}

// TestCloseFlushes checks that records reach the io.Writer by Close at the
// latest, and that a closed Writer refuses more with ErrClosed.
func TestCloseFlushes(t *testing.T) {
	var out bytes.Buffer
	w := newWriter(t, &out, Options{})
	for range 3 {
		pkt := inbound(pattern(100, 1))
		w.WritePacket(pkt)
		pkt.DecRef()
	}
	if got := len(parse(t, out.Bytes()).Records); got != 0 {
		t.Fatalf("%d records before Close, want them buffered", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(parse(t, out.Bytes()).Records); got != 3 {
		t.Fatalf("%d records after Close, want 3", got)
	}
	pkt := inbound(pattern(100, 1))
	defer pkt.DecRef()
	if err := w.WritePacket(pkt); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WritePacket after Close: %v, want net.ErrClosed", err)
	}
	if err := w.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
	if w.Err() != nil {
		t.Fatalf("Err after a clean Close: %v", w.Err())
	}
}

// TestParseRejects checks Parse on what is not one of these captures.
func TestParseRejects(t *testing.T) {
	var out bytes.Buffer
	w := newWriter(t, &out, Options{})
	pkt := inbound(pattern(100, 1))
	w.WritePacket(pkt)
	pkt.DecRef()
	w.Close()
	good := out.Bytes()
	for name, b := range map[string][]byte{
		"empty":            nil,
		"microsecond":      append([]byte{0xd4, 0xc3, 0xb2, 0xa1}, good[4:]...),
		"truncated record": good[:len(good)-1],
		"short header":     good[:24+10],
	} {
		if _, err := Parse(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
}

// capinfosInOrder checks a capture with Wireshark's capinfos, where it is
// installed: it must read it and find it in strict time order.
func capinfosInOrder(t *testing.T, data []byte) {
	t.Helper()
	capinfos, err := exec.LookPath("capinfos")
	if err != nil {
		t.Log("capinfos not installed: time order checked by Parse only")
		return
	}
	file := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(capinfos, "-o", "-t", file).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`Strict time order:\s+True`).Match(out) || !strings.Contains(string(out), "nanosecond") {
		t.Fatalf("capinfos:\n%s", out)
	}
}

// Package pcap writes one stack's packet capture: the pcap format with
// nanosecond timestamps (magic 0xa1b23c4d) and link type LINKTYPE_RAW (each
// record is one IPv4 or IPv6 packet), records in time order.
//
// A Writer belongs to one stack; nothing in this package is process-wide
// (gVisor's link/sniffer, which netcore used before, checks the global
// sniffer.LogPackets on every packet and stamps records outside any lock,
// so its files were not in time order). Endpoint puts a Writer between
// gVisor and a link endpoint.
package pcap

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The file format (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-03.html).
const (
	// MagicNanos is the magic number of a pcap file whose record
	// timestamps are in nanoseconds.
	MagicNanos = 0xa1b23c4d
	// LinkTypeRaw is LINKTYPE_RAW: records begin with an IPv4 or IPv6
	// header.
	LinkTypeRaw = 101
	// LinkTypeEthernet is LINKTYPE_ETHERNET: records are Ethernet II
	// frames, header included (no FCS).
	LinkTypeEthernet = 1
	// DefaultSnapLen keeps all of a 64 KiB TCP super-segment.
	DefaultSnapLen = 1 << 16

	fileHeaderLen   = 24
	recordHeaderLen = 16
	bufferSize      = 64 << 10
)

// ErrClosed is returned by a Writer's methods after Close; it matches
// net.ErrClosed.
var ErrClosed = fmt.Errorf("pcap: writer closed: %w", net.ErrClosed)

// Options configures a Writer. The zero value works.
type Options struct {
	// SnapLen is the most of each packet a record keeps (the record still
	// holds the packet's whole length). Default DefaultSnapLen.
	SnapLen int
	// Now tells the time of each record. Default time.Now.
	Now func() time.Time
	// Ethernet makes the file's link type LinkTypeEthernet: records then
	// keep each packet's link header. Default LinkTypeRaw.
	Ethernet bool
}

// Writer writes pcap records to an io.Writer, one per packet, through a
// buffer: the records are complete in the io.Writer after Close. It is safe
// for concurrent use. Each record is stamped and written under one lock, so
// timestamps in the file never go backwards, whichever goroutine writes.
// The io.Writer is called with that lock held (one writer at a time, in
// order); it must not call back into the Writer.
type Writer struct {
	now      func() time.Time
	snapLen  int
	ethernet bool // LinkTypeEthernet: records keep the link header

	mu sync.Mutex
	// base is the time of NewWriter; last, the Unix nanoseconds of the last
	// record; err, the first write error; hdr, the record header's scratch.
	bw     *bufio.Writer         // +checklocks:mu
	base   time.Time             // +checklocks:mu
	last   int64                 // +checklocks:mu
	err    error                 // +checklocks:mu
	closed bool                  // +checklocks:mu
	hdr    [recordHeaderLen]byte // +checklocks:mu
}

// NewWriter writes the file header to w and returns a Writer for the
// records. The header is written through at once, so an io.Writer that
// fails shows it here.
func NewWriter(w io.Writer, opts Options) (*Writer, error) {
	if opts.SnapLen <= 0 {
		opts.SnapLen = DefaultSnapLen
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	pw := &Writer{now: opts.Now, snapLen: opts.SnapLen, bw: bufio.NewWriterSize(w, bufferSize), ethernet: opts.Ethernet}
	pw.base = pw.now()
	pw.last = pw.base.UnixNano()
	linkType := uint32(LinkTypeRaw)
	if opts.Ethernet {
		linkType = LinkTypeEthernet
	}
	if _, err := pw.bw.Write(fileHeader(opts.SnapLen, linkType)); err != nil {
		return nil, fmt.Errorf("pcap: file header: %w", err)
	}
	if err := pw.bw.Flush(); err != nil {
		return nil, fmt.Errorf("pcap: file header: %w", err)
	}
	return pw, nil
}

func fileHeader(snapLen int, linkType uint32) []byte {
	b := make([]byte, fileHeaderLen)
	binary.LittleEndian.PutUint32(b[0:], MagicNanos)
	binary.LittleEndian.PutUint16(b[4:], 2) // version 2.4
	binary.LittleEndian.PutUint16(b[6:], 4)
	// thiszone and sigfigs stay 0, as the format asks.
	binary.LittleEndian.PutUint32(b[16:], uint32(snapLen))
	binary.LittleEndian.PutUint32(b[20:], linkType)
	return b
}

// WritePacket writes one record holding pkt's IP packet (everything after
// any link header; with Options.Ethernet the frame, link header
// included): its headers and payload as gVisor's views hold them,
// up to the snap length. After the first write error every call returns
// that error and writes nothing; after Close, ErrClosed.
func (w *Writer) WritePacket(pkt *stack.PacketBuffer) error {
	skip := len(pkt.VirtioNetHeader().Slice())
	if !w.ethernet {
		skip += len(pkt.LinkHeader().Slice())
	}
	size := pkt.Size() - skip
	views, off := pkt.AsViewList()
	off += skip
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	capLen := min(size, w.snapLen)
	w.putRecordHeaderLocked(capLen, size)
	_, err := w.bw.Write(w.hdr[:])
	for v := views.Front(); v != nil && capLen > 0 && err == nil; v = v.Next() {
		b := v.AsSlice()
		if off >= len(b) {
			off -= len(b)
			continue
		}
		b = b[off:min(len(b), off+capLen)]
		off = 0
		capLen -= len(b)
		_, err = w.bw.Write(b)
	}
	return w.failLocked(err)
}

// +checklocks:w.mu
func (w *Writer) usableLocked() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

// putRecordHeaderLocked fills w.hdr for a record of capLen bytes out of a
// packet of size bytes, stamped now.
//
// +checklocks:w.mu
func (w *Writer) putRecordHeaderLocked(capLen, size int) {
	ns := w.stampLocked()
	binary.LittleEndian.PutUint32(w.hdr[0:], uint32(ns/1e9))
	binary.LittleEndian.PutUint32(w.hdr[4:], uint32(ns%1e9))
	binary.LittleEndian.PutUint32(w.hdr[8:], uint32(capLen))
	binary.LittleEndian.PutUint32(w.hdr[12:], uint32(size))
}

// stampLocked returns the time of a record being written, in Unix
// nanoseconds: the wall clock at NewWriter plus the time elapsed since, on
// the monotonic clock where Now has one, and never before the last record's.
//
// +checklocks:w.mu
func (w *Writer) stampLocked() int64 {
	ns := w.base.UnixNano() + int64(w.now().Sub(w.base))
	if ns < w.last {
		ns = w.last
	}
	w.last = ns
	return ns
}

// +checklocks:w.mu
func (w *Writer) failLocked(err error) error {
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("pcap: write: %w", err)
	}
	return w.err
}

// Err returns the first error writing to the io.Writer met, which stopped
// the capture, or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close writes out the buffered records and stops the Writer: later calls
// return ErrClosed. It does not close the io.Writer. It returns the first
// write error, if any (Err's), and ErrClosed when called again.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err == nil {
		w.failLocked(w.bw.Flush())
	}
	w.closed = true
	return w.err
}

package core

import (
	"fmt"
	"sync"

	"github.com/netcore-go/netcore/core/gso"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// A PullDevice is a Device whose reader takes the stack's outbound packets
// itself, on its own goroutine, instead of the stack writing them:
// AttachDevice gives it a Source (calling SetSource once) and runs no
// outbound pump for it, so a packet crosses one goroutine hand-off fewer
// and is copied once, from gVisor's buffers straight into the reader's.
// WritePackets is then not called by the stack. tundev.Virtual is one:
// wireguard-go's reads come straight from the stack.
type PullDevice interface {
	Device
	// SetSource hands the device the Source its reader takes outbound
	// packets from from then on.
	SetSource(s Source)
}

// A Source gives out a stack's outbound packets; see PullDevice.
type Source interface {
	// ReadPackets waits for outbound packets and writes up to len(bufs)
	// wire-sized ones, packet i into bufs[i][offset:] with its length in
	// sizes[i] (the layout of wireguard-go's tun.Device.Read), and returns
	// how many. TCP super-segments are cut into segments with their own
	// headers and checksums (one with more segments than bufs has room for
	// is continued by the next call), and checksums left to the device are
	// completed. On MediumEthernet each is a frame: every segment cut from
	// a super-segment gets the super-segment's Ethernet header. A packet
	// too large for its buffer is dropped and counted.
	// It returns an error matching net.ErrClosed once done is closed (nil
	// waits for the stack alone) or the stack is closed, and ErrInvalid
	// without buffers (or with fewer sizes than buffers). Calls are
	// serialised.
	ReadPackets(done <-chan struct{}, bufs [][]byte, sizes []int, offset int) (int, error)
}

// source is a stack's Source.
type source struct {
	link    *linkEP
	drained chan struct{} // closed once, when a reader finds the link drained
	once    sync.Once

	mu sync.Mutex
	// +checklocks:mu
	pending []*stack.PacketBuffer // dequeued, not yet started
	// +checklocks:mu
	next int // pending[next] is the next to start
	// +checklocks:mu
	cur *stack.PacketBuffer // the packet being written out
	// +checklocks:mu
	split gso.Splitter // cuts cur into wire packets
	// +checklocks:mu
	eth []byte // cur's link header on MediumEthernet, put in front of each wire packet
}

// ReadPackets implements Source.
func (s *source) ReadPackets(done <-chan struct{}, bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 || len(sizes) < len(bufs) {
		return 0, fmt.Errorf("netcore: read outbound: no buffers: %w", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if n := s.fill(bufs, sizes, offset); n > 0 {
			return n, nil
		}
		select {
		case <-s.link.ready:
		case <-done:
			return 0, fmt.Errorf("netcore: read outbound: %w", ErrClosed)
		case <-s.link.drained:
			if n := s.fill(bufs, sizes, offset); n > 0 {
				return n, nil
			}
			s.release()
			s.once.Do(func() { close(s.drained) })
			return 0, fmt.Errorf("netcore: read outbound: %w", ErrClosed)
		}
	}
}

// fill writes out what is queued, as far as bufs go.
//
// +checklocks:s.mu
func (s *source) fill(bufs [][]byte, sizes []int, offset int) int {
	k := 0
	for k < len(bufs) {
		if s.cur == nil && !s.start(len(bufs)-k) {
			break
		}
		n := s.write(bufs[k:], sizes[k:], offset)
		k += n
		if s.cur != nil {
			break // bufs are full
		}
	}
	return k
}

// start makes the next queued packet cur, dequeuing up to want more if
// none is pending. It reports false if there is none.
//
// +checklocks:s.mu
func (s *source) start(want int) bool {
	if s.next == len(s.pending) {
		s.pending = s.pending[:cap(s.pending)]
		if len(s.pending) == 0 {
			s.pending = make([]*stack.PacketBuffer, 64)
		}
		n := s.link.dequeue(s.pending[:min(want, len(s.pending))])
		s.pending, s.next = s.pending[:n], 0
		if n == 0 {
			return false
		}
	}
	pkt := s.pending[s.next]
	s.pending[s.next] = nil
	s.next++
	s.cur = pkt
	parts := pkt.AsSlices()
	if s.link.eth.on {
		parts, s.eth = cutLinkHeader(parts, s.eth[:0])
	}
	if s.split.Reset(parts, gsoOf(pkt)) != nil {
		s.drop()
		return s.start(want)
	}
	return true
}

// write writes cur's next wire packets into bufs and returns how many;
// cur is nil afterwards if it is done (written or dropped).
//
// +checklocks:s.mu
func (s *source) write(bufs [][]byte, sizes []int, offset int) int {
	k := 0
	l := len(s.eth)
	for ; k < len(bufs) && s.split.Remaining() > 0; k++ {
		b := packetAt(bufs[k], offset)
		if len(b) < l {
			s.drop()
			return k
		}
		n, err := s.split.Next(b[l:])
		if err != nil {
			s.drop()
			return k
		}
		copy(b, s.eth)
		sizes[k] = l + n
	}
	if s.split.Remaining() == 0 {
		s.finish()
	}
	return k
}

// finish lets go of cur, written out.
//
// +checklocks:s.mu
func (s *source) finish() {
	s.cur.DecRef()
	s.cur = nil
	s.split.Clear()
}

// drop lets go of cur, dropped.
//
// +checklocks:s.mu
func (s *source) drop() {
	s.link.drops.Add(1)
	s.finish()
}

// close lets go of every packet the source holds, once a reader in
// ReadPackets has left (the stack is stopping, so it does).
func (s *source) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release()
}

// release lets go of every packet the source still holds.
//
// +checklocks:s.mu
func (s *source) release() {
	if s.cur != nil {
		s.finish()
	}
	for i := s.next; i < len(s.pending); i++ {
		s.pending[i].DecRef()
		s.pending[i] = nil
	}
	s.pending, s.next = s.pending[:0], 0
}

// cutLinkHeader splits a packet's slices into its Ethernet header, copied
// into hdr, and the slices of its IP packet after it.
func cutLinkHeader(parts [][]byte, hdr []byte) ([][]byte, []byte) {
	for len(parts) > 0 && len(hdr) < EthernetHeaderLen {
		n := min(len(parts[0]), EthernetHeaderLen-len(hdr))
		hdr = append(hdr, parts[0][:n]...)
		if parts[0] = parts[0][n:]; len(parts[0]) == 0 {
			parts = parts[1:]
		}
	}
	return parts, hdr
}

package gso

// A Splitter writes out one packet, given as parts laid end to end (a
// gVisor packet's slices), as wire packets over as many calls as the
// reader's buffers need: a TCP super-segment with more segments than one
// read has buffers for is continued by the next. It does what Split does,
// segment by segment, without copying the packet into one slice first.
// The zero value holds no packet.
type Splitter struct {
	parts [][]byte         // the packet's bytes
	total int              // its size
	o     Options          // its metadata
	hdr   [MaxHeaders]byte // its headers, contiguous
	seg   int              // its next wire packet
	segs  int              // its wire packets
}

// Reset makes the packet of parts, described by o, the one the Splitter
// writes out; it fails with ErrBad, holding no packet, if o says it is a
// super-segment but it is not one o describes (or its headers exceed
// MaxHeaders). The Splitter keeps parts until the packet is done or Reset
// or Clear is called again.
func (s *Splitter) Reset(parts [][]byte, o Options) error {
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	*s = Splitter{parts: parts, total: total, o: o, segs: 1}
	if o.Kind == None {
		return nil
	}
	h := min(len(s.hdr), total)
	copyRange(s.hdr[:h], parts, 0)
	if err := o.check(s.hdr[:h], total); err != nil {
		s.Clear()
		return err
	}
	s.segs = o.Segments(total)
	return nil
}

// Remaining returns how many wire packets of the packet are left to write.
func (s *Splitter) Remaining() int { return s.segs - s.seg }

// Next writes the packet's next wire packet into b and returns its length.
// It fails with ErrBuffers if b is too small for it and ErrBad if the
// checksum o asks for cannot be completed; the caller may then drop the
// packet with Clear. Without a wire packet left it returns 0 and ErrBad.
func (s *Splitter) Next(b []byte) (int, error) {
	if s.seg >= s.segs {
		return 0, ErrBad
	}
	if s.o.Kind == None {
		n, err := finishPacket(s.parts, s.total, s.o, b)
		if err == nil {
			s.seg++
		}
		return n, err
	}
	if len(b) < s.o.segmentSize(s.seg, s.total) {
		return 0, ErrBuffers
	}
	n := s.o.segment(b, s.hdr[:], s.parts, s.total, s.seg, s.segs)
	s.seg++
	return n, nil
}

// Clear lets go of the packet.
func (s *Splitter) Clear() {
	s.parts, s.total, s.seg, s.segs = nil, 0, 0, 0
}

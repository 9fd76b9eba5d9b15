package core

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// synCheck checks that p is a checksummed TCP segment with flags and
// returns its header and options.
func synCheck(t *testing.T, p *stack.PacketBuffer, flags header.TCPFlags) (header.TCP, header.TCPOptions) {
	t.Helper()
	b := p.ToView().AsSlice()
	s, ok := parseTCP(b)
	if !ok || !s.checksumsValid() {
		t.Fatalf("copy %x: not TCP or bad checksums", b)
	}
	tcp := header.TCP(s.tcp)
	if tcp.Flags() != flags {
		t.Fatalf("copy flags %v; want %v", tcp.Flags(), flags)
	}
	return tcp, header.ParseTCPOptions(tcp.Options())
}

// TestSYNACKReplay: a SYN resent to a listening stack that answered it
// draws one copy of the stack's SYN-ACK, echoing the resent SYN's
// timestamp, its own moved on; at most synReplays per connection; none
// once the handshake's ACK came. IPv4 and IPv6.
func TestSYNACKReplay(t *testing.T) {
	for _, c := range dsackCases {
		t.Run(c.name, func(t *testing.T) {
			var r synRetrier
			r.every.Store(int64(time.Hour))
			t.Cleanup(r.stop)
			r.outbound(outPacket(t, c.segment(true, header.TCPFlagSyn|header.TCPFlagAck, 5000, 701, tsOpt(100, 50), nil)))
			replies := 0
			for i := range synReplays + 2 {
				p, _ := r.inbound(c.segment(false, header.TCPFlagSyn, 700, 0, tsOpt(uint32(60+i), 0), nil), 0)
				if p == nil {
					continue
				}
				replies++
				tcp, o := synCheck(t, p, header.TCPFlagSyn|header.TCPFlagAck)
				if tcp.SequenceNumber() != 5000 || tcp.AckNumber() != 701 || o.TSEcr != uint32(60+i) || tsNewer(100, o.TSVal) {
					t.Fatalf("copy seq %d ack %d TSval %d TSecr %d; want 5000, 701, at least 100, %d", tcp.SequenceNumber(), tcp.AckNumber(), o.TSVal, o.TSEcr, 60+i)
				}
				r.outbound(p) // through the link: not tracked again
				p.DecRef()
			}
			if replies != synReplays || r.replayed.Load() != synReplays {
				t.Fatalf("%d copies for %d SYNs (counted %d); want %d", replies, synReplays+2, r.replayed.Load(), synReplays)
			}
			// A SYN of another sequence number (another connection) draws none.
			r.outbound(outPacket(t, c.segment(true, header.TCPFlagSyn|header.TCPFlagAck, 5000, 701, tsOpt(100, 50), nil)))
			if p, _ := r.inbound(c.segment(false, header.TCPFlagSyn, 900, 0, tsOpt(70, 0), nil), 0); p != nil {
				p.DecRef()
				t.Fatal("a SYN of another sequence number drew a copy")
			}
			r.inbound(c.segment(false, header.TCPFlagAck, 701, 5001, tsOpt(71, 100), nil), 0)
			if n := r.n.Load(); n != 0 {
				t.Fatalf("%d handshakes tracked after the ACK; want 0", n)
			}
		})
	}
}

// TestSYNFloodNoReplay: a flood of SYNs, each of a new connection, draws
// no copy (the stack's own SYN-ACK answers each once), and the link
// tracks at most maxSYNConns handshakes.
func TestSYNFloodNoReplay(t *testing.T) {
	c := dsackCases[0]
	var r synRetrier
	r.every.Store(int64(time.Hour))
	t.Cleanup(r.stop)
	for i := range 3 * maxSYNConns {
		syn := c.segment(false, header.TCPFlagSyn, uint32(i), 0, tsOpt(1, 0), nil)
		header.TCP(syn[header.IPv4MinimumSize:]).SetSourcePort(uint16(1000 + i))
		if p, _ := r.inbound(syn, 0); p != nil {
			t.Fatal("a first SYN drew a copy")
		}
		synack := c.segment(true, header.TCPFlagSyn|header.TCPFlagAck, 5000, uint32(i+1), tsOpt(100, 1), nil)
		header.TCP(synack[header.IPv4MinimumSize:]).SetDestinationPort(uint16(1000 + i))
		r.outbound(outPacket(t, synack))
	}
	if n := r.n.Load(); n != maxSYNConns || r.replayed.Load() != 0 {
		t.Fatalf("%d handshakes tracked, %d copies; want %d and 0", n, r.replayed.Load(), maxSYNConns)
	}
}

// TestSYNCopies: a SYN the stack sends is copied synCopies times, SYNRetry
// apart, each with its timestamp moved on; the SYN-ACK ends it.
func TestSYNCopies(t *testing.T) {
	for _, c := range dsackCases {
		t.Run(c.name, func(t *testing.T) {
			var r synRetrier
			sent := make(chan *stack.PacketBuffer, 2*synCopies)
			r.send = func(p *stack.PacketBuffer) {
				r.outbound(p) // through the link, as it sends: not a SYN of the stack
				sent <- p.IncRef()
			}
			r.every.Store(int64(time.Millisecond))
			t.Cleanup(r.stop)
			r.outbound(outPacket(t, c.segment(true, header.TCPFlagSyn, 700, 0, tsOpt(100, 0), nil)))
			last := uint32(100)
			for range synCopies {
				select {
				case p := <-sent:
					tcp, o := synCheck(t, p, header.TCPFlagSyn)
					if tcp.SequenceNumber() != 700 || tsNewer(last, o.TSVal) {
						t.Fatalf("copy seq %d TSval %d; want 700 and at least %d", tcp.SequenceNumber(), o.TSVal, last)
					}
					last = o.TSVal
					p.DecRef()
				case <-time.After(time.Minute):
					t.Fatal("no SYN copy in a minute")
				}
			}
			r.mu.Lock()
			var left int
			for _, sc := range r.conns {
				left = sc.left
			}
			r.mu.Unlock()
			if left != 0 || r.resent.Load() != synCopies {
				t.Fatalf("%d copies sent, %d left; want %d and 0", r.resent.Load(), left, synCopies)
			}
			r.inbound(c.segment(false, header.TCPFlagSyn|header.TCPFlagAck, 5000, 701, tsOpt(60, 100), nil), 0)
			if n := r.n.Load(); n != 0 {
				t.Fatalf("%d handshakes tracked after the SYN-ACK; want 0", n)
			}
		})
	}
}

// TestSYNHandshakeEndsOnGROPath: the handshake's ACK that arrives on the
// receive-offload path (a TUN with offloads: deliverGRO) ends the tracked
// handshake, as on the plain path; before, only deliver passed inbound
// packets on, so on a TUN every accepted connection stayed tracked until
// the table was full (maxSYNConns), and then each new SYN-ACK scanned it.
func TestSYNHandshakeEndsOnGROPath(t *testing.T) {
	c := dsackCases[0]
	l := newLinkEP(1500, 16)
	l.syn.every.Store(int64(time.Hour))
	var disp stubDispatcher
	l.Attach(&disp)
	t.Cleanup(l.close)
	l.syn.outbound(outPacket(t, c.segment(true, header.TCPFlagSyn|header.TCPFlagAck, 5000, 701, tsOpt(100, 50), nil)))
	if n := l.syn.n.Load(); n != 1 {
		t.Fatalf("%d handshakes tracked after the SYN-ACK; want 1", n)
	}
	var g groPath
	l.deliverGRO(&g, [][]byte{c.segment(false, header.TCPFlagAck, 701, 5001, tsOpt(71, 100), nil)})
	if disp.n != 1 {
		t.Fatalf("%d packets delivered; want 1", disp.n)
	}
	if n := l.syn.n.Load(); n != 0 {
		t.Fatalf("%d handshakes tracked after the ACK on the GRO path; want 0", n)
	}
}

package core

import (
	"io"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// Datagram is one message of a UDPSendBatch or UDPRecvBatch, shaped after
// golang.org/x/net/ipv4.Message: its bytes are Buffers, in order (a
// scatter/gather list; most callers use one buffer).
type Datagram struct {
	// Buffers holds the datagram to send, or the room a received one is
	// copied into. The engine reads or fills the caller's buffers (no copy
	// of its own); a blocking request borrows them until it is answered.
	Buffers [][]byte
	// Addr is the destination of a send (the zero AddrPort: the connected
	// peer); a receive sets it to the sender.
	Addr netip.AddrPort
	// N is set to the bytes sent or received.
	N int
	// Truncated is set on a receive whose datagram did not fit in Buffers:
	// they hold its start and the rest is discarded.
	Truncated bool
}

// UDPSendBatch sends Msgs in order, one datagram each, waiting for buffer
// space as a UDPSend does, and answers with how many were sent. When the
// stack's outbound queue fills (Config.OutboundQueueLen: the device or the
// peer takes packets more slowly than they come), it answers early with
// what it has sent rather than have the rest dropped: the
// caller sends the rest again. A batch that finds the queue full before
// it has sent any waits (parked) until the queue is half empty. It stops
// at the first message that fails (too long for a datagram, ErrMessageTooLong;
// a bad destination, ErrInvalidAddr; …) and answers that error together with
// UDPBatchDone.N, the messages sent before it: those went out, the failing
// one and the rest did not. A cancelled batch answers the number sent so
// far. Answers UDPBatchDone, or Result (see UDPSend.Result).
type UDPSendBatch struct {
	Msgs   []Datagram
	Result *UDPBatchDone
}

// UDPRecvBatch waits for at least one datagram, then fills as many of Msgs
// as datagrams are already there, without waiting for more (as recvmmsg
// with MSG_WAITFORONE does). Each filled message gets N, Addr and
// Truncated; the answer says how many were filled. An error (an ICMP
// error gVisor reports on a connected socket) ends the batch: with
// messages filled before it, it waits for the next receive. Answers
// UDPBatchDone, or Result (see UDPRecv.Result).
type UDPRecvBatch struct {
	Msgs   []Datagram
	Result *UDPBatchDone
}

// UDPBatchDone answers UDPSendBatch and UDPRecvBatch: N messages were sent,
// or filled.
type UDPBatchDone struct{ N int }

func (UDPSendBatch) command()  {}
func (UDPRecvBatch) command()  {}
func (UDPBatchDone) response() {}

// batchCmd returns cmd's batch, whether passed by value or by pointer, and
// whether it is a send.
func batchCmd(cmd Command) (msgs []Datagram, result *UDPBatchDone, send, ok bool) {
	switch c := cmd.(type) {
	case *UDPSendBatch:
		return c.Msgs, c.Result, true, true
	case UDPSendBatch:
		return c.Msgs, c.Result, true, true
	case *UDPRecvBatch:
		return c.Msgs, c.Result, false, true
	case UDPRecvBatch:
		return c.Msgs, c.Result, false, true
	}
	return nil, nil, false, false
}

// batchDone is the answer for n messages done: result filled, or a value.
func batchDone(result *UDPBatchDone, n int) Response {
	if result != nil {
		*result = UDPBatchDone{N: n}
		return result
	}
	return UDPBatchDone{N: n}
}

// tryBatch runs a batch command once; r.progress counts the messages a
// parked send has sent.
func (s *socket) tryBatch(r *Request) (Response, error, bool) {
	msgs, result, send, _ := batchCmd(r.cmd)
	if send {
		return s.udpSendBatch(r, msgs, result)
	}
	return s.udpRecvBatch(msgs, result)
}

func (s *socket) udpSendBatch(r *Request, msgs []Datagram, result *UDPBatchDone) (Response, error, bool) {
	sent := 0 // by this try
	for r.progress < len(msgs) {
		if s.ns.link.outboundFull() {
			if sent > 0 {
				break // the rest would be dropped: answer what went (see UDPSendBatch)
			}
			if s.ns.link.room.wait(s, s.ns.link) {
				return nil, nil, true // parked until the queue drains
			}
		}
		m := &msgs[r.progress]
		n, err, wait := s.sendGathered(m.Addr, m.Buffers)
		if wait {
			return nil, nil, true
		}
		if err != nil {
			return batchDone(result, r.progress), err, false
		}
		m.N = n
		r.progress++
		sent++
	}
	return batchDone(result, r.progress), nil, false
}

// roomWaiters are the sockets whose send batches wait for the outbound
// queue to drain; the link marks them ready once it is half empty. Its
// mutex is a leaf, taken under the link's mu (dequeue) and without it.
type roomWaiters struct {
	mu      sync.Mutex
	wanted  atomic.Bool // some socket waits
	sockets []*socket   // +checklocks:mu
}

// wait puts s on the list and reports whether the queue is still full;
// if it is not, s should go on (a wake-up may come anyway: harmless, the
// engine retries parked requests in order).
func (w *roomWaiters) wait(s *socket, l *linkEP) bool {
	w.mu.Lock()
	if !slices.Contains(w.sockets, s) {
		w.sockets = append(w.sockets, s)
	}
	w.wanted.Store(true)
	w.mu.Unlock()
	return l.outboundFull()
}

// drainedTo runs when the queue holds n of its size packets: at half or
// less it marks every waiting socket ready.
func (w *roomWaiters) drainedTo(n, size int) {
	if !w.wanted.Load() || n > size/2 {
		return
	}
	w.mu.Lock()
	list := w.sockets
	w.sockets = nil
	w.wanted.Store(false)
	w.mu.Unlock()
	for _, s := range list {
		s.ns.markReady(s)
	}
}

// outboundFull reports whether the outbound queue has no room: a packet
// sent now would be dropped (Stats.OutboundDrops).
func (l *linkEP) outboundFull() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n == len(l.q)
}

// sendGathered sends bufs as one datagram.
func (s *socket) sendGathered(to netip.AddrPort, bufs [][]byte) (int, error, bool) {
	if len(bufs) == 1 {
		return s.sendDatagram(to, bufs[0])
	}
	q := s.dgrams
	q.gather.reset(bufs)
	if q.gather.Len() > maxDatagram {
		q.gather.reset(nil)
		return 0, ErrMessageTooLong, false
	}
	n, err, wait := s.writeDatagram(to, &q.gather)
	q.gather.reset(nil)
	return n, err, wait
}

func (s *socket) udpRecvBatch(msgs []Datagram, result *UDPBatchDone) (Response, error, bool) {
	if !haveRoom(msgs) {
		return nil, ErrEmptyBuffer, false
	}
	n := 0
	for ; n < len(msgs); n++ {
		m := &msgs[n]
		v, err, wait := s.recvScattered(m.Buffers)
		if wait {
			break
		}
		if err != nil {
			if n == 0 {
				return nil, err, false
			}
			s.dgrams.pending = err // the next receive reports it
			break
		}
		m.N, m.Addr, m.Truncated = v.N, v.From, v.Truncated
	}
	if n == 0 {
		return nil, nil, true
	}
	return batchDone(result, n), nil, false
}

// haveRoom reports whether msgs is not empty and every message has room
// for at least one byte (gVisor drops a datagram read into none).
func haveRoom(msgs []Datagram) bool {
	for i := range msgs {
		room := 0
		for _, b := range msgs[i].Buffers {
			room += len(b)
		}
		if room == 0 {
			return false
		}
	}
	return len(msgs) > 0
}

// recvScattered takes the next datagram into bufs, in order.
func (s *socket) recvScattered(bufs [][]byte) (UDPRecvd, error, bool) {
	if len(bufs) == 1 {
		return s.recvDatagram(bufs[0])
	}
	q := s.dgrams
	q.scatter.reset(bufs)
	defer q.scatter.reset(nil)
	if v, ok := s.recvFastTo(&q.scatter, false); ok {
		return v, nil, false
	}
	if v, err, ok := s.recvQueuedTo(&q.scatter); ok {
		return v, err, false
	}
	res, terr := s.ep.Read(&q.scatter, tcpip.ReadOptions{NeedRemoteAddr: true})
	switch terr.(type) {
	case nil:
		q.taken++
		return UDPRecvd{N: res.Count, From: fromFull(res.RemoteAddr), Truncated: res.Total > res.Count}, nil, false
	case *tcpip.ErrWouldBlock:
		if v, ok := s.recvFastTo(&q.scatter, true); ok {
			return v, nil, false
		}
		return UDPRecvd{}, nil, true
	}
	return UDPRecvd{}, fromTCPIP(terr), false
}

// gatherReader reads a list of buffers in order: the payload of a send
// from several buffers.
type gatherReader struct {
	bufs [][]byte
	n    int // bytes left
}

func (g *gatherReader) reset(bufs [][]byte) {
	g.bufs, g.n = bufs, 0
	for _, b := range bufs {
		g.n += len(b)
	}
}

// Len implements tcpip.Payloader.
func (g *gatherReader) Len() int { return g.n }

// Read implements io.Reader.
func (g *gatherReader) Read(p []byte) (int, error) {
	if g.n == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && len(g.bufs) > 0 {
		c := copy(p[n:], g.bufs[0])
		n += c
		if g.bufs[0] = g.bufs[0][c:]; len(g.bufs[0]) == 0 {
			g.bufs = g.bufs[1:]
		}
	}
	g.n -= n
	return n, nil
}

// scatterWriter writes into a list of buffers in order, as a SliceWriter
// does into one: the room of a receive in several buffers.
type scatterWriter struct {
	bufs [][]byte
	cur  []byte // what is left of bufs[i]
	i    int
	room int // bytes left
}

func (w *scatterWriter) reset(bufs [][]byte) {
	*w = scatterWriter{bufs: bufs}
	for _, b := range bufs {
		w.room += len(b)
	}
	if len(bufs) > 0 {
		w.cur = bufs[0]
	}
}

// Write implements io.Writer; past the room it fails with io.ErrShortWrite.
func (w *scatterWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) && w.room > 0 {
		for len(w.cur) == 0 {
			w.i++
			w.cur = w.bufs[w.i]
		}
		c := copy(w.cur, p[n:])
		w.cur, w.room, n = w.cur[c:], w.room-c, n+c
	}
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

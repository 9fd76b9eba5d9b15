package core

import (
	"io"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// fwdEngine is the forwarder's engine-only state.
type fwdEngine struct {
	sock    *socket                // the open forwarder socket, or nil
	accept  bool                   // its ForwardOpen.AcceptTCP
	offers  []Flow                 // offered, not yet taken by ForwardAccept
	waiting map[uint64]*pendingTCP // TCP flows offered, waiting for their verdict
	udp     map[uint64]*socket     // open UDP flows
	timer   *time.Timer            // the UDP expiry sweep, while UDP flows are open
	armed   bool
}

func (e *fwdEngine) init() {
	e.waiting = make(map[uint64]*pendingTCP)
	e.udp = make(map[uint64]*socket)
}

// idleState tracks a UDP flow's traffic for its idle timeout.
type idleState struct {
	in, out uint64    // the endpoint's packet counts at the last sweep
	last    time.Time // when they last changed (or the flow began)
	assured bool      // traffic was seen both ways
}

// forwardOpen opens the forwarder socket.
func (ns *Netstack) forwardOpen(c ForwardOpen) (Response, error, bool) {
	f := ns.fwd
	if f == nil || f.eng.sock != nil {
		return nil, ErrInvalid, false
	}
	s := &socket{kind: kindForward, ns: ns}
	if _, err := ns.tab.add(s); err != nil {
		return nil, err, false
	}
	f.eng.sock, f.eng.accept = s, c.AcceptTCP
	f.mu.Lock()
	f.open, f.echo, f.acceptAll, f.handoff = true, c.Echo, c.AcceptTCP, nil
	if c.AcceptTCP {
		f.handoff = c.HandleTCP
	}
	f.mu.Unlock()
	return ForwardOpened{Handle: s.h}, nil, false
}

// forwardCommand runs a command on the forwarder socket.
func (ns *Netstack) forwardCommand(s *socket, r *Request) (Response, error, bool) {
	switch c := r.cmd.(type) {
	case CloseSocket:
		ns.closeSocket(s, false)
		return OK{}, nil, false
	case ForwardVerdict:
		return OK{}, ns.fwd.decide(c), false
	case ForwardEchoReply:
		return OK{}, ns.fwd.echoReply(c), false
	case ForwardAccept:
		return ns.blocking(s, r)
	}
	return nil, ErrWrongKind, false
}

// service takes the inbox and sweeps expired UDP flows when due, and
// answers a parked ForwardAccept. The engine calls it on every pass over
// the ready list.
func (f *forwarder) service() {
	if !f.due.Swap(false) {
		return
	}
	f.adopt()
	f.sweep(time.Now())
	if s := f.eng.sock; s != nil && len(f.eng.offers) > 0 && len(s.readers) > 0 {
		f.ns.service(s)
	}
}

// adopt makes sockets of what gVisor's goroutines handed over and offers
// the flows.
func (f *forwarder) adopt() {
	f.mu.Lock()
	items := f.inbox
	f.inbox = nil
	f.mu.Unlock()
	for _, it := range items {
		switch {
		case it.syn != nil:
			f.offerSYN(it.syn)
		case it.proto == FlowEcho:
			f.eng.offers = append(f.eng.offers, Flow{ID: f.newID(), Proto: FlowEcho, Local: it.local, Remote: it.remote, Message: it.hdr})
		case it.proto == FlowTCP:
			f.offerStream(it)
		default:
			f.offerUDP(it)
		}
	}
}

func (f *forwarder) offerSYN(p *pendingTCP) {
	p.id = f.newID()
	if f.eng.accept {
		f.st.tcpOffered.Add(1)
		p.verdict <- Accept // room for one; sent once
		return
	}
	f.eng.waiting[p.id] = p
	f.eng.offers = append(f.eng.offers, Flow{ID: p.id, Proto: FlowTCP, Local: p.local, Remote: p.remote})
	f.st.tcpOffered.Add(1)
}

func (f *forwarder) offerStream(it fwdItem) {
	s, err := f.ns.newSocket(kindStream, it.ep, it.wq, netProto(it.local.Addr()))
	if err != nil {
		f.tcpFlows.Add(-1) // newSocket aborted the endpoint
		if it.direct != nil {
			it.direct <- Flow{} // room for one; sent once
		}
		return
	}
	s.flow = &flowState{id: it.id, proto: FlowTCP}
	opts := it.ep.SocketOptions()
	opts.SetSendBufferSize(int64(f.cfg.FlowBuffer), true)
	opts.SetReceiveBufferSize(int64(f.cfg.FlowBuffer), true)
	fl := Flow{ID: it.id, Proto: FlowTCP, Local: it.local, Remote: it.remote, Handle: s.h}
	switch {
	case it.direct == nil:
		f.eng.offers = append(f.eng.offers, fl)
	case f.eng.sock == nil: // the forwarder closed: refused, as offers are
		f.ns.closeSocket(s, true)
		it.direct <- Flow{} // room for one; sent once
	default:
		it.direct <- fl // room for one; sent once
	}
}

func (f *forwarder) offerUDP(it fwdItem) {
	s, err := f.ns.newSocket(kindUDP, it.ep, it.wq, netProto(it.local.Addr()))
	if err != nil {
		f.udpFlows.Add(-1)
		return
	}
	s.dgrams = new(udpQueue)
	it.ep.SocketOptions().SetReceiveBufferSize(int64(f.cfg.FlowBuffer), true)
	id := f.newID()
	s.flow = &flowState{id: id, proto: FlowUDP, hdr: it.hdr, idle: idleState{last: time.Now()}}
	f.eng.udp[id] = s
	f.eng.offers = append(f.eng.offers, Flow{ID: id, Proto: FlowUDP, Local: it.local, Remote: it.remote, Handle: s.h})
	f.st.udpOffered.Add(1)
	f.arm()
	f.ns.markReady(s) // take its first datagram from gVisor
}

// accept answers a ForwardAccept with the next offer, or parks it.
func (f *forwarder) accept() (Response, error, bool) {
	f.adopt()
	if len(f.eng.offers) == 0 {
		return nil, nil, true
	}
	fl := f.eng.offers[0]
	copy(f.eng.offers, f.eng.offers[1:])
	f.eng.offers[len(f.eng.offers)-1] = Flow{}
	f.eng.offers = f.eng.offers[:len(f.eng.offers)-1]
	if fl.Proto == FlowEcho {
		f.echoes.Add(-1)
	}
	return fl, nil, false
}

// decide applies a ForwardVerdict.
func (f *forwarder) decide(c ForwardVerdict) error {
	if c.Verdict < Accept || c.Verdict > Drop {
		return ErrInvalid
	}
	if p, ok := f.eng.waiting[c.ID]; ok {
		delete(f.eng.waiting, c.ID)
		if c.Verdict != Accept {
			f.st.tcpRefused.Add(1)
		}
		p.verdict <- c.Verdict // room for one; sent once
		return nil
	}
	s, ok := f.eng.udp[c.ID]
	if !ok {
		return ErrInvalid
	}
	if c.Verdict == Accept {
		return nil
	}
	f.st.udpRefused.Add(1)
	if c.Verdict != Drop {
		a := s.addrs()
		f.sendUnreachable(s.flow.hdr, a.Local, a.Remote)
	}
	f.ns.closeSocket(s, false)
	return nil
}

// closed is the forwarder socket's closeSocket: every flow not yet taken
// is refused (a reset), and new ones until the next ForwardOpen.
func (f *forwarder) closed(s *socket) {
	f.mu.Lock()
	f.open, f.acceptAll, f.handoff = false, false, nil
	f.mu.Unlock()
	f.eng.sock = nil
	f.adopt()
	for id, p := range f.eng.waiting {
		delete(f.eng.waiting, id)
		p.verdict <- Reset
	}
	offers := f.eng.offers
	f.eng.offers = nil
	for _, fl := range offers {
		if fl.Proto == FlowEcho {
			f.echoes.Add(-1)
			continue
		}
		if t, err := f.ns.tab.get(fl.Handle); err == nil {
			f.ns.closeSocket(t, true)
		}
	}
}

// flowClosed frees a forwarded flow's slot when its socket closes.
func (f *forwarder) flowClosed(s *socket) {
	if s.flow.proto == FlowTCP {
		f.tcpFlows.Add(-1)
		return
	}
	f.udpFlows.Add(-1)
	delete(f.eng.udp, s.flow.id)
}

// arm starts the expiry sweep's timer if it is not running.
func (f *forwarder) arm() {
	if f.eng.armed {
		return
	}
	f.eng.armed = true
	if f.eng.timer == nil {
		f.eng.timer = time.AfterFunc(f.cfg.sweepPeriod(), f.tick)
		return
	}
	f.eng.timer.Reset(f.cfg.sweepPeriod())
}

// tick is the sweep timer's callback (any goroutine).
func (f *forwarder) tick() {
	f.sweepDue.Store(true)
	f.due.Store(true)
	signal(f.ns.wake)
}

// sweep closes the UDP flows idle past their timeout, if a sweep is due.
func (f *forwarder) sweep(now time.Time) {
	if !f.sweepDue.Swap(false) {
		return
	}
	f.eng.armed = false
	for _, s := range f.eng.udp {
		if f.idleOut(s, now) {
			f.expire(s)
		}
	}
	if len(f.eng.udp) > 0 {
		f.arm()
	}
}

// idleOut updates s's idle state and reports whether it timed out.
func (f *forwarder) idleOut(s *socket, now time.Time) bool {
	st, ok := s.ep.Stats().(*tcpip.TransportEndpointStats)
	if !ok {
		return false
	}
	id := &s.flow.idle
	in, out := st.PacketsReceived.Value(), st.PacketsSent.Value()
	if in != id.in || out != id.out {
		id.in, id.out, id.last = in, out, now
		id.assured = id.assured || (in > 0 && out > 0)
		return false
	}
	timeout := f.cfg.UDPTimeout
	if id.assured {
		timeout = f.cfg.UDPAssuredTimeout
	}
	return now.Sub(id.last) >= timeout
}

// expire ends an idle UDP flow: a parked read gets io.EOF, and the socket
// is closed and freed.
func (f *forwarder) expire(s *socket) {
	for len(s.readers) > 0 {
		r := s.readers[0]
		f.ns.unpark(s, &s.readers, 0)
		f.ns.answer(r, nil, io.EOF)
	}
	f.st.udpExpired.Add(1)
	f.ns.closeSocket(s, false)
}

// stopTimer stops the sweep (at shutdown).
func (f *forwarder) stopTimer() {
	if f.eng.timer != nil {
		f.eng.timer.Stop()
	}
}

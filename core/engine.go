package core

// process runs one request for the token holder: it answers it now, or
// parks it on its socket to be answered when the socket is ready.
func (ns *Netstack) process(r *Request) {
	ns.commands.Add(1)
	if c, ok := r.cmd.(cancel); ok {
		ns.cancel(c)
		ns.q.putRequest(r)
		return
	}
	resp, err, park := ns.dispatch(r)
	if !park {
		ns.answer(r, resp, err)
	}
}

// answer sends r its one reply. It never blocks: the reply channel has room
// for exactly one, and this is the only place that sends on it.
func (ns *Netstack) answer(r *Request, resp Response, err error) {
	r.parkedOn, r.progress = nil, 0
	if r.noReply {
		if err != nil {
			ns.nonblockingErrors.Add(1)
		}
		ns.q.putRequest(r)
		ns.q.nonblocking.Add(-1)
		return
	}
	r.reply <- reply{resp: resp, err: err}
}

// dispatch runs the command. park reports that it was parked on a socket.
func (ns *Netstack) dispatch(r *Request) (resp Response, err error, park bool) {
	if resp, err, park, ok := ns.stackCommand(r); ok {
		return resp, err, park
	}
	s, err := ns.tab.get(r.h)
	if err != nil {
		return nil, err, false
	}
	return ns.socketCommand(s, r)
}

// stackCommand runs a command that names no socket; ok is false for the
// others. It is kept out of line: the commands its cases copy out of r
// (over 1 KiB of frame when they were part of dispatch) then stay off the
// stack of every socket command, which a fresh goroutine's Read or Accept
// would otherwise grow (runtime.copystack) the first time it serves one.
//
//go:noinline
func (ns *Netstack) stackCommand(r *Request) (resp Response, err error, park, ok bool) {
	switch c := r.cmd.(type) {
	case Nop:
		return OK{}, nil, false, true
	case GetStats:
		return ns.Stats(), nil, false, true
	case SetStackAddrs:
		return OK{}, ns.setAddrs(c.Addrs), false, true
	case UDPBind:
		resp, err, park = ns.udpBind(c)
	case TCPListen:
		resp, err, park = ns.tcpListen(c)
	case *TCPConnect:
		resp, err, park = ns.tcpConnect(r, c)
	case RawOpen:
		resp, err, park = ns.rawOpen(c)
	case PingOpen:
		resp, err, park = ns.pingOpen(c)
	case ForwardOpen:
		resp, err, park = ns.forwardOpen(c)
	case nil:
		return nil, ErrUnknownCommand, false, true
	default:
		return nil, nil, false, false
	}
	return resp, err, park, true
}

// socketCommand runs a command that names a socket.
func (ns *Netstack) socketCommand(s *socket, r *Request) (Response, error, bool) {
	if s.kind == kindForward {
		return ns.forwardCommand(s, r)
	}
	switch c := r.cmd.(type) {
	case CloseSocket:
		ns.closeSocket(s, false)
		return OK{}, nil, false
	case Abort:
		if s.kind != kindStream {
			return nil, ErrWrongKind, false
		}
		ns.closeSocket(s, true)
		return OK{}, nil, false
	case GetSocketAddrs:
		return s.addrs(), nil, false
	case SetSockOpt:
		return OK{}, s.setOpt(c.Opt, c.Value), false
	case GetSockOpt:
		v, err := s.getOpt(c.Opt)
		return SockOptValue{Value: v}, err, false
	case UDPConnect:
		return s.udpConnect(c.Remote)
	case TCPShutdown:
		return s.tcpShutdown(c)
	case GetTCPInfo:
		return OK{}, ns.tcpInfo(s, c), false
	}
	if !s.accepts(r.cmd) {
		return nil, ErrWrongKind, false
	}
	return ns.blocking(s, r)
}

// blocking runs a command that may have to wait, keeping each direction's
// requests in order: a request queued behind others parks at once.
func (ns *Netstack) blocking(s *socket, r *Request) (Response, error, bool) {
	q := s.queueFor(r.cmd)
	if len(*q) > 0 {
		ns.park(s, q, r)
		return nil, nil, true
	}
	resp, err, wait := s.tryFirst(q, r)
	if wait {
		ns.park(s, q, r)
		return nil, nil, true
	}
	return resp, err, false
}

// tryFirst tries r, first in its direction q, with the direction's want
// flag set for the try (see readiness): an event that comes between a
// failed try and the park then wakes a server. Without it, the event
// could read no flag, the holder park and look at an empty ready list,
// and the event then queue the socket with nobody woken: a parked Read
// with its data in gVisor (TestTokenReadinessDuringTryIsNotLost). The
// flag stays set if r must park.
func (s *socket) tryFirst(q *[]*Request, r *Request) (Response, error, bool) {
	want := s.wantFor(q)
	if want != nil {
		want.Store(true)
	}
	resp, err, wait := s.try(r)
	if !wait && want != nil && len(*q) == 0 {
		want.Store(false)
	}
	return resp, err, wait
}

func (ns *Netstack) park(s *socket, q *[]*Request, r *Request) {
	r.parkedOn = s
	*q = append(*q, r)
	ns.parked.Add(1)
	s.updateWaiter()
	if q == &s.writers && s.isDgram() {
		ns.markReady(s) // space freed before wantWrite was set: retry after this turn
	}
}

// serviceReady retries the parked requests of every socket gVisor reported
// ready since the last call.
func (ns *Netstack) serviceReady() {
	pass := ns.passesStarted.Add(1)
	ns.readyMu.Lock()
	list := ns.readyList
	ns.readyList = ns.readySpare[:0] // two lists in turn: no allocation
	ns.readyMu.Unlock()
	for _, s := range list {
		s.queued.Store(false)
		if !s.closed {
			ns.service(s)
		}
	}
	if ns.sweepUDP.Swap(false) {
		ns.sweepDatagrams()
	}
	if ns.fwd != nil {
		ns.fwd.service()
	}
	clear(list)
	ns.readySpare = list[:0]
	ns.passesDone.Store(pass)
	signal(ns.passed)
}

// markReady is gVisor's waiter callback: it runs on any goroutine, maybe
// with gVisor locks held, so it only queues s and wakes whoever is to
// serve it (see kick): the token holder, when there is one, looks at the
// ready list after its turn; else the caller waiting first on s, which
// serves s itself; else the engine goroutine.
//
// A socket already on the list may have been put there silently (see
// queueReady), with nobody woken; so an event that finds it queued still
// wakes whoever is to serve it: its waiting caller, or the engine
// goroutine for a parked non-blocking send (no waiter), so a ready socket
// with a parked request never waits for some later holder.
func (ns *Netstack) markReady(s *socket) {
	if !s.queued.CompareAndSwap(false, true) {
		ns.kick(s.waiter.Load())
		return
	}
	ns.readyMu.Lock()
	ns.readyList = append(ns.readyList, s)
	ns.readyMu.Unlock()
	ns.kick(s.waiter.Load())
}

// queueReady puts s on the ready list for the next holder's pass, waking
// no one (see readiness). It marks s queued and appends it in one hold of
// readyMu: a holder that looks at the list after another event found s
// queued (markReady, which then wakes a server) sees s on it. With the
// two apart, that look could come between them, and s be appended after
// it with nobody woken.
func (ns *Netstack) queueReady(s *socket) {
	if s.queued.Load() {
		return
	}
	ns.readyMu.Lock()
	if s.queued.CompareAndSwap(false, true) {
		ns.readyList = append(ns.readyList, s)
	}
	ns.readyMu.Unlock()
}

// onReady does what readiness decided for an event of s.
func (ns *Netstack) onReady(s *socket, a readyAction) {
	switch a {
	case readyQueue:
		ns.queueReady(s)
	case readyMark:
		ns.markReady(s)
	}
}

// service retries s's parked requests in order, each direction until one
// still has to wait.
func (ns *Netstack) service(s *socket) {
	for _, q := range [...]*[]*Request{&s.writers, &s.readers} {
		for len(*q) > 0 && !s.closed {
			r := (*q)[0]
			resp, err, wait := s.try(r)
			if wait {
				break
			}
			ns.unpark(s, q, 0)
			ns.answer(r, resp, err)
		}
	}
	if s.connFailed && !s.closed {
		ns.closeSocket(s, true)
	}
	s.takeDatagrams()
}

// unpark removes the i'th request of q.
func (ns *Netstack) unpark(s *socket, q *[]*Request, i int) {
	(*q)[i].parkedOn = nil
	copy((*q)[i:], (*q)[i+1:])
	(*q)[len(*q)-1] = nil
	*q = (*q)[:len(*q)-1]
	ns.parked.Add(-1)
	s.updateWaiter()
}

// cancel answers c's target now if it is still parked in the same use.
func (ns *Netstack) cancel(c cancel) {
	t := c.target
	if t.seq.Load() != c.seq || t.parkedOn == nil {
		return // already answered (the reply is on its way) or not parked
	}
	s := t.parkedOn
	q := s.queueFor(t.cmd)
	for i, r := range *q {
		if r == t {
			ns.unpark(s, q, i)
			break
		}
	}
	resp := s.partial(t)
	if s.connecting {
		ns.closeSocket(s, true) // a cancelled connect leaves no socket
	}
	ns.answer(t, resp, ErrCanceled)
	if !s.closed {
		ns.markReady(s) // the next request in line may go now
	}
}

// closeSocket answers s's parked requests with ErrClosed, closes (or
// aborts) its endpoint and frees its handle.
func (ns *Netstack) closeSocket(s *socket, abort bool) {
	if s.closed {
		return
	}
	s.closed = true
	for _, q := range [...]*[]*Request{&s.writers, &s.readers} {
		for len(*q) > 0 {
			r := (*q)[0]
			ns.unpark(s, q, 0)
			ns.answer(r, nil, ErrClosed)
		}
	}
	if s.kind == kindForward {
		ns.fwd.closed(s)
		ns.tab.remove(s.h)
		return
	}
	s.wq.EventUnregister(&s.entry)
	s.dropRoutes()
	s.fastUnregister()
	if abort {
		s.ep.Abort()
	} else {
		s.ep.Close()
	}
	if s.flow != nil {
		ns.fwd.flowClosed(s)
	}
	ns.tab.remove(s.h)
}

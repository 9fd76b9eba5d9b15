package core

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// Request is one command in flight: the handle it names, the command, and
// where its one reply goes. Requests are pooled; the engine holds one from
// the moment it is queued until it is answered. Code outside core only sees
// a Request between WaitForCmd and ProcessOneCmd.
type Request struct {
	h     Handle
	cmd   Command
	reply chan reply // room for exactly one reply; reused with the Request
	// kick (cap 1) wakes the caller waiting for the reply when the socket
	// its request is parked on becomes ready, so that the caller serves
	// it under the token (see Netstack.kick). A kick may come late, for an
	// earlier use: the caller then serves for nothing, harmlessly.
	kick chan struct{}
	// seq changes each time the Request is reused, so that a late cancel
	// for an earlier use is ignored.
	seq     atomic.Uint64
	noReply bool // non-blocking: the engine recycles the Request itself

	// Token holder's state, reset by the holder before it answers (the
	// caller never writes these, so a late cancel may read them safely).
	parkedOn *socket
	progress int // bytes already taken by a parked TCP send

	own bufCmds // a buffer command passed by value, copied (see setCmd)
	// conn holds a TCPConnect or TCPAccept and its reply (see connCmds);
	// connUsed says it needs zeroing when r goes back to the pool.
	conn     connCmds
	connUsed bool
}

// connCmds is a Request's own copy of a TCPConnect or TCPAccept and the
// room for its reply. The engine sees the commands by pointer and answers
// with a pointer to the reply here; Channel.Request hands its caller the
// value, and Channel.Connect and Channel.Accept copy it out: neither the
// command nor the reply (each 32–96 bytes) is boxed, which allocated three
// times per connection.
type connCmds struct {
	connect   TCPConnect
	accept    TCPAccept
	connected TCPConnected
	accepted  TCPAccepted
}

// bufCmds holds a Request's own copy of a buffer command passed by value,
// so that the engine sees each buffer command in one form, by pointer,
// without allocating.
type bufCmds struct {
	tcpSend TCPSend
	tcpRecv TCPRecv
	udpSend UDPSend
	udpRecv UDPRecv
	rawSend RawSend
	rawRecv RawRecv
}

// setCmd makes cmd r's command. Callers pass buffer commands by value or
// by pointer; a value is copied into r and the engine gets a pointer to
// the copy, so its switches list the pointer form alone.
func (r *Request) setCmd(cmd Command) {
	switch c := cmd.(type) {
	case TCPSend:
		r.own.tcpSend = c
		cmd = &r.own.tcpSend
	case TCPRecv:
		r.own.tcpRecv = c
		cmd = &r.own.tcpRecv
	case UDPSend:
		r.own.udpSend = c
		cmd = &r.own.udpSend
	case UDPRecv:
		r.own.udpRecv = c
		cmd = &r.own.udpRecv
	case RawSend:
		r.own.rawSend = c
		cmd = &r.own.rawSend
	case RawRecv:
		r.own.rawRecv = c
		cmd = &r.own.rawRecv
	case TCPConnect:
		r.conn.connect, r.connUsed = c, true
		cmd = &r.conn.connect
	case TCPAccept:
		r.conn.accept, r.connUsed = c, true
		cmd = &r.conn.accept
	}
	r.cmd = cmd
}

// ownReply turns a reply the engine left in r's own room (see connCmds)
// into the value Request's callers get. Before r goes back to the pool.
func (r *Request) ownReply(resp Response) Response {
	switch p := resp.(type) {
	case *TCPConnected:
		if p == &r.conn.connected {
			return *p
		}
	case *TCPAccepted:
		if p == &r.conn.accepted {
			return *p
		}
	}
	return resp
}

type reply struct {
	resp Response
	err  error
}

// cancel asks the engine to answer target now, if it is still parked in
// the use numbered seq.
type cancel struct {
	target *Request
	seq    uint64
}

func newRequest() any { return &Request{reply: make(chan reply, 1), kick: make(chan struct{}, 1)} }

// getRequest takes a Request from q's pool. Each stack has its own pool, so
// a Request only ever meets one engine.
func (q *queue) getRequest(h Handle, cmd Command) *Request {
	r := q.pool.Get().(*Request)
	r.seq.Add(1)
	drainSignal(r.kick)
	r.h = h
	r.setCmd(cmd)
	return r
}

func (q *queue) putRequest(r *Request) {
	r.cmd = nil
	r.own = bufCmds{} // in place: a tuple assignment zeroed a copy on the caller's stack
	if r.connUsed {
		r.conn, r.connUsed = connCmds{}, false
	}
	r.noReply = false
	q.pool.Put(r)
}

// Channel is the remote end of a Netstack's command queue. Any number of
// goroutines may use one Channel at once; copies share the queue. The zero
// Channel belongs to no stack: its requests fail with ErrNoStack.
type Channel struct {
	q *queue
}

// queue is the command queue shared by a stack and its channels.
type queue struct {
	ns       *Netstack // whose token serves the queue
	c        chan *Request
	done     chan struct{} // closed when the stack starts closing
	closed   atomic.Bool
	inflight atomic.Int64 // senders between their closed check and their send
	pool     sync.Pool    // of *Request

	// nonblocking counts the non-blocking requests taken and not yet
	// answered, queued or parked; RequestNonblocking refuses more than
	// maxNonblocking.
	nonblocking    atomic.Int64
	maxNonblocking int64
}

// Request sends cmd for handle h and waits for the reply. When the queue is
// full it waits for room (backpressure). While Run drives the stack and
// the engine is idle, the calling goroutine serves the queue itself, up to
// its own request (requests queued before it first), instead of waking the
// engine goroutine; likewise when a waiting request's socket becomes
// ready (see token). If ctx ends first, Request asks the
// engine to answer at once and still waits for that answer, so the engine is
// done with any buffer in cmd when Request returns; a reply that was already
// on its way is returned as it is, so no data is lost. A request cut short
// returns what was done so far (for TCPSend, TCPSent.N) together with an
// error matching ctx.Err(). After the stack closes, every request fails
// with an error matching net.ErrClosed.
func (c Channel) Request(ctx context.Context, h Handle, cmd Command) (Response, error) {
	if c.q == nil {
		return nil, ErrNoStack
	}
	r := c.q.getRequest(h, cmd)
	rep := c.q.roundTrip(ctx, r)
	rep.resp = r.ownReply(rep.resp)
	c.q.putRequest(r)
	return rep.resp, rep.err
}

// Connect is Request(ctx, NoHandle, cmd) with the reply by value: the
// command is copied into the pooled request and the reply copied out of
// it, so that neither is boxed (allocated) as with Request. On error the
// TCPConnected is zero.
func (c Channel) Connect(ctx context.Context, cmd TCPConnect) (TCPConnected, error) {
	if c.q == nil {
		return TCPConnected{}, ErrNoStack
	}
	r := c.q.getRequest(NoHandle, nil)
	r.conn.connect, r.connUsed = cmd, true
	r.cmd = &r.conn.connect
	return replyByValue[TCPConnected](ctx, c.q, r)
}

// Accept is Request(ctx, h, cmd) for a listener h, with the reply by
// value: like Connect, it boxes neither the command nor the reply. On
// error the TCPAccepted is zero.
func (c Channel) Accept(ctx context.Context, h Handle, cmd TCPAccept) (TCPAccepted, error) {
	if c.q == nil {
		return TCPAccepted{}, ErrNoStack
	}
	r := c.q.getRequest(h, nil)
	r.conn.accept, r.connUsed = cmd, true
	r.cmd = &r.conn.accept
	return replyByValue[TCPAccepted](ctx, c.q, r)
}

// replyByValue makes the round trip of r, a request of q, puts r back and
// returns its reply copied out of the pooled request (zero on error or a
// reply of another type).
func replyByValue[T any](ctx context.Context, q *queue, r *Request) (T, error) {
	rep := q.roundTrip(ctx, r)
	var out T
	if p, ok := any(rep.resp).(*T); ok {
		out = *p
	}
	q.putRequest(r)
	return out, rep.err
}

// roundTrip queues r, serves as a caller and waits for r's one reply (see
// Request); the caller puts r back.
func (q *queue) roundTrip(ctx context.Context, r *Request) reply {
	if err := q.send(ctx, r); err != nil {
		return reply{err: err}
	}
	q.ns.serveAsCaller()
	rep := q.wait(ctx, r)
	if rep.err == ErrCanceled {
		rep.err = contextError(ctx)
	}
	return rep
}

// RequestNonblocking hands cmd for handle h to the engine without waiting
// for a reply. It fails with ErrQueueFull if the queue has no room, or if
// Config.MaxNonblocking non-blocking requests are already held by the
// engine (queued, or parked on a socket waiting for buffer space); either
// way the command was not taken, so a stream never gets a gap. It fails
// with ErrClosed after the stack closed. Buffers in cmd belong to the
// engine once it returns nil. Errors the engine meets later are not
// reported; they are counted in Stats.NonblockingErrors.
func (c Channel) RequestNonblocking(h Handle, cmd Command) error {
	if c.q == nil {
		return ErrNoStack
	}
	if !c.q.takeNonblocking() {
		return ErrQueueFull
	}
	r := c.q.getRequest(h, cmd)
	r.noReply = true
	if err := c.q.trySend(r); err != nil {
		c.q.putRequest(r)
		c.q.nonblocking.Add(-1)
		return err
	}
	c.q.ns.kick(nil) // the engine goroutine serves it, unless a holder will
	return nil
}

// wait waits for r's one reply. A kick (r's socket is ready) makes the
// caller serve under the token; when ctx ends it sends a cancel and goes
// on waiting for the reply the cancel brings, serving as before.
func (q *queue) wait(ctx context.Context, r *Request) reply {
	select {
	case rep := <-r.reply: // served by the caller itself: ctx not needed
		return rep
	default:
	}
	done := ctx.Done()
	for {
		select {
		case rep := <-r.reply:
			return rep
		case <-r.kick:
			q.ns.serveAsCaller()
		case <-done:
			done = nil
			q.sendCancel(r)
			q.ns.serveAsCaller()
		}
	}
}

// takeNonblocking reserves room for one more non-blocking request; the
// engine gives it back when it answers the request (doneNonblocking).
func (q *queue) takeNonblocking() bool {
	if q.nonblocking.Add(1) > q.maxNonblocking {
		q.nonblocking.Add(-1)
		return false
	}
	return true
}

func contextError(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			return errors.Join(ctxErr, err)
		}
		return err
	}
	return context.Canceled
}

func newQueue(n, maxNonblocking int) *queue {
	q := &queue{c: make(chan *Request, n), done: make(chan struct{}), maxNonblocking: int64(maxNonblocking)}
	q.pool.New = newRequest
	return q
}

// send queues r, waiting for room.
func (q *queue) send(ctx context.Context, r *Request) error {
	q.inflight.Add(1)
	defer q.inflight.Add(-1)
	if q.closed.Load() {
		return ErrClosed
	}
	select {
	case q.c <- r:
		return nil
	default:
	}
	select {
	case q.c <- r:
		return nil
	case <-q.done:
		return ErrClosed
	case <-ctx.Done():
		return contextError(ctx)
	}
}

// trySend queues r if there is room.
func (q *queue) trySend(r *Request) error {
	q.inflight.Add(1)
	defer q.inflight.Add(-1)
	if q.closed.Load() {
		return ErrClosed
	}
	select {
	case q.c <- r:
		return nil
	default:
		return ErrQueueFull
	}
}

// sendCancel asks the engine to answer r now. It does not wait for room if
// the stack is closing: shutdown answers r anyway.
func (q *queue) sendCancel(r *Request) {
	c := q.getRequest(NoHandle, cancel{target: r, seq: r.seq.Load()})
	c.noReply = true
	q.inflight.Add(1)
	defer q.inflight.Add(-1)
	if q.closed.Load() {
		q.putRequest(c)
		return
	}
	select {
	case q.c <- c:
	case <-q.done:
		q.putRequest(c)
	}
}

// drainSignal empties a signal channel (cap 1).
func drainSignal(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}

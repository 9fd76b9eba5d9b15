package core

import (
	"context"
	"sync"
)

// Pipe is an in-memory, point-to-point packet link with two ends. What one
// end sends, the other receives, in order. A bounded pipe makes senders wait
// for room; it never drops.
type Pipe struct {
	A, B *PipeEnd
}

// PipeEnd is one end of a Pipe. Its methods may be called from any
// goroutine.
type PipeEnd struct {
	tx, rx *pipeQueue
}

// NewPipe returns a pipe whose each direction holds at most capacity packets
// (capacity <= 0: unbounded, the seed's Pipe::unbounded).
func NewPipe(capacity int) Pipe {
	ab, ba := newPipeQueue(capacity), newPipeQueue(capacity)
	return Pipe{A: &PipeEnd{tx: ab, rx: ba}, B: &PipeEnd{tx: ba, rx: ab}}
}

// Send sends one packet, waiting for room in a bounded pipe. The pipe takes
// ownership of pkt. It fails with ErrClosed once either end is closed.
func (e *PipeEnd) Send(pkt []byte) error {
	_, err := e.tx.push([][]byte{pkt}, true)
	return err
}

// SendBatch sends packets in order, waiting for room, and returns how many
// were sent. The pipe takes ownership of the packets it sent.
func (e *PipeEnd) SendBatch(pkts [][]byte) (int, error) { return e.tx.push(pkts, true) }

// Recv waits for the next packet. It fails with ErrClosed once the pipe is
// closed and drained, or with ctx's error.
func (e *PipeEnd) Recv(ctx context.Context) ([]byte, error) {
	var one [1][]byte
	for {
		if n, err := e.rx.pop(one[:]); n == 1 || err != nil {
			return one[0], err
		}
		select {
		case <-e.rx.notEmpty:
		case <-e.rx.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// TryRecv returns the next packet if one is waiting.
func (e *PipeEnd) TryRecv() ([]byte, bool) {
	var one [1][]byte
	n, _ := e.rx.pop(one[:])
	return one[0], n == 1
}

// RecvBatch waits for at least one packet and moves up to len(out) packets
// into out; the caller owns them.
func (e *PipeEnd) RecvBatch(out [][]byte) (int, error) {
	for {
		if n, err := e.rx.pop(out); n > 0 || err != nil {
			return n, err
		}
		select {
		case <-e.rx.notEmpty:
		case <-e.rx.done:
		}
	}
}

// Len returns the number of packets waiting to be received at this end.
func (e *PipeEnd) Len() int {
	e.rx.mu.Lock()
	defer e.rx.mu.Unlock()
	return len(e.rx.pkts) - e.rx.head
}

// Close closes both directions of the pipe: blocked senders and receivers
// on both ends wake with ErrClosed (receivers once drained). Close is
// idempotent.
func (e *PipeEnd) Close() error {
	e.tx.close()
	e.rx.close()
	return nil
}

type pipeQueue struct {
	mu       sync.Mutex
	pkts     [][]byte      // +checklocks:mu
	head     int           // +checklocks:mu
	capacity int           // +checklocks:mu
	closed   bool          // +checklocks:mu
	notEmpty chan struct{} // signalled, cap 1
	notFull  chan struct{} // signalled, cap 1
	done     chan struct{} // closed by close
}

func newPipeQueue(capacity int) *pipeQueue {
	return &pipeQueue{capacity: capacity, notEmpty: make(chan struct{}, 1), notFull: make(chan struct{}, 1), done: make(chan struct{})}
}

// push appends pkts, waiting for room if wait is set.
func (q *pipeQueue) push(pkts [][]byte, wait bool) (int, error) {
	sent := 0
	for sent < len(pkts) {
		k, err := q.pushSome(pkts[sent:])
		sent += k
		if err != nil || sent == len(pkts) || !wait {
			return sent, err
		}
		if k == 0 {
			select {
			case <-q.notFull:
			case <-q.done:
			}
		}
	}
	return sent, nil
}

func (q *pipeQueue) pushSome(pkts [][]byte) (int, error) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, ErrClosed
	}
	room := len(pkts)
	if q.capacity > 0 {
		room = min(room, q.capacity-(len(q.pkts)-q.head))
	}
	q.pkts = append(q.pkts, pkts[:room]...)
	q.mu.Unlock()
	if room > 0 {
		signal(q.notEmpty)
	}
	return room, nil
}

// pop moves up to len(out) packets into out.
func (q *pipeQueue) pop(out [][]byte) (int, error) {
	q.mu.Lock()
	n := copy(out, q.pkts[q.head:])
	clear(q.pkts[q.head : q.head+n])
	q.head += n
	left := len(q.pkts) - q.head
	if left == 0 {
		q.pkts, q.head = q.pkts[:0], 0
	} else if q.head > 1024 && q.head > left {
		q.pkts = append(q.pkts[:0], q.pkts[q.head:]...)
		q.head = 0
	}
	closed := q.closed
	q.mu.Unlock()
	if n > 0 {
		signal(q.notFull)
		if left > 0 {
			signal(q.notEmpty)
		}
		return n, nil
	}
	if closed {
		return 0, ErrClosed
	}
	return 0, nil
}

func (q *pipeQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}

// signal wakes one waiter on a cap-1 channel without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

package tundev

import (
	"errors"
	"sync"
	"sync/atomic"
)

// batchQueue is a bounded FIFO of packets between two sides of a device.
// push copies packets in and pop copies them out, so neither side keeps the
// other's buffers; both move whole batches under one lock acquisition. A
// full queue makes pushers wait (it never drops what fits); close wakes
// everyone. Any number of goroutines may push and pop at once.
type batchQueue struct {
	mu       sync.Mutex
	notEmpty sync.Cond
	notFull  sync.Cond
	// +checklocks:mu
	pkts   [][]byte // ring of packets; each slot's buffer is kept for reuse
	head   int      // +checklocks:mu
	n      int      // +checklocks:mu
	closed bool     // +checklocks:mu
	// +checklocks:mu
	moved bool // readers went elsewhere (see move)

	oversized atomic.Uint64 // packets pop dropped: too large for the reader's buffer
}

func newBatchQueue(capacity int) *batchQueue {
	q := &batchQueue{pkts: make([][]byte, capacity)}
	q.notEmpty.L = &q.mu
	q.notFull.L = &q.mu
	return q
}

// push appends bufs[i][offset:] for every i, waiting for room, and returns
// how many it took. Empty packets are skipped (and counted as taken).
func (q *batchQueue) push(bufs [][]byte, offset int) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	taken := 0
	for taken < len(bufs) {
		for q.n == len(q.pkts) && !q.closed {
			q.notFull.Wait()
		}
		if q.closed {
			return taken, ErrClosed
		}
		taken += q.pushSomeLocked(bufs[taken:], offset)
		q.notEmpty.Broadcast()
	}
	return taken, nil
}

// pushSomeLocked copies as many packets as there is room for.
//
// +checklocks:q.mu
func (q *batchQueue) pushSomeLocked(bufs [][]byte, offset int) int {
	k := 0
	for ; k < len(bufs) && q.n < len(q.pkts); k++ {
		pkt := bufs[k][offset:]
		if len(pkt) == 0 {
			continue
		}
		i := (q.head + q.n) % len(q.pkts)
		q.pkts[i] = append(q.pkts[i][:0], pkt...)
		q.n++
	}
	return k
}

// pop waits for at least one packet and copies up to len(bufs) of them,
// packet i into bufs[i][offset:] with its length in sizes[i]. A packet too
// large for its buffer is dropped and counted. After close it returns
// ErrClosed, even with packets left; without buffers, or with fewer sizes
// than buffers, errBuffers at once.
func (q *batchQueue) pop(bufs [][]byte, sizes []int, offset int) (int, error) {
	if err := checkBufs(bufs, sizes); err != nil {
		return 0, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if err := q.waitLocked(); err != nil {
			return 0, err
		}
		if k := q.popSomeLocked(bufs, sizes, offset); k > 0 {
			return k, nil
		}
	}
}

// popSwap is pop at offset 0, except that packets are not copied: bufs[i]
// and the packet's slot buffer change places.
func (q *batchQueue) popSwap(bufs [][]byte, sizes []int) (int, error) {
	if err := checkBufs(bufs, sizes); err != nil {
		return 0, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if err := q.waitLocked(); err != nil {
			return 0, err
		}
		if k := q.swapSomeLocked(bufs, sizes); k > 0 {
			return k, nil
		}
	}
}

// waitLocked waits for packets; it fails with ErrClosed once the queue is
// closed and errMoved once its readers went elsewhere.
//
// +checklocks:q.mu
func (q *batchQueue) waitLocked() error {
	for q.n == 0 && !q.closed && !q.moved {
		q.notEmpty.Wait()
	}
	if q.closed {
		return ErrClosed
	}
	if q.n == 0 {
		return errMoved
	}
	return nil
}

// swapSomeLocked hands out head packets by exchanging slices.
//
// +checklocks:q.mu
func (q *batchQueue) swapSomeLocked(bufs [][]byte, sizes []int) int {
	k := 0
	for ; k < len(bufs) && q.n > 0; k++ {
		h := q.head
		sizes[k] = len(q.pkts[h])
		bufs[k], q.pkts[h] = q.pkts[h], bufs[k][:0]
		q.advanceLocked()
	}
	q.notFull.Broadcast()
	return k
}

// +checklocks:q.mu
func (q *batchQueue) popSomeLocked(bufs [][]byte, sizes []int, offset int) int {
	k := 0
	for k < len(bufs) && q.n > 0 {
		pkt := q.pkts[q.head]
		q.advanceLocked()
		if dst := bufs[k][offset:]; len(pkt) <= len(dst) {
			sizes[k] = copy(dst, pkt)
			k++
		} else {
			q.oversized.Add(1)
		}
	}
	q.notFull.Broadcast()
	return k
}

// advanceLocked drops the head slot.
//
// +checklocks:q.mu
func (q *batchQueue) advanceLocked() {
	q.head = (q.head + 1) % len(q.pkts)
	q.n--
}

// drain hands every queued packet to f, in order, under the lock, and
// empties the queue. f gets them at offset 0 and must not keep them.
func (q *batchQueue) drain(f func(pkts [][]byte)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n > 0 {
		k := min(q.n, len(q.pkts)-q.head)
		f(q.pkts[q.head : q.head+k])
		q.head = (q.head + k) % len(q.pkts)
		q.n -= k
	}
	q.notFull.Broadcast()
}

// errMoved is what pop returns once the queue is empty after move.
var errMoved = errors.New("tundev: queue readers moved")

// move makes readers waiting on an empty queue, and later ones once it is
// empty, return errMoved: packets come from elsewhere now.
func (q *batchQueue) move() {
	q.mu.Lock()
	q.moved = true
	q.mu.Unlock()
	q.notEmpty.Broadcast()
}

// len returns the number of packets waiting.
func (q *batchQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// close drops what is queued and wakes every waiter; later calls fail with
// ErrClosed. It is idempotent.
func (q *batchQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.n = 0
	q.mu.Unlock()
	q.notEmpty.Broadcast()
	q.notFull.Broadcast()
}

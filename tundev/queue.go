package tundev

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/netcore-go/netcore/core"
)

// batchQueue is a bounded FIFO of packets between two sides of a device.
// push copies packets in and pop copies them out, so neither side keeps the
// other's buffers; both move whole batches under one lock acquisition. A
// full queue makes pushers wait (it never drops what fits); close wakes
// everyone. Any number of goroutines may push and pop at once.
//
// A packet may carry GSO metadata (a TCP super-segment, or a packet whose
// checksum is to be finished): pop then hands out its wire packets.
type batchQueue struct {
	mu       sync.Mutex
	notEmpty sync.Cond
	notFull  sync.Cond
	slots    [][]byte   // ring of packets, each within bufs[i]
	bufs     [][]byte   // each slot's buffer, kept for reuse
	gso      []core.GSO // metadata of each slot's packet
	scratch  [][]byte   // pop's view of the reader's buffers, under mu
	head, n  int
	closed   bool
	moved    bool // readers went elsewhere (see move)

	oversized atomic.Uint64 // packets pop dropped: too large for the reader's buffer, or malformed
}

func newBatchQueue(capacity int) *batchQueue {
	q := &batchQueue{slots: make([][]byte, capacity), bufs: make([][]byte, capacity), gso: make([]core.GSO, capacity)}
	q.notEmpty.L = &q.mu
	q.notFull.L = &q.mu
	return q
}

// push appends bufs[i][offset:] for every i, waiting for room, and returns
// how many it took. Empty packets are skipped (and counted as taken).
// gso, if not nil, holds each packet's metadata, and then push takes the
// packets' slices instead of copying them, leaving the slots' old buffers
// in bufs in their place (core.OffloadDevice's contract).
func (q *batchQueue) push(bufs [][]byte, offset int, gso []core.GSO) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	taken := 0
	for taken < len(bufs) {
		for q.n == len(q.slots) && !q.closed {
			q.notFull.Wait()
		}
		if q.closed {
			return taken, ErrClosed
		}
		taken += q.pushSomeLocked(bufs[taken:], offset, gso, taken)
		q.notEmpty.Broadcast()
	}
	return taken, nil
}

// pushSomeLocked copies as many packets as there is room for; bufs[0] is
// the packet whose metadata is gso[base].
func (q *batchQueue) pushSomeLocked(bufs [][]byte, offset int, gso []core.GSO, base int) int {
	k := 0
	for ; k < len(bufs) && q.n < len(q.slots); k++ {
		pkt := bufs[k][offset:]
		if len(pkt) == 0 {
			continue
		}
		i := (q.head + q.n) % len(q.slots)
		q.gso[i] = core.GSO{}
		if gso != nil {
			q.gso[i] = gso[base+k]
			bufs[k], q.bufs[i] = q.bufs[i][:0], pkt
		} else {
			q.bufs[i] = append(q.bufs[i][:0], pkt...)
		}
		q.slots[i] = q.bufs[i]
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
	return q.popWhenReady(func() int { return q.popSomeLocked(bufs, sizes, offset) })
}

// popSwap is pop at offset 0, except that plain packets are not copied:
// bufs[i] and the packet's slot buffer change places.
func (q *batchQueue) popSwap(bufs [][]byte, sizes []int) (int, error) {
	if err := checkBufs(bufs, sizes); err != nil {
		return 0, err
	}
	return q.popWhenReady(func() int { return q.swapSomeLocked(bufs, sizes) })
}

// popWhenReady waits for packets and runs take, under the lock, until it
// moves at least one; it fails with ErrClosed once the queue is closed.
func (q *batchQueue) popWhenReady(take func() int) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		for q.n == 0 && !q.closed && !q.moved {
			q.notEmpty.Wait()
		}
		if q.closed {
			return 0, ErrClosed
		}
		if q.n == 0 {
			return 0, errMoved
		}
		if k := take(); k > 0 {
			return k, nil
		}
	}
}

// swapSomeLocked hands out swappable head packets by exchanging slices,
// then copies what follows with popSomeLocked if bufs has room left.
func (q *batchQueue) swapSomeLocked(bufs [][]byte, sizes []int) int {
	k := 0
	for k < len(bufs) && q.n > 0 && q.swappableLocked() {
		h := q.head
		sizes[k] = len(q.slots[h])
		bufs[k], q.bufs[h] = q.slots[h], bufs[k][:0]
		q.slots[h] = nil
		q.advanceLocked()
		k++
	}
	if k < len(bufs) && q.n > 0 {
		return k + q.popSomeLocked(bufs[k:], sizes[k:], 0)
	}
	if k > 0 {
		q.notFull.Broadcast()
	}
	return k
}

// swappableLocked reports whether the head slot is a plain packet held in
// its slot buffer, which popSwap may hand out whole.
func (q *batchQueue) swappableLocked() bool {
	h := q.head
	g := q.gso[h]
	return g.Kind == core.GSONone && !g.NeedsCsum && len(q.slots[h]) > 0 &&
		cap(q.bufs[h]) > 0 && &q.slots[h][0] == &q.bufs[h][:1][0]
}

func (q *batchQueue) popSomeLocked(bufs [][]byte, sizes []int, offset int) int {
	k := 0
	for k < len(bufs) && q.n > 0 {
		pkt, g := q.slots[q.head], q.gso[q.head]
		if g.Kind != core.GSONone || g.NeedsCsum {
			n, done := q.splitHeadLocked(bufs[k:], sizes[k:], offset)
			k += n
			if !done {
				break
			}
			continue
		}
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
func (q *batchQueue) advanceLocked() {
	q.head = (q.head + 1) % len(q.slots)
	q.n--
}

// splitHeadLocked writes the wire packets of the head slot into bufs (at
// offset) and reports how many, and whether the slot is done: a
// super-segment with more segments than bufs is split as far as bufs go
// and stays queued with the rest. A packet that cannot be split is dropped
// and counted.
func (q *batchQueue) splitHeadLocked(bufs [][]byte, sizes []int, offset int) (int, bool) {
	pkt, g := q.slots[q.head], q.gso[q.head]
	out := q.scratch[:0]
	for _, b := range bufs {
		out = append(out, b[offset:])
	}
	q.scratch = out[:0]
	if g.Kind != core.GSONone && g.Segments(len(pkt)) > len(out) {
		rest, n, err := splitFront(pkt, g, len(out), out, sizes)
		if err == nil {
			q.slots[q.head] = rest
			return n, false
		}
	} else if n, err := core.SplitGSO(pkt, g, out, sizes); err == nil {
		q.advanceLocked()
		return n, true
	}
	q.advanceLocked()
	q.oversized.Add(1)
	return 0, true
}

// drain hands every queued packet (plain packets only: the inbound queue
// has no GSO metadata) to f, in order, under the lock, and empties the
// queue. f gets them at offset 0 and must not keep them.
func (q *batchQueue) drain(f func(pkts [][]byte)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n > 0 {
		k := min(q.n, len(q.slots)-q.head)
		f(q.slots[q.head : q.head+k])
		q.head = (q.head + k) % len(q.slots)
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

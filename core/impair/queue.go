package impair

import (
	"math"
	"time"
)

// item is a packet held by a link until it is due.
type item struct {
	at  time.Duration // due time, since the link's epoch
	seq uint64        // order of queueing, which breaks ties
	pkt []byte
}

// queue holds a link's packets by due time. Packets not reordered are due
// in the order they were sent (their due times never decrease), so they
// wait in a FIFO; only the ones held back, which due times may interleave,
// go into a heap. The next packet out is the earlier of the two heads (the
// first sent, on a tie).
type queue struct {
	fifo fifo
	held packetHeap
}

// Len is the number of packets held.
func (q *queue) Len() int { return q.fifo.Len() + q.held.Len() }

// push adds it: to the heap if reordered, else to the FIFO (its due time
// must not be before the FIFO's last).
func (q *queue) push(it item, reordered bool) {
	if reordered {
		q.held.push(it)
	} else {
		q.fifo.push(it)
	}
}

// head returns the next packet out; the queue must not be empty.
func (q *queue) head() *item {
	if q.held.Len() == 0 || q.fifo.Len() > 0 && q.fifo.first().before(&q.held.items[0]) {
		return q.fifo.first()
	}
	return &q.held.items[0]
}

// pop removes and returns the next packet out; the queue must not be
// empty.
func (q *queue) pop() item {
	if q.head() == q.fifo.first() {
		return q.fifo.pop()
	}
	return q.held.pop()
}

// clear drops every packet.
func (q *queue) clear() { *q = queue{} }

// fifo is a queue of items in a slice that is reused once emptied.
type fifo struct {
	items []item
	next  int // items[next] is the first
}

func (f *fifo) Len() int { return len(f.items) - f.next }

func (f *fifo) push(it item) {
	if f.next > 0 && f.next == len(f.items) {
		f.items, f.next = f.items[:0], 0
	} else if f.next > 0 && len(f.items) == cap(f.items) && f.next >= len(f.items)/2 {
		n := copy(f.items, f.items[f.next:])
		clear(f.items[n:])
		f.items, f.next = f.items[:n], 0
	}
	f.items = append(f.items, it)
}

// first is the first item, or nil if there is none.
func (f *fifo) first() *item {
	if f.Len() == 0 {
		return nil
	}
	return &f.items[f.next]
}

func (f *fifo) pop() item {
	it := f.items[f.next]
	f.items[f.next] = item{}
	f.next++
	return it
}

// before reports whether a leaves before b: earlier due, or sent first.
func (a *item) before(b *item) bool { return a.at < b.at || a.at == b.at && a.seq < b.seq }

// packetHeap is a min-heap of items by due time, then queueing order: of
// packets due at the same time, the first sent leaves first.
type packetHeap struct{ items []item }

// Len is the number of packets held.
func (h *packetHeap) Len() int { return len(h.items) }

func (h *packetHeap) less(i, j int) bool { return h.items[i].before(&h.items[j]) }

// push adds it.
func (h *packetHeap) push(it item) {
	h.items = append(h.items, it)
	for i := len(h.items) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		h.items[i], h.items[parent] = h.items[parent], h.items[i]
		i = parent
	}
}

// pop removes and returns the earliest item; the heap must not be empty.
func (h *packetHeap) pop() item {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items[last] = item{}
	h.items = h.items[:last]
	h.down(0)
	return top
}

func (h *packetHeap) down(i int) {
	for {
		least, l, r := i, 2*i+1, 2*i+2
		if l < len(h.items) && h.less(l, least) {
			least = l
		}
		if r < len(h.items) && h.less(r, least) {
			least = r
		}
		if least == i {
			return
		}
		h.items[i], h.items[least] = h.items[least], h.items[i]
		i = least
	}
}

// bucket is the rate limit's token bucket, in bytes. Packets leave in the
// order they arrive: each waits for the one ahead and for tokens enough.
type bucket struct {
	perNs  float64       // bytes of tokens per nanosecond; 0: no limit
	size   float64       // the bucket's size; 0: one packet
	tokens float64       // tokens at time at
	at     time.Duration // when tokens was last updated
	tail   time.Duration // when the last packet left
}

func newBucket(rate int64, burst int) bucket {
	return bucket{perNs: float64(rate) / 8e9, size: float64(burst), tokens: math.Inf(1)}
}

// depart returns when a packet of n bytes arriving at now leaves, and takes
// its tokens.
func (b *bucket) depart(now time.Duration, n int) time.Duration {
	if b.perNs == 0 {
		return now
	}
	t := max(now, b.tail)
	need := float64(n)
	b.tokens = min(max(b.size, need), b.tokens+float64(t-b.at)*b.perNs)
	if b.tokens < need {
		t += time.Duration(math.Ceil((need - b.tokens) / b.perNs))
		b.tokens = need
	}
	b.tokens -= need
	b.at, b.tail = t, t
	return t
}

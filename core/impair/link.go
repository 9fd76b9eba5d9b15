package impair

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// Link is one direction of an impaired link, on raw packets: what is given
// to Send comes out of the delivery function, impaired as the Config says.
// It knows nothing of IP (it is, in effect, netem's qdisc), so it serves a
// netcore Device (Wrap, Join) as well as a relay between two TUN devices.
//
// One goroutine, owned by the Link and ended by Close, delivers the packets
// when they are due, in batches; it waits on a timer, never polls. Packets
// wait in a queue ordered by due time, bounded by Config.QueueLimit. Send,
// SendBatch, Drain, Stats and Close may be called from any goroutine.
type Link struct {
	cfg     Config
	deliver func(pkts [][]byte)
	epoch   time.Time
	stats   counters
	kick    chan struct{} // cap 1: the earliest due time moved up
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup
	once    sync.Once

	mu sync.Mutex
	// +checklocks:mu
	dice dice
	// +checklocks:mu
	q queue
	// +checklocks:mu
	seq uint64
	// +checklocks:mu
	bucket bucket
	// +checklocks:mu
	lastInOrder time.Duration // due time of the last packet not reordered
	// +checklocks:mu
	free [][]byte // recycled packet buffers
	// +checklocks:mu
	space chan struct{} // closed when room is made; nil while no sender waits
	// +checklocks:mu
	closed bool
}

// maxBatch is the most packets one call of the delivery function gets, and
// minBuf the least size of a packet buffer. A link keeps the buffers of
// delivered packets for reuse, as many as it may hold (QueueLimit plus a
// batch being delivered), so it never has more than that many.
const (
	maxBatch = 128
	minBuf   = 2048
)

// New starts a link that impairs packets as cfg says and hands them to
// deliver. deliver is called from the link's goroutine, one batch at a
// time, in order of due time; the packets are the link's, valid until
// deliver returns. deliver may block (the link then holds packets until it
// returns, and senders wait once it is full of due ones) but must not call
// the link's Send, SendBatch or Close. New fails with ErrInvalid for a bad
// cfg or a nil deliver.
func New(cfg Config, deliver func(pkts [][]byte)) (*Link, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if deliver == nil {
		return nil, fmt.Errorf("%w: no delivery function", ErrInvalid)
	}
	cfg = cfg.withDefaults()
	l := &Link{
		cfg: cfg, deliver: deliver, epoch: time.Now(),
		kick: make(chan struct{}, 1), done: make(chan struct{}),
		dice: newDice(cfg.Seed), bucket: newBucket(cfg.Rate, cfg.RateBurst),
	}
	l.wg.Add(1)
	go l.run()
	return l, nil
}

// Send gives the link one packet; it copies pkt, which is the caller's
// again when Send returns. It drops the packet (and counts why) if the
// impairments or a full queue say so, and waits only while the link is full
// of packets already due (a slow receiver). After Close it fails with an
// error matching net.ErrClosed.
func (l *Link) Send(pkt []byte) error {
	one := [1][]byte{pkt}
	return l.SendBatch(one[:])
}

// SendBatch is Send for several packets, in order, at the cost of one.
func (l *Link) SendBatch(pkts [][]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("impair: send: %w", net.ErrClosed)
	}
	now := l.now()
	kick := false
	for _, p := range pkts {
		l.stats.sent.Add(1)
		f := l.dice.roll(&l.cfg)
		switch {
		case l.cfg.Drop != nil && l.cfg.Drop(p):
			l.stats.dropped.Add(1)
			continue
		case f.lost:
			l.stats.lost.Add(1)
			continue
		case f.lostBurst:
			l.stats.lostBurst.Add(1)
			continue
		case f.dup:
			l.stats.duplicated.Add(1)
		}
		for i := range f.copies[:1+b2i(f.dup)] {
			room, err := l.waitRoomLocked(now, kick)
			if err != nil {
				l.stats.closedDrops.Add(1)
				return err
			}
			if !room {
				l.stats.queueDrops.Add(1)
				continue
			}
			kick = l.pushLocked(p, now, &f.copies[i]) || kick
		}
	}
	if kick {
		signal(l.kick)
	}
	return nil
}

// waitRoomLocked reports whether the queue has room for one more packet,
// which arrived at arrival. While the queue is full of packets already due
// it waits for the delivery goroutine (kicking it first if kick says it has
// news). The packet still counts as arrived at arrival: a slow delivery
// goroutine must not leave the rate limit's wire idle.
//
// +checklocks:l.mu
func (l *Link) waitRoomLocked(arrival time.Duration, kick bool) (bool, error) {
	for l.q.Len() >= l.cfg.QueueLimit {
		if l.q.head().at > l.now() {
			return false, nil // full for real: a router drops
		}
		if l.space == nil {
			l.space = make(chan struct{})
		}
		space := l.space
		if kick {
			signal(l.kick)
		}
		l.mu.Unlock()
		select {
		case <-space:
		case <-l.done:
		}
		l.mu.Lock()
		if l.closed {
			return false, fmt.Errorf("impair: send: %w", net.ErrClosed)
		}
	}
	return true, nil
}

// pushLocked queues a copy of p, sent at now, with the fate c, and reports
// whether it is now the earliest due.
//
// +checklocks:l.mu
func (l *Link) pushLocked(p []byte, now time.Duration, c *copyFate) bool {
	buf := append(l.bufLocked(len(p)), p...)
	if c.corrupt {
		flipBit(buf, c.flip)
		l.stats.corrupted.Add(1)
	}
	at := l.bucket.depart(now, len(buf))
	delay := max(0, l.cfg.Delay+c.jitter)
	if at > now || delay > 0 {
		l.stats.delayed.Add(1)
	}
	at += delay
	if c.reorder {
		at += l.cfg.ReorderDelay
		l.stats.reordered.Add(1)
	} else {
		at = max(at, l.lastInOrder)
		l.lastInOrder = at
	}
	l.seq++
	l.q.push(item{at: at, seq: l.seq, pkt: buf}, c.reorder)
	l.stats.held.Add(1)
	return l.q.head().seq == l.seq
}

// bufLocked returns an empty buffer with room for n bytes.
//
// +checklocks:l.mu
func (l *Link) bufLocked(n int) []byte {
	if k := len(l.free); k > 0 {
		b := l.free[k-1]
		l.free[k-1] = nil
		l.free = l.free[:k-1]
		if cap(b) >= n {
			return b[:0]
		}
	}
	return make([]byte, 0, max(n, minBuf))
}

// Drain waits until the link holds no packet: every packet sent before
// (and while) it waits has been delivered or dropped. It fails with ctx's
// error, or with an error matching net.ErrClosed if the link is closed
// first.
func (l *Link) Drain(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return fmt.Errorf("impair: drain: %w", net.ErrClosed)
		}
		if l.stats.held.Load() == 0 {
			l.mu.Unlock()
			return nil
		}
		if l.space == nil {
			l.space = make(chan struct{})
		}
		space := l.space
		l.mu.Unlock()
		select {
		case <-space:
		case <-l.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// now is the time since the link started, on the monotonic clock.
func (l *Link) now() time.Duration { return time.Since(l.epoch) }

// Stats returns what the link has done so far, a consistent snapshot (the
// identity on Stats holds). It may be called at any time, also after Close
// and from the delivery function.
func (l *Link) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats.snapshot()
}

// Close stops the link. Senders waiting for room and later calls to Send
// fail with an error matching net.ErrClosed; the delivery goroutine ends
// (after the delivery call in progress, if any, returns); then Close
// delivers the packets that were already due, as the last calls of the
// delivery function, and drops the ones due later (counted as
// ClosedDrops), as a cable pulled out loses only what is on it: a stack
// closing through Join still gets its last packets, the resets of its
// connections, to the peer. A second Close returns an error matching
// net.ErrClosed.
func (l *Link) Close() error {
	err := fmt.Errorf("impair: close: %w", net.ErrClosed)
	l.once.Do(func() {
		last := l.closeQueue()
		close(l.done)
		l.wg.Wait()
		for len(last) > 0 {
			n := min(len(last), maxBatch)
			l.deliverBatch(last[:n])
			last = last[n:]
		}
		err = nil
	})
	return err
}

// closeQueue marks the link closed, takes the packets already due out of
// the queue and drops the rest.
func (l *Link) closeQueue() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	var due [][]byte
	for now := l.now(); l.q.Len() > 0 && l.q.head().at <= now; {
		due = append(due, l.q.pop().pkt)
	}
	n := uint64(l.q.Len())
	l.q.clear()
	l.stats.closedDrops.Add(n)
	l.stats.held.Add(-n)
	return due
}

// run delivers packets as they fall due, until Close.
func (l *Link) run() {
	defer l.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	batch := make([][]byte, 0, maxBatch)
	for {
		var wait time.Duration
		var ok bool
		batch, wait, ok = l.takeDue(batch[:0])
		if !ok {
			return
		}
		if len(batch) > 0 {
			l.deliverBatch(batch)
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-l.kick:
		case <-timer.C:
		case <-l.done:
			return
		}
		timer.Stop()
	}
}

// takeDue moves the packets due now into batch. If there are none it says
// how long until the next one is due (0: none held). It reports false once
// the link is closed.
func (l *Link) takeDue(batch [][]byte) ([][]byte, time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return batch, 0, false
	}
	now := l.now()
	for l.q.Len() > 0 && l.q.head().at <= now && len(batch) < cap(batch) {
		batch = append(batch, l.q.pop().pkt)
	}
	if len(batch) > 0 || l.q.Len() == 0 {
		return batch, 0, true
	}
	return batch, l.q.head().at - now, true
}

// deliverBatch hands batch to the delivery function, then recycles its
// buffers and wakes senders waiting for room.
func (l *Link) deliverBatch(batch [][]byte) {
	l.deliver(batch)
	l.mu.Lock()
	defer l.mu.Unlock()
	var bytes uint64
	for i, p := range batch {
		bytes += uint64(len(p))
		if len(l.free) < l.cfg.QueueLimit+maxBatch {
			l.free = append(l.free, p)
		}
		batch[i] = nil
	}
	l.stats.deliveredBytes.Add(bytes)
	l.stats.delivered.Add(uint64(len(batch)))
	l.stats.held.Add(-uint64(len(batch)))
	if l.space != nil {
		close(l.space)
		l.space = nil
	}
}

// signal sets a cap-1 channel's flag without waiting.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

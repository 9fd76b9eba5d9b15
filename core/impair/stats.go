package impair

import "sync/atomic"

// Stats counts what a link did, in packets unless named otherwise. Every
// packet sent is, in the end, delivered or dropped once:
//
//	Sent + Duplicated = Delivered + Dropped + Lost + LostBurst + QueueDrops + ClosedDrops + Held
//
// Corrupted, Reordered and Delayed count delivered or held packets by what
// was done to them (a packet may be in several).
type Stats struct {
	// Sent is the packets given to Send or SendBatch.
	Sent uint64
	// Delivered is the packets (duplicates included) handed to the
	// delivery function, and DeliveredBytes their bytes.
	Delivered, DeliveredBytes uint64
	// Dropped is the packets Config.Drop dropped.
	Dropped uint64
	// Lost is the packets dropped by Config.Loss, LostBurst those dropped
	// by Config.Burst.
	Lost, LostBurst uint64
	// QueueDrops is the packets dropped because the link held
	// Config.QueueLimit packets.
	QueueDrops uint64
	// ClosedDrops is the packets the link still held when it was closed.
	ClosedDrops uint64
	// Duplicated is the extra copies made by Config.Duplicate.
	Duplicated uint64
	// Corrupted is the packets given a flipped bit by Config.Corrupt.
	Corrupted uint64
	// Reordered is the packets held back by Config.ReorderDelay.
	Reordered uint64
	// Delayed is the packets that waited for the rate limit or were given
	// a delay (Config.Delay with Jitter) above zero.
	Delayed uint64
	// Held is the packets in the link now: due later, or due and not yet
	// delivered.
	Held uint64
}

// counters are a link's Stats. They change under the link's lock, and
// Stats reads them under it, for a consistent snapshot; they are atomics
// so that no read can tear, whoever makes it.
type counters struct {
	sent, delivered, deliveredBytes, dropped, lost, lostBurst, queueDrops, closedDrops atomic.Uint64
	duplicated, corrupted, reordered, delayed, held                                    atomic.Uint64
}

// snapshot reads the counters; the caller holds the link's lock.
func (c *counters) snapshot() Stats {
	return Stats{
		Sent: c.sent.Load(), Delivered: c.delivered.Load(), DeliveredBytes: c.deliveredBytes.Load(),
		Dropped: c.dropped.Load(), Lost: c.lost.Load(), LostBurst: c.lostBurst.Load(), QueueDrops: c.queueDrops.Load(),
		ClosedDrops: c.closedDrops.Load(), Duplicated: c.duplicated.Load(), Corrupted: c.corrupted.Load(),
		Reordered: c.reordered.Load(), Delayed: c.delayed.Load(), Held: c.held.Load(),
	}
}

package impair

import (
	"errors"
	"fmt"
	"time"
)

// Config is what one direction of a link does to the packets sent through
// it. Its zero value is a perfect link: every packet passes at once, in
// order, unchanged. Each impairment applies to every packet independently,
// in this order: Drop, loss (Loss, then Burst), duplication, corruption,
// the rate limit, delay with jitter, reordering. A duplicate is corrupted,
// delayed and reordered on its own.
//
// A Config is read once, by New; it may not change afterwards.
type Config struct {
	// Seed seeds the link's random decisions. The same Seed, Config and
	// sequence of packets make the same decisions (which packets are lost,
	// duplicated, corrupted where, held back, and by how much jitter), so
	// a failing run can be replayed. Default 0, itself a fixed seed.
	Seed uint64

	// Loss is the probability that a packet is dropped, independently of
	// every other packet (netem's "loss random"). Default 0.
	Loss float64

	// Burst drops packets in bursts, by a Gilbert–Elliott model (netem's
	// "loss gemodel"); it adds to Loss. Default: off.
	Burst GilbertElliott

	// Duplicate is the probability that a packet is sent twice. Default 0.
	Duplicate float64

	// Corrupt is the probability that a packet has one bit flipped, in a
	// byte chosen at random. Checksums catch such a packet: IPv4's header
	// checksum or the TCP, UDP or ICMP checksum, except where IPv6 flips a
	// bit that no checksum covers (traffic class, flow label, hop limit),
	// which leaves the payload intact. Default 0.
	Corrupt float64

	// Reorder is the probability that a packet is held back by
	// ReorderDelay beyond its due time, so that packets sent after it
	// overtake it (netem's "reorder", with the roles reversed: netem sends
	// the chosen ones early). Default 0.
	Reorder float64

	// ReorderDelay is how long a reordered packet is held back. Default
	// 1 ms.
	ReorderDelay time.Duration

	// Delay is each packet's one-way delay. Default 0.
	Delay time.Duration

	// Jitter varies each packet's delay by a uniform amount in [-Jitter,
	// +Jitter] (never below zero). Unlike netem, jitter keeps packets in
	// order: a packet is never delivered before one sent ahead of it (use
	// Reorder for that), as on one path through real routers. Default 0.
	Jitter time.Duration

	// Rate limits the link to this many bits per second, by a token
	// bucket: packets wait in the link's queue for their turn, and leave
	// at the rate (after a burst of up to RateBurst bytes). Packets beyond
	// QueueLimit are dropped and counted (Stats.QueueDrops), as a router's
	// full queue drops them. Default 0: no limit.
	Rate int64

	// RateBurst is the token bucket's size in bytes: how much may leave at
	// once after the link was idle. Default 0: one packet (pure pacing,
	// as netem's "rate").
	RateBurst int

	// QueueLimit bounds the packets the link holds at once: waiting for the
	// rate limit, delayed, or held back to be reordered (netem's "limit").
	// A packet arriving at a full link is dropped and counted
	// (Stats.QueueDrops), except when the link is full only because the
	// receiver is slow (its oldest packet is already due): then the sender
	// waits, so the link never drops for its own sake. Default 1000.
	QueueLimit int

	// Drop, if set, is asked about each packet before the random
	// impairments, and a packet it returns true for is dropped (and
	// counted as Stats.Dropped): for a test that must lose one packet in
	// particular, such as a SYN. It is called with the link's lock held,
	// one packet at a time, and must not keep pkt or call the link. The
	// random decisions are drawn for the packet all the same, so Drop does
	// not shift the others. Default: none.
	Drop func(pkt []byte) bool
}

// GilbertElliott is a two-state Markov model of bursty loss. The link is in
// the good state or the bad one; each packet is lost with the current
// state's probability, then the state changes with the current state's
// transition probability. The link starts in the good state. Mean burst
// length (packets in the bad state) is 1/PBadGood; the share of time in the
// bad state is PGoodBad/(PGoodBad+PBadGood).
//
// The zero value never leaves the good state and loses nothing. Simple
// Gilbert (netem "gemodel p r"): set PGoodBad, PBadGood and LossBad = 1.
type GilbertElliott struct {
	// PGoodBad is the probability of moving from good to bad after a
	// packet (netem's p).
	PGoodBad float64
	// PBadGood is the probability of moving from bad to good after a
	// packet (netem's r).
	PBadGood float64
	// LossGood is the loss probability in the good state (netem's 1-k).
	LossGood float64
	// LossBad is the loss probability in the bad state (netem's 1-h).
	LossBad float64
}

// ErrInvalid is the error New, Wrap and Join return for a Config they
// cannot use (a probability outside [0, 1], a negative duration, rate or
// size); the message says which field.
var ErrInvalid = errors.New("impair: invalid config")

// Defaults of Config's zero fields.
const (
	defaultReorderDelay = time.Millisecond
	defaultQueueLimit   = 1000
)

// check reports the first field of c that is out of range.
func (c *Config) check() error {
	probs := []struct {
		name string
		p    float64
	}{
		{"Loss", c.Loss}, {"Duplicate", c.Duplicate}, {"Corrupt", c.Corrupt}, {"Reorder", c.Reorder},
		{"Burst.PGoodBad", c.Burst.PGoodBad}, {"Burst.PBadGood", c.Burst.PBadGood},
		{"Burst.LossGood", c.Burst.LossGood}, {"Burst.LossBad", c.Burst.LossBad},
	}
	for _, f := range probs {
		if !(f.p >= 0 && f.p <= 1) { // NaN fails too
			return fmt.Errorf("%w: %s %v is not a probability in [0, 1]", ErrInvalid, f.name, f.p)
		}
	}
	nonNeg := []struct {
		name string
		v    int64
	}{
		{"ReorderDelay", int64(c.ReorderDelay)}, {"Delay", int64(c.Delay)}, {"Jitter", int64(c.Jitter)},
		{"Rate", c.Rate}, {"RateBurst", int64(c.RateBurst)}, {"QueueLimit", int64(c.QueueLimit)},
	}
	for _, f := range nonNeg {
		if f.v < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrInvalid, f.name, f.v)
		}
	}
	return nil
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.ReorderDelay == 0 {
		c.ReorderDelay = defaultReorderDelay
	}
	if c.QueueLimit == 0 {
		c.QueueLimit = defaultQueueLimit
	}
	return c
}

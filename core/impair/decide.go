package impair

import (
	"math/rand/v2"
	"time"
)

// dice draws a link's random decisions. Each impairment has its own PCG
// stream, seeded from Config.Seed, and draws from it the same number of
// times for every packet whether or not the impairment is on, so the
// decisions of one impairment depend only on the seed and the packet's
// place in the sequence: turning on corruption does not change which
// packets are lost.
type dice struct {
	loss, burst, dup, corrupt, reorder, jitter *rand.Rand
	bad                                        bool // Gilbert–Elliott state
}

// Stream numbers of the PCG generators (arbitrary, distinct, fixed).
const (
	streamLoss uint64 = iota + 0x6e6574636f7265 // "netcore"
	streamBurst
	streamDup
	streamCorrupt
	streamReorder
	streamJitter
)

func newDice(seed uint64) dice {
	r := func(stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }
	return dice{
		loss: r(streamLoss), burst: r(streamBurst), dup: r(streamDup),
		corrupt: r(streamCorrupt), reorder: r(streamReorder), jitter: r(streamJitter),
	}
}

// fate is what happens to one packet given to the link.
type fate struct {
	lost, lostBurst bool // dropped by Loss, by Burst
	dup             bool // sent twice
	copies          [2]copyFate
}

// copyFate is what happens to one copy of a packet (the second one only if
// duplicated).
type copyFate struct {
	corrupt bool
	flip    uint64        // which bit: byte flip%len, bit flip>>61
	reorder bool          // held back by ReorderDelay
	jitter  time.Duration // added to Delay (may be negative)
}

// roll draws the fate of the next packet under c.
func (d *dice) roll(c *Config) fate {
	var f fate
	f.lost = d.loss.Float64() < c.Loss
	f.lostBurst = d.gilbertElliott(&c.Burst)
	f.dup = d.dup.Float64() < c.Duplicate
	f.copies[0] = d.rollCopy(c)
	if f.dup {
		f.copies[1] = d.rollCopy(c)
	}
	return f
}

// gilbertElliott decides a packet's loss by the current state, then moves
// the state.
func (d *dice) gilbertElliott(g *GilbertElliott) bool {
	u, v := d.burst.Float64(), d.burst.Float64()
	if d.bad {
		d.bad = !(v < g.PBadGood)
		return u < g.LossBad
	}
	d.bad = v < g.PGoodBad
	return u < g.LossGood
}

func (d *dice) rollCopy(c *Config) copyFate {
	var f copyFate
	f.corrupt = d.corrupt.Float64() < c.Corrupt
	f.flip = d.corrupt.Uint64()
	f.reorder = d.reorder.Float64() < c.Reorder
	u := d.jitter.Float64()
	f.jitter = time.Duration((2*u - 1) * float64(c.Jitter))
	return f
}

// flipBit flips the bit of pkt that flip names.
func flipBit(pkt []byte, flip uint64) {
	if len(pkt) == 0 {
		return
	}
	pkt[flip%uint64(len(pkt))] ^= 1 << (flip >> 61)
}

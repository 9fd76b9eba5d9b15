package core

import (
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
)

// The loss repair's congestion decision (Config.LossRepair): whether the
// losses the link repairs are random, to be hidden from gVisor, or its
// own window overfilling a queue (or another flow's), to be left to
// gVisor's Reno. Neither the loss share nor the round trip tells them
// apart: the link's window keeps about twice the path in flight, so at a
// bottleneck the round trip doubles by design, with a deep queue and a
// random loss as with a queue shallower than the path that overflows
// (docs/benchmarks.md). What does is whether the losses depend on what is
// in flight. So when the link's repairs pass repairTestShare of the
// segments sent (at least repairTestLosses of them), it tests: it lowers
// its window to the path's bandwidth-delay product itself (gain 1, no
// standing queue of its own) and counts the losses among the next
// segments sent, enough of them to expect repairTestLost losses at the
// share before, at most repairTestRounds round trips' worth (the
// bandwidth maximum does not age meanwhile). It tests
// only once the pipe is full (startup's losses are hidden). A queue's overflow stops there, a random
// loss does not: if the test's share is below half the share before it,
// the losses were congestion, and every loss passes to gVisor for
// repairCongestedFor (its Reno backs off as without LossRepair); else
// they were random, the link goes on hiding them, and tests again no
// sooner than repairTestEvery later (doubling, up to repairTestEveryMax,
// while the verdicts stay random). A test still sending after
// repairTestMaxTime (a slow path, or a starved process) is judged on the
// segments it sent by then, or gives no verdict if they are too few.

const (
	// repairTestShare is the share of repairs among the segments sent,
	// per thousand, above which the link tests (BBR v2's loss threshold
	// is 2%).
	repairTestShare = 30
	// repairTestLosses is the least number of repairs that starts a test.
	repairTestLosses = 8
	// repairTestLost is how many losses a test expects at the share
	// before it, if they are random: it counts that many over the share
	// segments (at least repairTestMinSegs, at most repairTestMaxSegs).
	// At 40 a random loss reads below half its share about once in a
	// thousand tests: a verdict of congestion on random loss cuts Reno's
	// window for good, so the test errs the other way.
	repairTestLost    = 40
	repairTestMinSegs = 64
	repairTestMaxSegs = 4096
	// repairTestRounds bounds a test to that many round trips' worth of
	// segments (at gain 1) and repairTestMinLost is the least number of
	// losses a test must expect at the share before it to give a verdict:
	// a slower path, or one cut short (repairTestMaxTime), gives none.
	repairTestRounds  = 16
	repairTestMinLost = 10
	// repairTestEvery is how long the first verdict of random loss
	// stands; each one after it twice as long as the one before, up to
	// repairTestEveryMax.
	repairTestEvery    = time.Second
	repairTestEveryMax = 4 * time.Second
	// repairCongestedFor is how long a verdict of congestion stands.
	repairCongestedFor = time.Second
	// repairTestMaxTime bounds a test.
	repairTestMaxTime = time.Second
)

// lossTest is a connection's congestion decision (see above).
type lossTest struct {
	on                 bool // a test runs: the window's gain is 1
	from, end          seqnum.Value
	endSet             bool // end is set: the test sent its segments
	segs               int  // the segments the test counts
	sent, lost         int  // the test's segments, and of them the lost
	baseSent, baseLost int  // the share before the test
	started            time.Time
	next               time.Time     // no test before
	every              time.Duration // how long the last verdict of random loss stood
	congestedUntil     time.Time     // losses pass until
}

// noteSent counts a new segment [seq, end) sent.
func (t *lossTest) noteSent(seq, end seqnum.Value) {
	if !t.on || t.endSet || seq.LessThan(t.from) {
		return
	}
	t.end = end
	if t.sent++; t.sent >= t.segs {
		t.endSet = true
	}
}

// noteLost counts a segment from seq found lost for the first time.
func (t *lossTest) noteLost(seq seqnum.Value) {
	if t.on && !seq.LessThan(t.from) && (!t.endSet || seq.LessThan(t.end)) {
		t.lost++
	}
}

// congested is the decision at now, with ack the cumulative
// acknowledgement and nxt the next byte to send: whether losses are to
// pass to gVisor. It ends a test whose segments are all acknowledged
// and starts one when the share (of r's repairs among r's segments
// sent) calls for it and the pipe is full (a test in startup, at gain
// 1, would hold the window at what startup measured so far).
func (r *repairState) congested(now time.Time, ack, nxt seqnum.Value, full bool, roundSegs int) bool {
	t := &r.test
	if t.on {
		age := now.Sub(t.started)
		if !t.endSet && age > repairTestMaxTime {
			t.endSet = true // (a slow path: judged on what was sent)
		}
		stuck := age > 4*repairTestMaxTime // (no verdict)
		if !stuck && (!t.endSet || ack.LessThan(t.end)) {
			return false
		}
		t.on = false
		// The test's share below half the share before it: congestion;
		// too few segments to expect repairTestMinLost losses: no
		// verdict, as random loss.
		expect := t.sent * t.baseLost / max(t.baseSent, 1)
		if !stuck && expect >= repairTestMinLost && 2*t.lost*t.baseSent < t.baseLost*t.sent {
			t.congestedUntil = now.Add(repairCongestedFor)
			t.every = 0
			r.congestions++
		} else {
			t.every = min(max(2*t.every, repairTestEvery), repairTestEveryMax)
			t.next = now.Add(t.every)
		}
		r.sent, r.repairs = 0, 0
	}
	if now.Before(t.congestedUntil) {
		return true
	}
	if !full || now.Before(t.next) || r.repairs < repairTestLosses || r.repairs*1000 <= r.sent*repairTestShare {
		return false
	}
	segs := min(max(repairTestLost*r.sent/r.repairs, repairTestMinSegs), repairTestMaxSegs, repairTestRounds*max(roundSegs, 1))
	*t = lossTest{on: true, from: nxt, end: nxt, segs: segs, baseSent: r.sent, baseLost: r.repairs, started: now, next: t.next, every: t.every}
	r.tests++
	return false
}
